package salesforce

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		status int
		body   string
		kind   crm.ErrorKind
		code   string
	}{
		{403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, crm.BudgetExhausted, "REQUEST_LIMIT_EXCEEDED"},
		{403, `[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, crm.Concurrency, "REQUEST_LIMIT_EXCEEDED"},
		{401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, crm.Transient, "INVALID_SESSION_ID"},
		{503, `not json`, crm.Transient, "HTTP_503"},
		{500, `[{"message":"x","errorCode":"UNKNOWN_EXCEPTION"}]`, crm.Transient, "UNKNOWN_EXCEPTION"},
		{400, `[{"message":"bad value for restricted picklist field: Pigeon","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["MessageType"]}]`, crm.Permanent, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"},
		{400, `[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]`, crm.Permanent, "REQUIRED_FIELD_MISSING"},
		{400, `[{"message":"data value too large: jan@example.com","errorCode":"STRING_TOO_LONG","fields":["Email"]}]`, crm.Permanent, "STRING_TOO_LONG"},
		{400, `[{"message":"duplicate value found: x","errorCode":"DUPLICATE_VALUE","fields":[]}]`, crm.Permanent, "DUPLICATE_VALUE"},
		{403, `[{"message":"insufficient access","errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]`, crm.Permanent, "INSUFFICIENT_ACCESS_OR_READONLY"},
		{429, ``, crm.Concurrency, "HTTP_429"},
	}
	for _, tc := range cases {
		e := classify(tc.status, []byte(tc.body), http.Header{})
		if e.Kind != tc.kind || e.Code != tc.code {
			t.Errorf("%d %s: got %s %s, want %s %s", tc.status, tc.body, e.Kind, e.Code, tc.kind, tc.code)
		}
		for _, leak := range []string{"Pigeon", "jan@example.com", "duplicate value found"} {
			if strings.Contains(e.Error(), leak) {
				t.Errorf("error %q leaks %q", e.Error(), leak)
			}
		}
	}
	e := classify(400, []byte(`[{"errorCode":"STRING_TOO_LONG","fields":["Email","bad value!"]}]`), http.Header{})
	if !strings.Contains(e.Message, "Email") || strings.Contains(e.Message, "bad value") {
		t.Errorf("fields in message: %q", e.Message)
	}
}

func TestRetryAfter(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "120")
	if d := retryAfter(h); d != 2*time.Minute {
		t.Errorf("seconds: %v", d)
	}
	h.Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	if d := retryAfter(h); d < 59*time.Minute || d > time.Hour {
		t.Errorf("date: %v", d)
	}
	for _, v := range []string{"", "soon", "-5", "99999999"} {
		h.Set("Retry-After", v)
		if d := retryAfter(h); d != 0 {
			t.Errorf("%q: %v", v, d)
		}
	}
	e := classify(503, nil, http.Header{"Retry-After": {"30"}})
	if e.RetryAfter != 30*time.Second {
		t.Errorf("classify RetryAfter = %v", e.RetryAfter)
	}
}

func TestParseLimitInfo(t *testing.T) {
	for in, want := range map[string][2]int64{
		"api-usage=18/5000": {18, 5000},
		"per-app-api-usage=17/250(appName=x), api-usage=25/15000": {25, 15000},
	} {
		u, m, ok := parseLimitInfo(in)
		if !ok || u != want[0] || m != want[1] {
			t.Errorf("%q: %d/%d %v", in, u, m, ok)
		}
	}
	for _, in := range []string{"", "api-usage=", "api-usage=a/b", "api-usage=5", "api-usage=-1/5"} {
		if _, _, ok := parseLimitInfo(in); ok {
			t.Errorf("%q parsed", in)
		}
	}
}

func TestEscapeSOQL(t *testing.T) {
	for in, want := range map[string]string{
		`o'brien@example.com`: `o\'brien@example.com`,
		`a\b`:                 `a\\b`,
		"x\ny":                `x\ny`,
		`"q"`:                 `\"q\"`,
		"plain":               "plain",
	} {
		if got := EscapeSOQL(in); got != want {
			t.Errorf("EscapeSOQL(%q) = %q, want %q", in, got, want)
		}
	}
}

// closesLiteral reports whether escaped text would end a '...' literal.
func closesLiteral(s string) bool {
	esc := false
	for _, r := range s {
		switch {
		case esc:
			esc = false
		case r == '\\':
			esc = true
		case r == '\'':
			return true
		}
	}
	return esc
}

func FuzzEscapeSOQL(f *testing.F) {
	for _, s := range []string{"o'brien", `\'`, `\\'`, "a\nb", `x' OR Name != '`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if out := EscapeSOQL(s); closesLiteral(out) {
			t.Fatalf("EscapeSOQL(%q) = %q ends the string literal", s, out)
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add(400, []byte(`[{"message":"m","errorCode":"STRING_TOO_LONG","fields":["Name"]}]`))
	f.Add(403, []byte(`[{"message":"TotalRequests","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`))
	f.Add(500, []byte(`{"errorCode":"X"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := classify(status, body, http.Header{})
		if e == nil || e.Kind == "" || e.Code == "" {
			t.Fatalf("classify(%d) = %+v", status, e)
		}
	})
}

func FuzzParseLimitInfo(f *testing.F) {
	f.Add("api-usage=18/5000")
	f.Add("per-app-api-usage=1/2(appName=a), api-usage=3/4")
	f.Fuzz(func(t *testing.T, h string) {
		u, m, ok := parseLimitInfo(h)
		if ok && (u < 0 || m < 0) {
			t.Fatalf("negative usage %d/%d", u, m)
		}
	})
}
