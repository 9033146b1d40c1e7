package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/schemas"
)

// sampleEvents parses every sample payload as the edge will, for the
// expected records.
func allSampleEvents(t *testing.T) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	for _, c := range samples.Conversations() {
		for _, p := range c.Payloads {
			out = append(out, parsePayload(p)...)
		}
	}
	return out
}

// parsePayload parses a sample payload; the samples are valid.
func parsePayload(p samples.Payload) []schemas.Event {
	var evs []schemas.Event
	var err error
	if p.Channel == "meta" {
		evs, err = meta.New("", "").Parse(p.Body)
	} else {
		evs, err = x.New("").Parse(p.Body)
	}
	if err != nil {
		panic("a sample payload does not parse: " + err.Error())
	}
	return evs
}

// TestWebhooksReachTheCRMExactlyOnce posts every sample payload three
// times, signed the way each platform signs, and checks that each message
// is one SocialPost linked to its persona, its case and the post it
// answers.
func TestWebhooksReachTheCRMExactlyOnce(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	ctx := context.Background()
	for round := range 3 {
		for _, c := range samples.Conversations() {
			for _, p := range c.Payloads {
				code, body, err := s.hooks.Post(ctx, p.Channel, p.Body)
				if err != nil || code != http.StatusOK {
					t.Fatalf("round %d, %s: %d %s %v", round, c.Name, code, body, err)
				}
			}
		}
	}
	var messages []schemas.Event
	for _, e := range allSampleEvents(t) {
		if e.Kind == schemas.KindMessage {
			messages = append(messages, e)
		}
	}
	eventually(t, 60*time.Second, "every message in the CRM", func() bool {
		return len(s.Sandbox.Records("SocialPost")) >= len(messages)
	})
	// Give any duplicate time to show up before counting.
	time.Sleep(time.Second)
	posts := s.Sandbox.Records("SocialPost")
	if len(posts) != len(messages) {
		t.Fatalf("%d SocialPosts for %d messages", len(posts), len(messages))
	}
	byExternal := map[string]map[string]any{}
	byID := map[string]map[string]any{}
	for _, p := range posts {
		byExternal[p["ExternalPostId"].(string)] = p
		byID[p["Id"].(string)] = p
	}
	personas := map[string]bool{}
	for _, r := range s.Sandbox.Records("SocialPersona") {
		personas[r["Id"].(string)] = true
	}
	cases := map[string]bool{}
	for _, r := range s.Sandbox.Records("Case") {
		cases[r["Id"].(string)] = true
	}
	for _, e := range messages {
		p, ok := byExternal[e.PlatformMessageID]
		if !ok {
			t.Errorf("message %s (%s) is not in the CRM", e.PlatformMessageID, e.Channel)
			continue
		}
		// As in Salesforce's Social Customer Service, a customer's post has
		// their persona and the brand's reply is marked outbound.
		if id, _ := p["PersonaId"].(string); e.Direction == schemas.Inbound && !personas[id] {
			t.Errorf("inbound post %s has no persona", e.PlatformMessageID)
		}
		if out, _ := p["IsOutbound"].(bool); out != (e.Direction == schemas.Outbound) {
			t.Errorf("post %s: IsOutbound %v for a %s message", e.PlatformMessageID, out, e.Direction)
		}
		if id, _ := p["ParentId"].(string); !cases[id] {
			t.Errorf("post %s is not in a case", e.PlatformMessageID)
		}
		if e.Text != "" && p["Content"] != e.Text {
			t.Errorf("post %s content differs (emoji and accents must survive)", e.PlatformMessageID)
		}
		if e.ReplyToID != "" {
			if target, ok := byExternal[e.ReplyToID]; ok {
				if p["ReplyToId"] != target["Id"] {
					t.Errorf("post %s does not reply to %s", e.PlatformMessageID, e.ReplyToID)
				}
			}
		}
	}
	if metricSum(t, s, "webcaresync_events_duplicate_total") == 0 {
		t.Error("replayed webhooks were not counted as duplicates")
	}
}

