package meta

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzClassify feeds arbitrary Graph error bodies and
// X-Business-Use-Case-Usage headers to the parsers and classifier: they must
// not panic, must end in exactly one outcome, must keep retry delays in
// range, and must never copy Meta's message into what they return.
func FuzzClassify(f *testing.F) {
	seeds := []struct {
		status int
		body   string
		buc    string
	}{
		{400, `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"AbCdEf"}}`, ""},
		{400, `{"error":{"message":"Unsupported delete request. Object with ID '1_2' does not exist","type":"GraphMethodException","code":100,"error_subcode":33,"fbtrace_id":"A1"}}`, ""},
		{400, `{"error":{"message":"(#32) Page request limit reached","type":"OAuthException","code":32,"fbtrace_id":"A2"}}`, `{"104417945650471":[{"type":"pages","call_count":100,"total_cputime":12,"total_time":15,"estimated_time_to_regain_access":7}]}`},
		{400, `{"error":{"message":"(#80001) There have been too many calls to this Page account.","type":"OAuthException","code":80001,"fbtrace_id":"A3"}}`, `{"1":[{"estimated_time_to_regain_access":99999999}]}`},
		{403, `{"error":{"message":"(#10) Application does not have permission for this action","type":"OAuthException","code":10}}`, ""},
		{500, `{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1}}`, ""},
		{400, `{"error":{"message":"(#100) Invalid parameter","code":"100"}}`, `[]`},
		{200, `{"success":false}`, `{"a":[{"estimated_time_to_regain_access":-3}]}`},
		{502, `<html>`, `not json`},
		{400, `{"error":null}`, ""},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), s.buc)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, buc string) {
		if status < 100 || status > 599 {
			status = 400 + (status%100+100)%100
		}
		if d := parseBUCUsage(buc); d < 0 || d > 24*time.Hour {
			t.Fatalf("parseBUCUsage(%q) = %v, out of range", buc, d)
		}
		e, _ := parseGraphError(body)
		hdr := http.Header{}
		hdr.Set("X-Business-Use-Case-Usage", buc)
		fl := classify(status, body, hdr)
		outcomes := 0
		if fl.gone {
			outcomes++
		}
		if fl.refused != "" {
			outcomes++
		}
		if fl.err != nil {
			outcomes++
			if fl.err.RetryAfter < 0 || fl.err.RetryAfter > 24*time.Hour {
				t.Errorf("retry after %v out of range", fl.err.RetryAfter)
			}
		}
		if outcomes != 1 {
			t.Fatalf("classify(%d, %q) = %+v: want exactly one outcome", status, body, fl)
		}
		// Our own messages never contain '~', so a message with one that
		// shows up in the outcome was copied from Meta's answer.
		if strings.Contains(e.Message, "~") {
			msg := fl.refused
			if fl.err != nil {
				msg = fl.err.Message
			}
			if strings.Contains(msg, e.Message) {
				t.Errorf("outcome %q copies Meta's message %q", msg, e.Message)
			}
		}
	})
}
