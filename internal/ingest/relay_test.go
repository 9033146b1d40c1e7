package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

type fakeIDs struct{}

func (fakeIDs) OpaqueID(prefix, v string) string { return prefix + "-" + fakeIDs{}.Hash("id", v)[:16] }
func (fakeIDs) Hash(kind, v string) string {
	h := sha256.Sum256([]byte(kind + "|" + v))
	return hex.EncodeToString(h[:])
}

// fakeSealer prefixes the key ID; keys listed in erased are gone.
type fakeSealer struct {
	fail   bool
	erased map[string]bool
}

func (s *fakeSealer) Seal(_ context.Context, keyID string, p []byte) ([]byte, error) {
	if s.fail {
		return nil, errors.New("keyring unavailable")
	}
	return append([]byte(keyID+":"), p...), nil
}

func (s *fakeSealer) Open(_ context.Context, keyID string, b []byte) ([]byte, error) {
	if s.erased[keyID] {
		return nil, fmt.Errorf("data key: %w", privacy.ErrErased)
	}
	rest, ok := strings.CutPrefix(string(b), keyID+":")
	if !ok {
		return nil, errors.New("sealed under another key")
	}
	return []byte(rest), nil
}

// fakeClient records SignalWithStart calls; fail makes them fail.
type fakeClient struct {
	client.Client
	mu      sync.Mutex
	fail    bool
	signals map[string][][]string // workflow ID -> per signal, message IDs
}

func (c *fakeClient) SignalWithStartWorkflow(_ context.Context, id, _ string, arg any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return nil, errors.New("frontend unavailable")
	}
	if c.signals == nil {
		c.signals = map[string][][]string{}
	}
	var ids []string
	for _, e := range arg.(workflows.EventsSignalArg).Events {
		ids = append(ids, e.PlatformMessageID)
	}
	c.signals[id] = append(c.signals[id], ids)
	return nil, nil
}

func (c *fakeClient) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.signals {
		for _, ids := range s {
			n += len(ids)
		}
	}
	return n
}

func event(conv, id string) schemas.Event {
	return schemas.Event{Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: conv, Direction: schemas.Inbound,
		Visibility: schemas.Private, PlatformMessageID: id, Author: schemas.Author{PlatformUserID: "2"}, Text: "hoi",
		OccurredAt: time.Unix(1700000000, 0).UTC()}
}

func newIngestor(t testing.TB, dir string, c client.Client, s Sealer) (*Ingestor, store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), "", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &Ingestor{Client: c, Store: st, IDs: fakeIDs{}, TaskQueue: "q", Sealer: s,
		Metrics: metrics.New(prometheus.NewRegistry()), Log: zap.NewNop()}, st
}

func depth(t testing.TB, st store.Store) int {
	t.Helper()
	n, err := st.InboxDepth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInboxIsRelayedOnceAfterARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sealer := &fakeSealer{}
	// The edge process accepts events and dies before any relay ran.
	edgeClient := &fakeClient{fail: true}
	in, st := newIngestor(t, dir, edgeClient, sealer)
	res, err := in.Ingest(ctx, []schemas.Event{event("a", "m1"), event("b", "m2"), event("a", "m3")}, Options{})
	if err != nil || res.Accepted != 3 {
		t.Fatalf("Ingest = %+v, %v; want 3 accepted into the inbox", res, err)
	}
	res, err = in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{})
	if err != nil || res.Duplicates != 1 || res.Accepted != 0 {
		t.Fatalf("a repeated event: Ingest = %+v, %v; want 1 duplicate", res, err)
	}
	if edgeClient.total() != 0 {
		t.Fatal("with an inbox, Ingest must not signal Temporal itself")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The restarted process relays what the inbox holds.
	c := &fakeClient{}
	in2, st2 := newIngestor(t, dir, c, sealer)
	relay := &Relay{Ingestor: in2}
	n, err := relay.DeliverOnce(ctx)
	if err != nil || n != 2 {
		t.Fatalf("DeliverOnce = %d, %v; want the 2 stored items", n, err)
	}
	convA, convB := in2.ConversationID(event("a", "")), in2.ConversationID(event("b", ""))
	if got := c.signals[convA]; len(got) != 1 || strings.Join(got[0], ",") != "m1,m3" {
		t.Errorf("conversation a got signals %v; want one signal with m1,m3", got)
	}
	if got := c.signals[convB]; len(got) != 1 || strings.Join(got[0], ",") != "m2" {
		t.Errorf("conversation b got signals %v; want one signal with m2", got)
	}
	if d := depth(t, st2); d != 0 {
		t.Errorf("inbox depth after delivery = %d; want 0", d)
	}
	if n, err := relay.DeliverOnce(ctx); n != 0 || err != nil {
		t.Errorf("second DeliverOnce = %d, %v; want nothing left", n, err)
	}
}