// TestBadInputIsRejectedAndNothingStored sends what the platforms and
// attackers send wrong, and checks the status codes, the error bodies, and
// that nothing reached Temporal or the CRM.
func TestBadInputIsRejectedAndNothingStored(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	base := "http://" + s.HTTPAddr
	body := samples.Conversations()[0].Payloads[0].Body
	post := func(path string, body []byte, header map[string]string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	xsig := func(b []byte) map[string]string {
		return map[string]string{"x-twitter-webhooks-signature": x.Sign(s.Cfg.XConsumerSecret, b)}
	}
	cases := []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		code   int
		field  string
	}{
		{"missing signature", "/webhooks/x", body, nil, 401, ""},
		{"wrong secret", "/webhooks/x", body, map[string]string{"x-twitter-webhooks-signature": x.Sign("not-the-secret", body)}, 401, ""},
		{"meta signature over another body", "/webhooks/meta", body, map[string]string{"X-Hub-Signature-256": meta.Sign(s.Cfg.MetaAppSecret, []byte("{}"))}, 401, ""},
		{"malformed JSON", "/webhooks/x", []byte(`{"for_user_id": "1",`), xsig([]byte(`{"for_user_id": "1",`)), 400, ""},
		{"unknown object", "/webhooks/meta", []byte(`{"object":"newsletter","entry":[]}`), map[string]string{"X-Hub-Signature-256": meta.Sign(s.Cfg.MetaAppSecret, []byte(`{"object":"newsletter","entry":[]}`))}, 400, "object"},
		{"too large", "/webhooks/x", bytes.Repeat([]byte("a"), 1<<20+1), nil, 413, ""},
	}
	for _, c := range cases {
		code, got := post(c.path, c.body, c.header)
		if code != c.code {
			t.Errorf("%s: got %d %s, want %d", c.name, code, got, c.code)
		}
		if !strings.Contains(got, `"error"`) {
			t.Errorf("%s: body %s has no error", c.name, got)
		}
		if c.field != "" && !strings.Contains(got, fmt.Sprintf(`"field":%q`, c.field)) {
			t.Errorf("%s: body %s does not name field %s", c.name, got, c.field)
		}
	}
	// A generic event that fails the schema names the field.
	bad := []byte(`{"events":[{"kind":"message","channel":"pigeon","conversation_key":"k","direction":"inbound","visibility":"private","platform_message_id":"1","author":{"platform_user_id":"u"},"occurred_at":"2024-05-01T09:00:00Z","brand":{"id":"b"}}]}`)
	code, got, _ := s.hooks.Post(context.Background(), "generic", bad)
	if code != 400 || !strings.Contains(string(got), "events[0].channel") {
		t.Errorf("schema failure: %d %s", code, got)
	}
	// A stale generic signature is refused.
	req, _ := http.NewRequest("POST", base+"/webhooks/generic", bytes.NewReader(bad))
	sig, ts := signGenericAt(s.Cfg.GenericSecret, time.Now().Add(-6*time.Minute), bad)
	req.Header.Set("X-Webcaresync-Signature", sig)
	req.Header.Set("X-Webcaresync-Timestamp", ts)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("stale generic request: %d, want 401", resp.StatusCode)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(s.Sandbox.Records("SocialPost")); n != 0 {
		t.Errorf("%d posts reached the CRM from rejected requests", n)
	}
	it := s.Client.ListWorkflow
	res, err := it(context.Background(), listAll())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Executions) != 0 {
		t.Errorf("%d workflows started from rejected requests", len(res.Executions))
	}
	for _, pii := range []string{"NL-48213", "bestelling", "Hoi!"} {
		if s.logs.Contains(pii) {
			t.Errorf("rejected content %q was logged", pii)
		}
	}
}
