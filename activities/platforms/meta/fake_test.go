package meta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
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

func newClient(t *testing.T, url, token string, deleteInbound bool, log *zap.Logger) *Client {
	t.Helper()
	return New(Config{BaseURL: url, PageToken: token, DeleteInboundComments: deleteInbound, HTTPTimeout: 5 * time.Second, Logger: log})
}

// subject is a data subject's footprint on Meta: the Page's reply on
// Facebook (111_201, recorded under messenger), the subject's Facebook
// comment (111_202), the IG account's reply (17890001), the subject's IG
// comment (17890002), an IG reply already deleted by hand (17890003), and
// private messages on Messenger, Instagram and WhatsApp.
func subject() []crm.PlatformPost {
	return []crm.PlatformPost{
		{Provider: "messenger", ExternalPostID: "111_201", Outbound: true, Public: true},
		{Provider: "facebook", ExternalPostID: "111_202", Public: true},
		{Provider: "instagram", ExternalPostID: "17890001", Outbound: true, Public: true},
		{Provider: "instagram", ExternalPostID: "17890002", Public: true},
		{Provider: "instagram", ExternalPostID: "17890003", Outbound: true, Public: true},
		{Provider: "messenger", ExternalPostID: "m_AbCdEf-in-1"},
		{Provider: "instagram", ExternalPostID: "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE"},
		{Provider: "whatsapp", ExternalPostID: "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQz"},
		{Provider: "whatsapp", ExternalPostID: "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJB", Outbound: true},
	}
}

func seed(s *platformtest.MetaState) {
	s.AddComment("111_201", platformtest.MetaComment{ByPage: true})
	s.AddComment("111_202", platformtest.MetaComment{})
	s.AddComment("17890001", platformtest.MetaComment{Instagram: true, ByPage: true})
	s.AddComment("17890002", platformtest.MetaComment{Instagram: true})
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

var ids = []string{"111_201", "111_202", "17890001", "17890002", "17890003", "m_AbCdEf", "aWdfZAG1", "wamid"}

func TestEraseDeletesOwnHidesTheirsAndRecordsMessages(t *testing.T) {
	url, fake := platformtest.NewMeta(t)
	seed(fake)
	core, logs := observer.New(zapcore.DebugLevel)
	c := newClient(t, url, platformtest.MetaToken, false, zap.New(core))

	got, err := c.Erase(context.Background(), subject())
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}

	wantCalls := []platformtest.Call{
		{Method: "DELETE", Path: "/v23.0/111_201"},
		{Method: "POST", Path: "/v23.0/111_202", Params: map[string]string{"is_hidden": "true"}},
		{Method: "DELETE", Path: "/v23.0/17890001"},
		{Method: "POST", Path: "/v23.0/17890002", Params: map[string]string{"hide": "true"}},
		{Method: "DELETE", Path: "/v23.0/17890003"},
	}
	if calls := fake.Calls(); !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("calls = %+v, want %+v", calls, wantCalls)
	}
	want := []row{
		{"facebook", platforms.ObjectComment, platforms.ActionHidden, 1},
		{"instagram", platforms.ObjectComment, platforms.ActionHidden, 1},
		{"instagram", platforms.ObjectDirectMessage, platforms.ActionNotPossible, 1},
		{"instagram", platforms.ObjectPost, platforms.ActionErased, 2},
		{"messenger", platforms.ObjectDirectMessage, platforms.ActionNotPossible, 1},
		{"messenger", platforms.ObjectPost, platforms.ActionErased, 1},
		{"whatsapp", platforms.ObjectDirectMessage, platforms.ActionNotPossible, 2},
	}
	if !reflect.DeepEqual(rows(got), want) {
		t.Errorf("results = %+v, want %+v", rows(got), want)
	}
	if d := fake.DeletedComments(); !reflect.DeepEqual(d, []string{"111_201", "17890001"}) {
		t.Errorf("deleted = %v, want the brand's two comments", d)
	}
	if h := fake.HiddenComments(); !reflect.DeepEqual(h, []string{"111_202", "17890002"}) {
		t.Errorf("hidden = %v, want the subject's two comments", h)
	}
	guidance := map[string]string{"messenger": GuidanceMessenger, "instagram": GuidanceInstagram, "whatsapp": GuidanceWhatsApp, "facebook": GuidanceFacebook}
	for _, r := range got {
		if r.Detail == "" || r.Policy == "" {
			t.Errorf("%+v lacks detail or policy", r)
		}
		for _, id := range ids {
			if strings.Contains(r.Detail, id) {
				t.Errorf("result %+v quotes item id %s", r, id)
			}
		}
		if r.Action != platforms.ActionErased && !strings.Contains(r.Detail, guidance[r.Provider]) {
			t.Errorf("%s result %+v lacks the %s guidance", r.Action, r, r.Provider)
		}
	}
	if n := logs.Filter(func(e observer.LoggedEntry) bool { return e.Level > zapcore.DebugLevel }).Len(); n != 0 {
		t.Errorf("normal operation logged %d entries above debug", n)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if f.String == "111_202" || f.String == "17890002" || strings.HasPrefix(f.String, "wamid") || strings.HasPrefix(f.String, "m_") {
				t.Errorf("log %q names the subject's item %s", e.Message, f.String)
			}
		}
	}
}

