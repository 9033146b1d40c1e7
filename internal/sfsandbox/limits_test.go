package sfsandbox

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestLimitsAndBudget(t *testing.T) {
	e := newEnv(t, Options{DailyBudget: 3})
	r := e.do("GET", v+"/limits", nil)
	e.expect(r, 200, "")
	if got := r.header.Get("Sforce-Limit-Info"); got != "api-usage=1/3" {
		t.Errorf("Sforce-Limit-Info %q", got)
	}
	var lim struct{ DailyApiRequests struct{ Max, Remaining int } }
	r.json(t, &lim)
	if lim.DailyApiRequests.Max != 3 || lim.DailyApiRequests.Remaining != 2 {
		t.Errorf("limits %+v", lim)
	}
	e.do("GET", v+"/sobjects", nil)
	e.do("GET", v+"/sobjects", nil)
	r = e.do("GET", v+"/sobjects", nil)
	e.expect(r, 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
	if got := r.header.Get("Sforce-Limit-Info"); got != "api-usage=3/3" {
		t.Errorf("Sforce-Limit-Info at limit %q", got)
	}
	e.sb.ResetBudget()
	e.expect(e.do("GET", v+"/sobjects", nil), 200, "")
	e.sb.ExhaustBudget()
	e.expect(e.do("POST", v+"/sobjects/Contact", map[string]any{"LastName": "x"}), 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
}

func TestConcurrencyCap(t *testing.T) {
	e := newEnv(t, Options{ConcurrencyCap: 1})
	e.sb.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+v+"/limits", nil)
	slow.Header.Set("Authorization", "Bearer "+e.token)
	go func() {
		if resp, err := http.DefaultClient.Do(slow); err == nil {
			resp.Body.Close()
		}
	}()
	// Wait until the slow request holds the only slot.
	for {
		e.sb.mu.Lock()
		n := e.sb.inflight
		e.sb.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	e.expect(e.do("GET", v+"/limits", nil), 403, `[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
	cancel()
	for {
		e.sb.mu.Lock()
		n := e.sb.inflight
		e.sb.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	e.sb.SetLatency(0)
	e.expect(e.do("GET", v+"/limits", nil), 200, "")
}

func TestFaultInjection(t *testing.T) {
	e := newEnv(t, Options{})
	e.sb.SetFailureRate(1)
	r := e.do("GET", v+"/limits", nil)
	e.expect(r, 500, "")
	var errs []apiError
	r.json(t, &errs)
	if errs[0].ErrorCode != "UNKNOWN_EXCEPTION" {
		t.Errorf("500 body %s", r.body)
	}
	e.sb.SetFailureRate(0)
	e.sb.Outage(time.Hour)
	r = e.do("GET", v+"/limits", nil)
	e.expect(r, 503, `[{"message":"Server is temporarily unavailable. Please try again later.","errorCode":"SERVER_UNAVAILABLE"}]`)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	e.sb.Outage(0)
	e.expect(e.do("GET", v+"/limits", nil), 200, "")
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, Options{})
	admin := func(path string) reply {
		r := e.do("POST", "/_sandbox/"+path, nil)
		e.expect(r, 200, `{"ok":true}`)
		return r
	}
	admin("outage?seconds=3600")
	e.expect(e.do("GET", v+"/limits", nil), 503, "")
	admin("outage?seconds=0")
	admin("failure-rate?rate=1")
	e.expect(e.do("GET", v+"/limits", nil), 500, "")
	admin("failure-rate?rate=0")
	admin("latency?ms=0")
	admin("exhaust-budget")
	e.expect(e.do("GET", v+"/limits", nil), 403, "")
	admin("reset-budget")
	e.expect(e.do("GET", v+"/limits", nil), 200, "")
	admin("expire-sessions")
	e.expect(e.do("GET", v+"/limits", nil), 401, "")
	e.token = e.login()
	e.create("Contact", map[string]any{"LastName": "Wiped"})
	admin("wipe")
	if n := len(e.sb.Records("Contact")); n != 0 {
		t.Errorf("wipe left %d contacts", n)
	}
	e.expect(e.do("POST", "/_sandbox/failure-rate?rate=2", nil), 400, "")
	e.expect(e.do("POST", "/_sandbox/nope", nil), 404, "")

	r := e.do("GET", "/_sandbox/calls", nil)
	e.expect(r, 200, "")
	var calls struct {
		Total int64
		Calls map[string]int64
	}
	r.json(t, &calls)
	if calls.Calls["GET /services/data/vXX.X/limits"] != 5 || calls.Calls["POST /services/data/vXX.X/sobjects/Contact"] != 1 || calls.Total != e.sb.TotalCalls() {
		t.Errorf("calls %+v", calls)
	}
	r = e.do("GET", "/_sandbox/requests", nil)
	e.expect(r, 200, "")
	var log []LoggedRequest
	r.json(t, &log)
	found := false
	for _, l := range log {
		if l.Method == "GET" && l.Path == v+"/limits" && l.Status == 503 {
			found = true
		}
	}
	if !found {
		t.Errorf("request log lacks the 503: %v", log)
	}
	admin("reset")
	// Only the reset call itself is logged after the reset.
	if e.sb.TotalCalls() != 0 || len(e.sb.RequestLog()) != 1 {
		t.Errorf("reset left %d calls", e.sb.TotalCalls())
	}
}

func TestRequestLogHasNoQueryString(t *testing.T) {
	e := newEnv(t, Options{})
	e.query("SELECT Id FROM Contact WHERE Email = 'secret@example.com'")
	for _, l := range e.sb.RequestLog() {
		if l.Path != v+"/query" && l.Path != "/services/oauth2/token" {
			t.Errorf("unexpected path %q", l.Path)
		}
	}
}
