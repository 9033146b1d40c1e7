package x

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzClassify feeds arbitrary X error bodies and rate-limit headers to the
// parser and classifier: they must not panic, must end in exactly one
// outcome, and must never copy X's detail text into what they return.
func FuzzClassify(f *testing.F) {
	seeds := []struct {
		status int
		body   string
		reset  string
	}{
		{401, `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`, ""},
		{404, `{"errors":[{"value":"1","detail":"Could not find tweet with id: [1].","title":"Not Found Error","resource_type":"tweet","parameter":"id","resource_id":"1","type":"https://api.twitter.com/2/problems/resource-not-found"}]}`, ""},
		{429, `{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}`, "1741942890"},
		{429, `{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`, "-5"},
		{429, `{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://api.twitter.com/2/problems/usage-capped"}`, "99999999999999999999"},
		{403, `{"title":"Client Forbidden","reason":"client-not-enrolled","type":"https://api.twitter.com/2/problems/client-forbidden"}`, ""},
		{403, `{"title":"Forbidden","type":"about:blank","status":403,"detail":"You are not allowed to delete a Tweet you did not author."}`, ""},
		{403, `{"title":"Forbidden","type":"https://api.twitter.com/2/problems/~secret~","detail":"~user 42 wrote this~"}`, ""},
		{400, `{"errors":[{"parameters":{"id":["x"]},"message":"bad"}],"title":"Invalid Request","type":"https://api.twitter.com/2/problems/invalid-request"}`, ""},
		{200, `{"data":{"deleted":false}}`, ""},
		{500, `<html>`, ""},
		{200, `{"errors":[1,"a",null,{"type":7}]}`, ""},
		{404, ``, ""},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), s.reset)
	}
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte, reset string) {
		if status < 100 || status > 599 {
			status = 400 + (status%100+100)%100
		}
		p, _ := parseProblem(body)
		hdr := http.Header{}
		hdr.Set("x-rate-limit-reset", reset)
		fl := classify(status, body, hdr, now)
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
		// Our own messages never contain '~', so a detail with one that
		// shows up in the outcome was copied from X's answer.
		if strings.Contains(p.Detail, "~") {
			msg := fl.refused
			if fl.err != nil {
				msg = fl.err.Message + fl.err.Code
			}
			if strings.Contains(msg, p.Detail) {
				t.Errorf("outcome %q copies the detail %q", msg, p.Detail)
			}
		}
	})
}