func TestDeleteInboundCommentsWhenConfigured(t *testing.T) {
	url, fake := platformtest.NewMeta(t)
	seed(fake)
	c := newClient(t, url, platformtest.MetaToken, true, nil)
	got, err := c.Erase(context.Background(), subject()[:4])
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{"DELETE /v23.0/111_201", "DELETE /v23.0/111_202", "DELETE /v23.0/17890001", "DELETE /v23.0/17890002"}
	if calls := fake.CallStrings(); !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("calls = %q, want %q", calls, wantCalls)
	}
	want := []row{
		{"facebook", platforms.ObjectComment, platforms.ActionErased, 1},
		{"instagram", platforms.ObjectComment, platforms.ActionErased, 1},
		{"instagram", platforms.ObjectPost, platforms.ActionErased, 1},
		{"messenger", platforms.ObjectPost, platforms.ActionErased, 1},
	}
	if !reflect.DeepEqual(rows(got), want) {
		t.Errorf("results = %+v, want %+v", rows(got), want)
	}
	if d := fake.DeletedComments(); len(d) != 4 {
		t.Errorf("deleted = %v, want all four", d)
	}
}

func TestEraseTwiceIsHarmless(t *testing.T) {
	url, fake := platformtest.NewMeta(t)
	seed(fake)
	c := newClient(t, url, platformtest.MetaToken, false, nil)
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
}

