package x

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/activities/platforms"
	"github.com/webcaresync/webcaresync/activities/platforms/platformtest"
)

// t0 is the fixed clock of the tests.
var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

func newClient(t *testing.T, url, token string, log *zap.Logger) *Client {
	t.Helper()
	c := New(Config{BaseURL: url, UserToken: token, HTTPTimeout: 5 * time.Second, Logger: log})
	c.now = func() time.Time { return t0 }
	return c
}

// subject is a data subject's footprint on X: the brand's reply (1001), a
// reply of the subject in the brand's conversation (1002), a mention the
// brand cannot hide (1003), the brand's DM (2001), the subject's DM (2002)
// and a brand reply already deleted by hand (1004).
func subject() []crm.PlatformPost {
	return []crm.PlatformPost{
		{Provider: "x", ExternalPostID: "1001", Outbound: true, Public: true},
		{Provider: "x", ExternalPostID: "1002", Outbound: false, Public: true},
		{Provider: "x", ExternalPostID: "1003", Outbound: false, Public: true},
		{Provider: "x", ExternalPostID: "2001", Outbound: true, Public: false},
		{Provider: "x", ExternalPostID: "2002", Outbound: false, Public: false},
		{Provider: "x", ExternalPostID: "1004", Outbound: true, Public: true},
	}
}

func seed(s *platformtest.XState) {
	s.AddPost("1001", platformtest.XPost{ByBrand: true})
	s.AddPost("1002", platformtest.XPost{InBrandConversation: true})
	s.AddPost("1003", platformtest.XPost{})
	s.AddDM("2001", true)
	s.AddDM("2002", false)
}

type row struct {
	provider, object, action string
	count                    int
}

func rows(rs []platforms.Result) []row {
	out := make([]row, len(rs))
	for i, r := range rs {
		out[i] = row{r.Provider, r.Object, r.Action, r.Count}
	}
	return out
}

func TestEraseDeletesOwnHidesRepliesAndRecordsTheRest(t *testing.T) {
	url, fake := platformtest.NewX(t)
	seed(fake)
	core, logs := observer.New(zapcore.DebugLevel)
	c := newClient(t, url, platformtest.XToken, zap.New(core))

	got, err := c.Erase(context.Background(), subject())
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}

	wantCalls := []string{
		"DELETE /2/tweets/1001",
		"PUT /2/tweets/1002/hidden",
		"PUT /2/tweets/1003/hidden",
		"DELETE /2/dm_events/2001",
		"DELETE /2/tweets/1004",
	}
	if calls := fake.CallStrings(); !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("calls = %q, want %q", calls, wantCalls)
	}
	for _, call := range fake.Calls() {
		if call.Method == http.MethodPut && call.Params["hidden"] != "true" {
			t.Errorf("%s sent params %v, want hidden=true", call, call.Params)
		}
	}
	want := []row{
		{"x", platforms.ObjectComment, platforms.ActionHidden, 1},
		{"x", platforms.ObjectComment, platforms.ActionNotPossible, 1},
		{"x", platforms.ObjectDirectMessage, platforms.ActionErased, 1},
		{"x", platforms.ObjectDirectMessage, platforms.ActionNotPossible, 1},
		{"x", platforms.ObjectPost, platforms.ActionErased, 2},
	}
	if !reflect.DeepEqual(rows(got), want) {
		t.Errorf("results = %+v, want %+v", rows(got), want)
	}
	if d := fake.DeletedPosts(); !reflect.DeepEqual(d, []string{"1001"}) {
		t.Errorf("deleted posts = %v, want [1001]", d)
	}
	if h := fake.HiddenPosts(); !reflect.DeepEqual(h, []string{"1002"}) {
		t.Errorf("hidden posts = %v, want [1002]", h)
	}
	if d := fake.DeletedDMs(); !reflect.DeepEqual(d, []string{"2001"}) {
		t.Errorf("deleted DMs = %v, want [2001]", d)
	}
	for _, r := range got {
		if r.Detail == "" || r.Policy == "" {
			t.Errorf("%+v lacks detail or policy", r)
		}
		for _, id := range []string{"1001", "1002", "1003", "1004", "2001", "2002"} {
			if strings.Contains(r.Detail, id) || strings.Contains(r.Policy, id) {
				t.Errorf("result %+v quotes item id %s", r, id)
			}
		}
		if r.Action == platforms.ActionNotPossible && !strings.Contains(r.Detail, Guidance) {
			t.Errorf("not-possible result %+v lacks the guidance", r)
		}
	}
	if n := logs.Filter(func(e observer.LoggedEntry) bool { return e.Level > zapcore.DebugLevel }).Len(); n != 0 {
		t.Errorf("normal operation logged %d entries above debug", n)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if f.String == "1002" || f.String == "1003" || f.String == "2002" {
				t.Errorf("log %q names the subject's item %s", e.Message, f.String)
			}
		}
	}
}

