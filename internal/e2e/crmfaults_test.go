package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// chat builds n livechat messages of one conversation.
func chat(conv string, from, n int) []schemas.Event {
	var out []schemas.Event
	base := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		out = append(out, schemas.Event{
			Kind: schemas.KindMessage, Channel: schemas.ChannelLivechat, ConversationKey: "livechat:" + conv,
			Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: fmt.Sprintf("%s-%d", conv, i),
			Author: schemas.Author{PlatformUserID: "visitor-" + conv}, Text: fmt.Sprintf("bericht %d", i),
			OccurredAt: base.Add(time.Duration(i) * time.Second), Brand: schemas.BrandAccount{ID: "webshop"},
		})
	}
	return out
}

func ingestAll(t *testing.T, s *stack, events []schemas.Event) {
	t.Helper()
	if _, err := s.Ingestor.Ingest(context.Background(), events, ingest.Options{}); err != nil {
		t.Fatal(err)
	}
}

func exactlyOnce(t *testing.T, s *stack, want int) {
	t.Helper()
	eventually(t, 3*time.Minute, fmt.Sprintf("%d posts in the CRM", want), func() bool { return len(s.Sandbox.Records("SocialPost")) >= want })
	time.Sleep(time.Second)
	seen := map[string]int{}
	for _, p := range s.Sandbox.Records("SocialPost") {
		seen[p["ExternalPostId"].(string)]++
	}
	if len(seen) != want {
		t.Fatalf("%d distinct messages in the CRM, want %d", len(seen), want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %s is in the CRM %d times", id, n)
		}
	}
}

// TestSessionExpiresMidRun expires the Salesforce session between batches
// and in the middle of them: the connector refreshes once and every
// message ends up in the CRM exactly once.
func TestSessionExpiresMidRun(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	ingestAll(t, s, chat("a", 0, 150))
	eventually(t, time.Minute, "the first batch", func() bool { return len(s.Sandbox.Records("SocialPost")) > 0 })
	s.Sandbox.ExpireSessions()
	ingestAll(t, s, chat("a", 150, 150))
	s.Sandbox.ExpireSessions()
	ingestAll(t, s, chat("b", 0, 200))
	exactlyOnce(t, s, 500)
	if metricSum(t, s, "webcaresync_salesforce_session_refreshes_total") == 0 {
		t.Error("no session refresh was counted")
	}
}

// TestBudgetExhaustedMidRun exhausts the org's daily API budget in the
// middle of a run: syncing pauses (visible in metrics), probes at most
// once a minute, and resumes without loss when the budget is back.
func TestBudgetExhaustedMidRun(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	ingestAll(t, s, chat("a", 0, 50))
	eventually(t, time.Minute, "the first batch", func() bool { return len(s.Sandbox.Records("SocialPost")) == 50 })
	s.Sandbox.ExhaustBudget()
	ingestAll(t, s, chat("a", 50, 100))
	ingestAll(t, s, chat("b", 0, 100))
	eventually(t, time.Minute, "the pause in metrics", func() bool {
		return metricSum(t, s, "webcaresync_sync_paused") == 1 && metricSum(t, s, "webcaresync_crm_budget_exhausted_total") >= 1
	})
	// Calls that passed the gate before it closed (the other conversation's
	// batch, already on the wire) still land; they are not probes. Wait
	// until the CRM has been quiet for two seconds, then watch a window.
	calls := settledCalls(s, 2*time.Second)
	before := len(s.Sandbox.RequestLog())
	time.Sleep(10 * time.Second)
	if extra := s.Sandbox.TotalCalls() - calls; extra > 1 {
		t.Errorf("%d CRM calls in 10 s while paused (%v); probes must be at most one a minute", extra, s.Sandbox.RequestLog()[before:])
	}
	s.Sandbox.ResetBudget()
	exactlyOnce(t, s, 250)
	eventually(t, time.Minute, "the pause to end", func() bool { return metricSum(t, s, "webcaresync_sync_paused") == 0 })
}

// settledCalls waits until the sandbox has received no request for quiet
// and returns its total count of requests.
func settledCalls(s *stack, quiet time.Duration) int64 {
	n := s.Sandbox.TotalCalls()
	for {
		time.Sleep(quiet)
		m := s.Sandbox.TotalCalls()
		if m == n {
			return n
		}
		n = m
	}
}

// TestParkedEventReplaysAfterMappingFix runs with a mapping whose value
// Salesforce rejects for one channel: that event is parked with its reason
// and the others are written; after the mapping is fixed, the replay
// writes it.
func TestParkedEventReplaysAfterMappingFix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "..", "mappings", "salesforce.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(raw), "lookup: {x: Twitter, messenger: Facebook, instagram: Instagram, whatsapp: WhatsApp}\n        default: Other\n        create_only: true\n      MessageType", "lookup: {x: Twitter, messenger: Facebook, instagram: Instagram, whatsapp: WhatsApp, livechat: Pigeon}\n        default: Other\n        create_only: true\n      MessageType", 1)
	if broken == string(raw) {
		t.Fatal("the mapping's SocialPost Provider block changed, so this test's edit no longer applies: update the strings above")
	}
	bad := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(bad, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if errs := mappings.Validate(bad); errs != nil {
		t.Fatalf("the broken mapping must pass validation (the value is only wrong for Salesforce): %v", errs)
	}
	data := filepath.Join(dir, "data")
	s := start(t, stackOptions{dataDir: data, cfg: func(c *config.Config) { c.Mapping = bad }})
	x := chat("x", 0, 1)[0]
	x.Channel, x.ConversationKey, x.PlatformMessageID = schemas.ChannelX, "x:dm:1:2", "tw-1"
	ingestAll(t, s, append(chat("lc", 0, 1), x))
	eventually(t, time.Minute, "the parked event", func() bool {
		n, _ := s.Store.CountParked(context.Background())
		return n == 1 && len(s.Sandbox.Records("SocialPost")) == 1
	})
	parked, _ := s.Store.ListParked(context.Background(), 0)
	if parked[0].ErrorCode != "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" || len(parked[0].Fields) == 0 || parked[0].Fields[0] != "Provider" {
		t.Fatalf("parked with %s %v, want the picklist error on Provider", parked[0].ErrorCode, parked[0].Fields)
	}
	if strings.Contains(parked[0].Reason, "Pigeon") || strings.Contains(parked[0].Reason, "bericht") {
		t.Errorf("the parked reason quotes data: %q", parked[0].Reason)
	}
	if metricSum(t, s, "webcaresync_parked_events_total") != 1 {
		t.Error("the parked event is not in the metrics")
	}
	// Fix the mapping: restart the worker with the good mapping and replay.
	s.Close()
	s2 := start(t, stackOptions{dataDir: data})
	n, err := s2.ReplayParked(context.Background(), nil)
	if err != nil || n != 1 {
		t.Fatalf("replayed %d, %v", n, err)
	}
	eventually(t, time.Minute, "the replayed event in the CRM", func() bool {
		for _, p := range s2.Sandbox.Records("SocialPost") {
			if p["ExternalPostId"] == "lc-0" {
				return true
			}
		}
		return false
	})
	if n, _ := s2.Store.CountParked(context.Background()); n != 0 {
		t.Errorf("%d events still parked", n)
	}
}