func TestRelayReleasesWhatTemporalRefused(t *testing.T) {
	ctx := context.Background()
	c := &fakeClient{fail: true}
	in, st := newIngestor(t, t.TempDir(), c, &fakeSealer{})
	if _, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{}); err != nil {
		t.Fatal(err)
	}
	relay := &Relay{Ingestor: in}
	if _, err := relay.DeliverOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if d := depth(t, st); d != 1 {
		t.Fatalf("a refused signal must leave its item in the inbox; depth = %d", d)
	}
	c.fail = false
	if n, err := relay.DeliverOnce(ctx); n != 1 || err != nil {
		t.Fatalf("the released item must be offered again at once: DeliverOnce = %d, %v", n, err)
	}
	if c.total() != 1 || depth(t, st) != 0 {
		t.Errorf("signalled %d events, depth %d; want 1 and 0", c.total(), depth(t, st))
	}
}

func TestRelayDropsItemsOfErasedConversations(t *testing.T) {
	ctx := context.Background()
	sealer := &fakeSealer{erased: map[string]bool{}}
	c := &fakeClient{}
	in, st := newIngestor(t, t.TempDir(), c, sealer)
	if _, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{}); err != nil {
		t.Fatal(err)
	}
	sealer.erased[in.ConversationID(event("a", ""))] = true
	if _, err := (&Relay{Ingestor: in}).DeliverOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if c.total() != 0 || depth(t, st) != 0 {
		t.Errorf("an erased conversation's item was signalled (%d) or kept (depth %d)", c.total(), depth(t, st))
	}
}

func TestInboxFailureAnswersUnavailableAndAcceptsTheRetry(t *testing.T) {
	ctx := context.Background()
	sealer := &fakeSealer{fail: true}
	in, st := newIngestor(t, t.TempDir(), &fakeClient{}, sealer)
	if _, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ingest with a failing inbox = %v; want ErrUnavailable", err)
	}
	sealer.fail = false
	res, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("the platform's retry: Ingest = %+v, %v; want it accepted, not a duplicate", res, err)
	}
	if d := depth(t, st); d != 1 {
		t.Errorf("inbox depth = %d; want 1", d)
	}
}

func TestRelayRunDeliversWhenWoken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &fakeClient{}
	in, _ := newIngestor(t, t.TempDir(), c, &fakeSealer{})
	done := make(chan error, 1)
	go func() { done <- (&Relay{Ingestor: in, Poll: time.Hour}).Run(ctx) }()
	if _, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.total() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.total() != 1 {
		t.Fatalf("the relay signalled %d events after being woken; want 1", c.total())
	}
}

func TestInboxCrashBetweenClaimAndWriteLosesNothing(t *testing.T) {
	ctx := context.Background()
	crash := true
	st, err := store.OpenWithOptions(ctx, "", t.TempDir(), nil, store.Options{BeforeInboxWrite: func(context.Context) error {
		if crash {
			return errors.New("injected crash")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	in := &Ingestor{Client: &fakeClient{}, Store: st, IDs: fakeIDs{}, TaskQueue: "q", Sealer: &fakeSealer{},
		Metrics: metrics.New(prometheus.NewRegistry()), Log: zap.NewNop()}
	if _, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ingest with a crash between claim and inbox write = %v; want ErrUnavailable", err)
	}
	crash = false
	res, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{})
	if err != nil || res.Accepted != 1 || res.Duplicates != 0 {
		t.Fatalf("the platform's retry: Ingest = %+v, %v; want it accepted, not a duplicate", res, err)
	}
	if d := depth(t, st); d != 1 {
		t.Errorf("inbox depth = %d; want 1", d)
	}
}

func TestInboxPartialRepeatEnqueuesOnlyTheNewEvents(t *testing.T) {
	ctx := context.Background()
	c := &fakeClient{}
	in, st := newIngestor(t, t.TempDir(), c, &fakeSealer{})
	if _, err := in.Ingest(ctx, []schemas.Event{event("a", "m1")}, Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := in.Ingest(ctx, []schemas.Event{event("a", "m1"), event("a", "m2"), event("a", "m2")}, Options{})
	if err != nil || res.Accepted != 1 || res.Duplicates != 2 {
		t.Fatalf("Ingest = %+v, %v; want m2 accepted, m1 and the second m2 duplicates", res, err)
	}
	if d := depth(t, st); d != 2 {
		t.Fatalf("inbox depth = %d; want 2", d)
	}
	if _, err := (&Relay{Ingestor: in}).DeliverOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := c.signals[in.ConversationID(event("a", ""))]
	if len(got) != 1 || strings.Join(got[0], ",") != "m1,m2" {
		t.Errorf("signals = %v; want one signal with m1,m2", got)
	}
}