func TestSubjectDeletedTheirCommentCountsAsErased(t *testing.T) {
	url, fake := platformtest.NewMeta(t)
	fake.AddComment("17890002", platformtest.MetaComment{Instagram: true})
	fake.DeleteComment("17890002")
	c := newClient(t, url, platformtest.MetaToken, false, nil)
	got, err := c.Erase(context.Background(), []crm.PlatformPost{{Provider: "instagram", ExternalPostID: "17890002", Public: true}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []row{{"instagram", platforms.ObjectComment, platforms.ActionErased, 1}}; !reflect.DeepEqual(rows(got), want) {
		t.Errorf("results = %+v, want %+v", rows(got), want)
	}
}

func TestRateLimitCodesBackOff(t *testing.T) {
	for _, code := range []int{4, 17, 32, 613, 80001} {
		url, fake := platformtest.NewMeta(t)
		seed(fake)
		fake.RateLimitNext(code, 7)
		c := newClient(t, url, platformtest.MetaToken, false, nil)
		_, err := c.Erase(context.Background(), subject())
		var ce *crm.Error
		if !errors.As(err, &ce) {
			t.Fatalf("code %d: err = %v, want *crm.Error", code, err)
		}
		if ce.Kind != crm.Concurrency || ce.RetryAfter != 7*time.Minute {
			t.Errorf("code %d: err = %+v, want concurrency retry after 7m", code, ce)
		}
		if d := fake.DeletedComments(); len(d) != 0 {
			t.Errorf("code %d: deleted %v despite throttling", code, d)
		}
		if _, err := c.Erase(context.Background(), subject()); err != nil {
			t.Errorf("code %d: retry: %v", code, err)
		}
	}
}

func TestRejectedTokenIsPermanentAndNotQuoted(t *testing.T) {
	url, fake := platformtest.NewMeta(t)
	seed(fake)
	fake.SetToken("rotated")
	c := newClient(t, url, "stale-page-secret", false, nil)
	_, err := c.Erase(context.Background(), subject())
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "GRAPH_190" {
		t.Fatalf("err = %v, want permanent GRAPH_190", err)
	}
	if strings.Contains(err.Error(), "stale-page-secret") {
		t.Errorf("error quotes the token: %v", err)
	}
	if !strings.Contains(err.Error(), "fbtrace_id AZq3fbTraceFake01") {
		t.Errorf("error lacks the fbtrace_id for Meta support: %v", err)
	}
}

func TestMissingTokenFailsBeforeAnyCall(t *testing.T) {
	url, fake := platformtest.NewMeta(t)
	c := newClient(t, url, "", false, nil)
	_, err := c.Erase(context.Background(), subject())
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "GRAPH_NO_TOKEN" {
		t.Fatalf("err = %v, want permanent GRAPH_NO_TOKEN", err)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("made %d calls without a token", n)
	}
	// Messages only: nothing to call, so no token is needed.
	got, err := c.Erase(context.Background(), subject()[5:])
	if err != nil || len(got) != 3 {
		t.Errorf("messages-only erase = %+v, %v", got, err)
	}
}

func TestFaultClassification(t *testing.T) {
	own := []crm.PlatformPost{{Provider: "instagram", ExternalPostID: "17890001", Outbound: true, Public: true}}
	graph := func(code, sub int) string {
		b := `{"error":{"message":"(#` + strconv.Itoa(code) + `) The user 123456 said: private text","type":"OAuthException","code":` + strconv.Itoa(code)
		if sub != 0 {
			b += `,"error_subcode":` + strconv.Itoa(sub)
		}
		return b + `,"fbtrace_id":"Ab1"}}`
	}
	cases := []struct {
		name   string
		fault  platformtest.Fault
		kind   crm.ErrorKind
		code   string
		action string
	}{
		{name: "permission", fault: platformtest.Fault{Status: 403, Body: graph(10, 0)}, kind: crm.Permanent, code: "GRAPH_10"},
		{name: "permission 200", fault: platformtest.Fault{Status: 403, Body: graph(200, 0)}, kind: crm.Permanent, code: "GRAPH_200"},
		{name: "session", fault: platformtest.Fault{Status: 400, Body: graph(190, 463)}, kind: crm.Permanent, code: "GRAPH_190"},
		{name: "unknown", fault: platformtest.Fault{Status: 500, Body: graph(1, 0)}, kind: crm.Transient, code: "GRAPH_1"},
		{name: "service", fault: platformtest.Fault{Status: 503, Body: graph(2, 0)}, kind: crm.Transient, code: "GRAPH_2"},
		{name: "app limit", fault: platformtest.Fault{Status: 400, Body: graph(341, 0), Header: http.Header{"Retry-After": {"120"}}}, kind: crm.Concurrency, code: "GRAPH_341"},
		{name: "html outage", fault: platformtest.Fault{Status: 502, Body: `<html>`}, kind: crm.Transient, code: "GRAPH_HTTP_502"},
		{name: "no success", fault: platformtest.Fault{Status: 200, Body: `{"success":false}`}, kind: crm.Transient, code: "GRAPH_HTTP_200"},
		{name: "odd 4xx", fault: platformtest.Fault{Status: 404, Body: `not json`}, kind: crm.Permanent, code: "GRAPH_HTTP_404"},
		{name: "gone", fault: platformtest.Fault{Status: 400, Body: graph(100, 33)}, action: platforms.ActionErased},
		{name: "refused", fault: platformtest.Fault{Status: 400, Body: graph(100, 0)}, action: platforms.ActionNotPossible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, fake := platformtest.NewMeta(t)
			fake.AddComment("17890001", platformtest.MetaComment{Instagram: true, ByPage: true})
			fake.FailNext(tc.fault)
			c := newClient(t, url, platformtest.MetaToken, false, nil)
			got, err := c.Erase(context.Background(), own)
			if tc.action != "" {
				if err != nil || len(got) != 1 || got[0].Action != tc.action {
					t.Fatalf("got %+v, %v; want one %s result", got, err, tc.action)
				}
				if strings.Contains(got[0].Detail, "private text") {
					t.Errorf("detail quotes Meta's message: %q", got[0].Detail)
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
			if strings.Contains(ce.Message, "private text") || strings.Contains(ce.Message, "123456") {
				t.Errorf("error quotes Meta's message: %v", ce)
			}
		})
	}
}

func TestNetworkErrorHidesTokenAndURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newClient(t, url, "page-secret-in-query", false, nil)
	_, err := c.Erase(context.Background(), []crm.PlatformPost{{Provider: "instagram", ExternalPostID: "17890001", Outbound: true, Public: true}})
	if err == nil || crm.KindOf(err) != crm.Transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "page-secret-in-query") || strings.Contains(err.Error(), "17890001") {
		t.Errorf("error leaks the request URL: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	url, fake := platformtest.NewMeta(t)
	c := newClient(t, url, platformtest.MetaToken, false, nil)
	_, err := c.Erase(context.Background(), []crm.PlatformPost{{Provider: "x", ExternalPostID: "1"}})
	if err == nil || crm.KindOf(err) != crm.Permanent || !strings.Contains(err.Error(), `provider x`) {
		t.Errorf("foreign provider: err = %v, want permanent naming the provider", err)
	}
	_, err = c.Erase(context.Background(), []crm.PlatformPost{{Provider: "Jan <jan@example.com>", ExternalPostID: "1"}})
	if err == nil || strings.Contains(err.Error(), "jan@example.com") {
		t.Errorf("odd provider: err = %v, want an error without the value", err)
	}
	got, err := c.Erase(context.Background(), []crm.PlatformPost{
		{Provider: "instagram", ExternalPostID: "", Outbound: true, Public: true},
		{Provider: "facebook", ExternalPostID: "1/../me/feed", Public: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"facebook", platforms.ObjectComment, platforms.ActionNotPossible, 1},
		{"instagram", platforms.ObjectPost, platforms.ActionNotPossible, 1},
	}
	if !reflect.DeepEqual(rows(got), want) {
		t.Errorf("results = %+v, want %+v", rows(got), want)
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("made %d calls for invalid ids", n)
	}
}

func TestDescription(t *testing.T) {
	c := New(Config{APIVersion: "21.0"})
	if c.Name() != "meta" || c.cfg.BaseURL != DefaultBaseURL || c.cfg.APIVersion != "v21.0" {
		t.Errorf("name %q base %q version %q", c.Name(), c.cfg.BaseURL, c.cfg.APIVersion)
	}
	for _, p := range []string{"messenger", "instagram", "whatsapp", "facebook"} {
		if platforms.ForProvider([]platforms.Platform{c}, p) != c {
			t.Errorf("ForProvider(%q) does not find the meta connector", p)
		}
		if c.Capabilities(p).Guidance == "" || c.Capabilities(p).DeleteDirectMessages {
			t.Errorf("capabilities(%q) = %+v", p, c.Capabilities(p))
		}
	}
	if wa := c.Capabilities("whatsapp"); wa.DeleteOwnPosts || wa.HideComments || wa.DeleteComments {
		t.Errorf("whatsapp capabilities = %+v, want none", wa)
	}
	if ig := c.Capabilities("instagram"); !ig.DeleteOwnPosts || !ig.HideComments || !ig.DeleteComments {
		t.Errorf("instagram capabilities = %+v", ig)
	}
	if c.Capabilities("x") != (platforms.Capabilities{}) {
		t.Errorf("capabilities for x are not zero")
	}
}