func TestEraseTwiceIsHarmless(t *testing.T) {
	url, fake := platformtest.NewX(t)
	seed(fake)
	c := newClient(t, url, platformtest.XToken, nil)
	first, err := c.Erase(context.Background(), subject())
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Erase(context.Background(), subject())
	if err != nil {
		t.Fatalf("second Erase: %v", err)
	}
	if !reflect.DeepEqual(rows(first), rows(second)) {
		t.Errorf("second run = %+v, first = %+v", rows(second), rows(first))
	}
	if d := fake.DeletedPosts(); !reflect.DeepEqual(d, []string{"1001"}) {
		t.Errorf("deleted posts = %v", d)
	}
}

func TestSubjectDeletedTheirReplyCountsAsErased(t *testing.T) {
	url, fake := platformtest.NewX(t)
	fake.AddPost("1002", platformtest.XPost{InBrandConversation: true})
	fake.DeletePost("1002")
	c := newClient(t, url, platformtest.XToken, nil)
	got, err := c.Erase(context.Background(), []crm.PlatformPost{{Provider: "x", ExternalPostID: "1002", Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	want := []row{{"x", platforms.ObjectComment, platforms.ActionErased, 1}}
	if !reflect.DeepEqual(rows(got), want) {
		t.Errorf("results = %+v, want %+v", rows(got), want)
	}
}

func TestRateLimitStopsWithRetryAfterFromReset(t *testing.T) {
	url, fake := platformtest.NewX(t)
	seed(fake)
	fake.RateLimitNext(t0.Add(90 * time.Second))
	c := newClient(t, url, platformtest.XToken, nil)

	_, err := c.Erase(context.Background(), subject())
	var ce *crm.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *crm.Error", err)
	}
	if ce.Kind != crm.Concurrency || ce.Code != "X_RATE_LIMITED" || ce.RetryAfter != 90*time.Second {
		t.Errorf("err = %+v, want concurrency X_RATE_LIMITED retry after 90s", ce)
	}
	if calls := fake.CallStrings(); !reflect.DeepEqual(calls, []string{"DELETE /2/tweets/1001"}) {
		t.Errorf("calls = %q, want only the rate-limited one", calls)
	}
	if d := fake.DeletedPosts(); len(d) != 0 {
		t.Errorf("deleted %v despite the 429", d)
	}

	// Temporal retries the activity after the reset: it completes.
	got, err := c.Erase(context.Background(), subject())
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(got) != 5 {
		t.Errorf("retry results = %+v", rows(got))
	}
}

func TestRejectedTokenIsPermanentAndNotQuoted(t *testing.T) {
	url, fake := platformtest.NewX(t)
	seed(fake)
	fake.SetToken("another-token")
	c := newClient(t, url, "stale-secret-token", nil)
	_, err := c.Erase(context.Background(), subject())
	if crm.KindOf(err) != crm.Permanent {
		t.Fatalf("err = %v, want permanent", err)
	}
	var ce *crm.Error
	if errors.As(err, &ce); ce.Code != "X_UNAUTHORIZED" {
		t.Errorf("code = %q, want X_UNAUTHORIZED", ce.Code)
	}
	if strings.Contains(err.Error(), "stale-secret-token") {
		t.Errorf("error quotes the token: %v", err)
	}
}

func TestMissingTokenFailsBeforeAnyCall(t *testing.T) {
	url, fake := platformtest.NewX(t)
	c := newClient(t, url, "", nil)
	_, err := c.Erase(context.Background(), subject())
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "X_NO_TOKEN" {
		t.Fatalf("err = %v, want permanent X_NO_TOKEN", err)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("made %d calls without a token", n)
	}
	// Only the subject's DMs: nothing to call, so no token is needed.
	got, err := c.Erase(context.Background(), []crm.PlatformPost{{Provider: "x", ExternalPostID: "2002"}})
	if err != nil || len(got) != 1 || got[0].Action != platforms.ActionNotPossible {
		t.Errorf("DM-only erase = %+v, %v", got, err)
	}
}

func TestFaultClassification(t *testing.T) {
	own := []crm.PlatformPost{{Provider: "x", ExternalPostID: "1001", Outbound: true, Public: true}}
	cases := []struct {
		name   string
		fault  platformtest.Fault
		kind   crm.ErrorKind
		code   string
		action string // when no error
	}{
		{name: "outage", fault: platformtest.Fault{Status: 503, Body: `{"title":"Service Unavailable","type":"about:blank","status":503,"detail":"Service Unavailable"}`}, kind: crm.Transient, code: "X_HTTP_503"},
		{name: "html outage", fault: platformtest.Fault{Status: 502, Body: `<html>bad gateway</html>`}, kind: crm.Transient, code: "X_HTTP_502"},
		{name: "usage cap", fault: platformtest.Fault{Status: 429, Body: `{"title":"UsageCapExceeded","detail":"Usage cap exceeded: Monthly product cap","type":"https://api.twitter.com/2/problems/usage-capped","period":"Monthly","scope":"Product"}`}, kind: crm.BudgetExhausted, code: "X_USAGE_CAPPED"},
		{name: "v1 rate limit body", fault: platformtest.Fault{Status: 429, Body: `{"errors":[{"code":88,"message":"Rate limit exceeded"}]}`, Header: http.Header{"Retry-After": {"30"}}}, kind: crm.Concurrency, code: "X_RATE_LIMITED"},
		{name: "client not enrolled", fault: platformtest.Fault{Status: 403, Body: `{"client_id":"123","detail":"When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.","registration_url":"https://developer.twitter.com/en/docs/projects/overview","title":"Client Forbidden","required_enrollment":"Appropriate Level of API Access","reason":"client-not-enrolled","type":"https://api.twitter.com/2/problems/client-forbidden"}`}, kind: crm.Permanent, code: "X_CLIENT_FORBIDDEN"},
		{name: "invalid request", fault: platformtest.Fault{Status: 400, Body: `{"errors":[{"parameters":{"id":["x"]},"message":"The id query parameter value [x] is not valid"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`}, kind: crm.Permanent, code: "X_INVALID_REQUEST"},
		{name: "not confirmed", fault: platformtest.Fault{Status: 200, Body: `{"data":{"deleted":false}}`}, kind: crm.Transient, code: "X_UNEXPECTED_ANSWER"},
		{name: "200 with not found", fault: platformtest.Fault{Status: 200, Body: `{"errors":[{"value":"1001","detail":"Could not find tweet with id: [1001].","title":"Not Found Error","resource_type":"tweet","parameter":"id","resource_id":"1001","type":"https://api.twitter.com/2/problems/resource-not-found"}]}`}, action: platforms.ActionErased},
		{name: "not the author", fault: platformtest.Fault{Status: 403, Body: `{"title":"Forbidden","type":"about:blank","status":403,"detail":"You are not allowed to delete a Tweet you did not author."}`}, action: platforms.ActionNotPossible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, fake := platformtest.NewX(t)
			fake.AddPost("1001", platformtest.XPost{ByBrand: true})
			fake.FailNext(tc.fault)
			c := newClient(t, url, platformtest.XToken, nil)
			got, err := c.Erase(context.Background(), own)
			if tc.action != "" {
				if err != nil || len(got) != 1 || got[0].Action != tc.action {
					t.Fatalf("got %+v, %v; want one %s result", got, err, tc.action)
				}
				return
			}
			var ce *crm.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *crm.Error", err)
			}
			if ce.Kind != tc.kind || ce.Code != tc.code {
				t.Errorf("err = %s/%s (%v), want %s/%s", ce.Kind, ce.Code, ce, tc.kind, tc.code)
			}
			if strings.Contains(ce.Message, "1001") || strings.Contains(ce.Message, "Could not find") {
				t.Errorf("error quotes the answer: %v", ce)
			}
		})
	}
}

func TestNetworkErrorIsTransientWithoutURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newClient(t, url, platformtest.XToken, nil)
	_, err := c.Erase(context.Background(), []crm.PlatformPost{{Provider: "x", ExternalPostID: "1001", Outbound: true, Public: true}})
	if crm.KindOf(err) != crm.Transient || err == nil {
		t.Fatalf("err = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "1001") || strings.Contains(err.Error(), "/2/tweets") {
		t.Errorf("error names the request: %v", err)
	}
}

func TestCanceledContextStops(t *testing.T) {
	url, fake := platformtest.NewX(t)
	seed(fake)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := newClient(t, url, platformtest.XToken, nil)
	if _, err := c.Erase(ctx, subject()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("made %d calls after cancel", n)
	}
}

func TestBadInput(t *testing.T) {
	url, fake := platformtest.NewX(t)
	c := newClient(t, url, platformtest.XToken, nil)
	_, err := c.Erase(context.Background(), []crm.PlatformPost{{Provider: "whatsapp", ExternalPostID: "1"}})
	if crm.KindOf(err) != crm.Permanent || err == nil || !strings.Contains(err.Error(), "whatsapp") {
		t.Errorf("foreign provider: err = %v, want permanent naming the provider", err)
	}
	got, err := c.Erase(context.Background(), []crm.PlatformPost{
		{Provider: "x", ExternalPostID: "", Outbound: true, Public: true},
		{Provider: "x", ExternalPostID: "../../2/users/me", Public: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"x", platforms.ObjectComment, platforms.ActionNotPossible, 1},
		{"x", platforms.ObjectPost, platforms.ActionNotPossible, 1},
	}
	if !reflect.DeepEqual(rows(got), want) {
		t.Errorf("results = %+v, want %+v", rows(got), want)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("made %d calls for invalid ids", n)
	}
}

func TestDescription(t *testing.T) {
	c := New(Config{})
	if c.Name() != "x" || !reflect.DeepEqual(c.Providers(), []string{"x"}) {
		t.Errorf("name %q providers %v", c.Name(), c.Providers())
	}
	if c.cfg.BaseURL != DefaultBaseURL {
		t.Errorf("base URL = %q, want %q", c.cfg.BaseURL, DefaultBaseURL)
	}
	capX := c.Capabilities("x")
	if !capX.DeleteOwnPosts || !capX.HideComments || capX.DeleteComments || capX.Guidance != Guidance {
		t.Errorf("capabilities = %+v", capX)
	}
	if c.Capabilities("messenger") != (platforms.Capabilities{}) {
		t.Errorf("capabilities for another provider are not zero")
	}
	if platforms.ForProvider([]platforms.Platform{c}, "x") != c {
		t.Errorf("ForProvider does not find the x connector")
	}
}
