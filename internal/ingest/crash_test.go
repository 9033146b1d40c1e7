package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// killedStore is the store as a process sees it that was killed: once
// dead, none of its writes reach the database.
type killedStore struct {
	store.Store
	dead *atomic.Bool
}

var errKilled = errors.New("the process was killed")

func (s *killedStore) ClaimConversationEvents(ctx context.Context, claims []store.EventClaim) ([]bool, error) {
	if s.dead.Load() {
		return nil, errKilled
	}
	return s.Store.ClaimConversationEvents(ctx, claims)
}

func (s *killedStore) ReleaseEvents(ctx context.Context, keys []string) error {
	if s.dead.Load() {
		return errKilled
	}
	return s.Store.ReleaseEvents(ctx, keys)
}

func (s *killedStore) SetCheckpoint(ctx context.Context, name string, offset int64) error {
	if s.dead.Load() {
		return errKilled
	}
	return s.Store.SetCheckpoint(ctx, name, offset)
}

// killingClient kills the process at its killAt-th SignalWithStart: before
// Temporal accepted the signal (afterSignal false), or right after
// (afterSignal true), before the ingest could write anything more.
type killingClient struct {
	*fakeClient
	dead        *atomic.Bool
	calls       atomic.Int32
	killAt      int32
	afterSignal bool
}

func (c *killingClient) SignalWithStartWorkflow(ctx context.Context, id, name string, arg any, opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	if c.dead.Load() {
		return nil, errKilled
	}
	if c.calls.Add(1) < c.killAt {
		return c.fakeClient.SignalWithStartWorkflow(ctx, id, name, arg, opts, wf, args...)
	}
	c.dead.Store(true)
	if c.afterSignal {
		return c.fakeClient.SignalWithStartWorkflow(ctx, id, name, arg, opts, wf, args...)
	}
	return nil, errKilled
}

// signalled returns how often each message id was signalled.
func signalled(c *fakeClient) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := map[string]int{}
	for _, signals := range c.signals {
		for _, ids := range signals {
			for _, id := range ids {
				n[id]++
			}
		}
	}
	return n
}

// TestDirectIngestKilledAroundTheSignalLosesNothing kills the process at
// the signal of a direct (non-inbox) Ingest, before and after Temporal
// accepted it. The platform's retry, or the resumed import, after the
// restart either delivers the events or finds them delivered: none is
// claimed but never delivered.
func TestDirectIngestKilledAroundTheSignalLosesNothing(t *testing.T) {
	for _, afterSignal := range []bool{false, true} {
		t.Run(fmt.Sprintf("afterSignal=%v", afterSignal), func(t *testing.T) {
			ctx := context.Background()
			var dead atomic.Bool
			delivered := &fakeClient{}
			in, raw := newIngestor(t, t.TempDir(), &killingClient{fakeClient: delivered, dead: &dead, killAt: 1, afterSignal: afterSignal}, nil)
			in.Store = &killedStore{Store: raw, dead: &dead}
			events := []schemas.Event{event("a", "m1"), event("a", "m2"), event("b", "m3")}
			if _, err := in.Ingest(ctx, events, Options{}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Ingest killed at the signal = %v; want ErrUnavailable", err)
			}

			// The restart: the same database, a process that lives.
			in.Client, in.Store = delivered, raw
			res, err := in.Ingest(ctx, events, Options{})
			if err != nil {
				t.Fatalf("the retry after the restart: %v", err)
			}
			got := signalled(delivered)
			for _, e := range events {
				if got[e.PlatformMessageID] == 0 {
					t.Errorf("%s never reached its workflow (the retry's result: %+v): it was claimed before the kill and dropped as a duplicate", e.PlatformMessageID, res)
				}
			}
			// Delivered and claimed now: a further repeat is a duplicate.
			res, err = in.Ingest(ctx, events, Options{})
			if err != nil || res.Duplicates != len(events) || res.Accepted != 0 {
				t.Errorf("a repeat after the retry: %+v, %v; want %d duplicates", res, err, len(events))
			}
		})
	}
}

// TestImportKilledAtASignalResumesWithEveryEvent is the import of three
// batches killed at the signal of its second: run again, it resumes after
// the first batch and delivers every event.
func TestImportKilledAtASignalResumesWithEveryEvent(t *testing.T) {
	ctx := context.Background()
	const n = 2*importBatch + 100
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"kind":"message","channel":"x","conversation_key":"x:dm:1:%d","direction":"inbound","visibility":"private","platform_message_id":"m%d","author":{"platform_user_id":"%d"},"text":"hoi","occurred_at":"2025-01-02T03:04:05Z","brand":{"id":"1"}}`+"\n", i%7, i, i%7)
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var dead atomic.Bool
	delivered := &fakeClient{}
	// Seven conversations per batch: the eighth signal is in the second.
	in, raw := newIngestor(t, t.TempDir(), &killingClient{fakeClient: delivered, dead: &dead, killAt: 8}, nil)
	killed := &killedStore{Store: raw, dead: &dead}
	in.Store = killed
	if _, err := ImportJSONL(ctx, in, killed, path, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("the import killed at a signal = %v; want ErrUnavailable", err)
	}

	in.Client, in.Store = delivered, raw
	res, err := ImportJSONL(ctx, in, raw, path, nil)
	if err != nil {
		t.Fatalf("the resumed import: %v", err)
	}
	if res.Resumed == 0 {
		t.Errorf("the import started over instead of resuming after the first batch: %+v", res)
	}
	got := signalled(delivered)
	missing := 0
	for i := range n {
		if got[fmt.Sprintf("m%d", i)] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events never reached their workflow after the resumed import (%+v)", missing, n, res)
	}
}
