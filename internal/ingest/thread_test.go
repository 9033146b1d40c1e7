package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// tweet is a public X event with the conversation key the X parser gives
// it when its parent is not in the same webhook body: the tweet it
// answers, or itself.
func tweet(id, replyTo string) schemas.Event {
	e := event("x:thread:"+id, id)
	if replyTo != "" {
		e.ConversationKey = "x:thread:" + replyTo
	}
	e.Visibility, e.ReplyToID, e.Brand = schemas.Public, replyTo, schemas.BrandAccount{ID: "1"}
	return e
}

// countingStore counts the lookups of claims (of replied-to messages and,
// in the direct mode, of the events' own dedupe keys) and the keys they
// asked for.
type countingStore struct {
	store.Store
	lookups atomic.Int32
	keys    atomic.Int32
	fail    bool
}

func (s *countingStore) EventConversations(ctx context.Context, keys []string) (map[string]string, error) {
	s.lookups.Add(1)
	s.keys.Add(int32(len(keys)))
	if s.fail {
		return nil, errors.New("database unavailable")
	}
	return s.Store.EventConversations(ctx, keys)
}

// threadIngestor is an ingestor in one of the two modes: "direct" signals
// Temporal from Ingest; "inbox" writes the durable inbox, and deliver
// relays it.
func threadIngestor(t *testing.T, mode string) (in *Ingestor, c *fakeClient, st *countingStore, deliver func()) {
	t.Helper()
	c = &fakeClient{}
	var sealer Sealer
	if mode == "inbox" {
		sealer = &fakeSealer{}
	}
	in, raw := newIngestor(t, t.TempDir(), c, sealer)
	st = &countingStore{Store: raw}
	in.Store = st
	deliver = func() {
		t.Helper()
		if mode != "inbox" {
			return
		}
		if _, err := (&Relay{Ingestor: in}).DeliverOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return in, c, st, deliver
}

// conversationOf returns the workflow that was signalled the message id,
// or "" when none was; it fails the test when several were.
func conversationOf(t *testing.T, c *fakeClient, id string) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var got []string
	for wf, signals := range c.signals {
		for _, ids := range signals {
			if slices.Contains(ids, id) {
				got = append(got, wf)
			}
		}
	}
	if len(got) > 1 {
		t.Fatalf("message %s was signalled %d times (%v); want once", id, len(got), got)
	}
	if len(got) == 0 {
		return ""
	}
	return got[0]
}

func ingestOK(t *testing.T, in *Ingestor, opts Options, events ...schemas.Event) Result {
	t.Helper()
	res, err := in.Ingest(context.Background(), events, opts)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

// TestPublicReplyInALaterWebhookJoinsTheThread is the X thread of two
// customers: A tweets T0, B replies to T0 (T1), and the brand answers B's
// reply in a later webhook (T2, whose conversation key names T1). The
// brand's answer, and a reply to that answer, join T0's conversation in
// both ingest modes; a reply to an unknown tweet keeps its own root; a
// repeat is still a duplicate; a direct message never moves.
func TestPublicReplyInALaterWebhookJoinsTheThread(t *testing.T) {
	for _, mode := range []string{"direct", "inbox"} {
		t.Run(mode, func(t *testing.T) {
			in, c, st, deliver := threadIngestor(t, mode)
			thread := in.ConversationID(tweet("t0", ""))
			// The direct mode reads the events' own dedupe claims in the
			// same query as the replied-to messages: one per call.
			ingestOK(t, in, Options{}, tweet("t0", ""))
			before := st.lookups.Load()
			ingestOK(t, in, Options{}, tweet("t1", "t0"))
			if n := st.lookups.Load() - before; n != 1 {
				t.Fatalf("%d lookups for B's reply to T0; want 1", n)
			}
			brand := tweet("t2", "t1")
			brand.Direction = schemas.Outbound
			if res := ingestOK(t, in, Options{}, brand); res.Accepted != 1 {
				t.Fatalf("the brand's reply: %+v; want accepted", res)
			}
			ingestOK(t, in, Options{}, tweet("t3", "t2"))
			// A reply to a tweet webcaresync never saw starts its own
			// conversation, as before.
			ingestOK(t, in, Options{}, tweet("u1", "elsewhere"))
			// A direct message that names a tweet is not moved, and does
			// not look up its reply-to (the direct mode looks up only its
			// own dedupe key).
			dm := event("x:dm:1:2", "d1")
			dm.ReplyToID = "t0"
			keys := st.keys.Load()
			ingestOK(t, in, Options{}, dm)
			ownKeys := int32(0)
			if mode == "direct" {
				ownKeys = 1
			}
			if n := st.keys.Load() - keys; n != ownKeys {
				t.Errorf("a direct message looked up %d claims; want %d: it looked up its reply-to", n, ownKeys)
			}
			deliver()

			for _, id := range []string{"t0", "t1", "t2", "t3"} {
				if got := conversationOf(t, c, id); got != thread {
					t.Errorf("%s went to %q; want the thread's conversation %q", id, got, thread)
				}
			}
			if got, want := conversationOf(t, c, "u1"), in.ConversationID(tweet("u1", "elsewhere")); got != want {
				t.Errorf("the reply to an unknown tweet went to %q; want its own root's %q", got, want)
			}
			if got, want := conversationOf(t, c, "d1"), in.ConversationID(dm); got != want {
				t.Errorf("the direct message went to %q; want its own conversation %q", got, want)
			}
			if got := len(c.signals); got != 3 {
				t.Errorf("%d conversations signalled; want 3 (thread, unknown root, DM)", got)
			}

			// The platform repeats the brand's webhook: a duplicate, not
			// signalled again.
			total := c.total()
			res := ingestOK(t, in, Options{}, brand)
			deliver()
			if res.Duplicates != 1 || res.Accepted != 0 || c.total() != total {
				t.Errorf("the repeated brand reply: %+v, %d signalled events (was %d); want 1 duplicate, nothing signalled", res, c.total(), total)
			}
			// A parked replay of it goes back to the thread.
			ingestOK(t, in, Options{Replay: true}, brand)
			c.mu.Lock()
			last := c.signals[thread][len(c.signals[thread])-1]
			c.mu.Unlock()
			if !slices.Equal(last, []string{"t2"}) {
				t.Errorf("the replayed brand reply was not signalled to the thread (last signal there: %v)", last)
			}
		})
	}
}

// TestRepliesInOneCallFollowEachOther: a JSONL export names every reply's
// parent as its root; replies whose parents are in the same call join them
// without a store lookup, in any order, and a cycle stops.
func TestRepliesInOneCallFollowEachOther(t *testing.T) {
	in, c, st, _ := threadIngestor(t, "direct")
	thread := in.ConversationID(tweet("t0", ""))
	ingestOK(t, in, Options{}, tweet("t2", "t1"), tweet("t0", ""), tweet("t3", "t2"), tweet("t1", "t0"))
	// One lookup, of the four events' own dedupe keys: none for parents.
	if n, k := st.lookups.Load(), st.keys.Load(); n != 1 || k != 4 {
		t.Errorf("%d lookups of %d claims for replies whose parents are in the call; want 1 of the 4 events' own", n, k)
	}
	for _, id := range []string{"t0", "t1", "t2", "t3"} {
		if got := conversationOf(t, c, id); got != thread {
			t.Errorf("%s went to %q; want the thread's conversation %q", id, got, thread)
		}
	}
	// Two tweets that claim to answer each other stay where they are.
	ingestOK(t, in, Options{}, tweet("c1", "c2"), tweet("c2", "c1"))
	if a, b := conversationOf(t, c, "c1"), conversationOf(t, c, "c2"); a == "" || b == "" {
		t.Errorf("a reply cycle was not signalled: %q, %q", a, b)
	}
	// A public reply to a direct message in the same call does not join it.
	dm := event("x:dm:1:2", "d1")
	ingestOK(t, in, Options{}, dm, tweet("p1", "d1"))
	if got := conversationOf(t, c, "p1"); got == in.ConversationID(dm) {
		t.Error("a public reply joined a direct-message conversation")
	}
	// Several replies to earlier messages: one lookup for all of them.
	before := st.lookups.Load()
	ingestOK(t, in, Options{}, tweet("t4", "t3"), tweet("t5", "t1"), tweet("t6", "t4"), tweet("t7", "t0"))
	if n := st.lookups.Load() - before; n != 1 {
		t.Errorf("%d lookups for one call's replies; want 1", n)
	}
	for _, id := range []string{"t4", "t5", "t6", "t7"} {
		if got := conversationOf(t, c, id); got != thread {
			t.Errorf("%s went to %q; want the thread's conversation %q", id, got, thread)
		}
	}
}

// TestReplyLookupFailureIsUnavailable: when the store cannot say where
// the parent is, the webhook must not be acknowledged (the platform
// retries), rather than split the thread.
func TestReplyLookupFailureIsUnavailable(t *testing.T) {
	for _, mode := range []string{"direct", "inbox"} {
		t.Run(mode, func(t *testing.T) {
			in, c, st, deliver := threadIngestor(t, mode)
			ingestOK(t, in, Options{}, tweet("t0", ""))
			st.fail = true
			if _, err := in.Ingest(context.Background(), []schemas.Event{tweet("t1", "t0")}, Options{}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Ingest with a failing lookup = %v; want ErrUnavailable", err)
			}
			st.fail = false
			if res := ingestOK(t, in, Options{}, tweet("t1", "t0")); res.Accepted != 1 {
				t.Fatalf("the platform's retry: %+v; want accepted", res)
			}
			deliver()
			if got, want := conversationOf(t, c, "t1"), in.ConversationID(tweet("t0", "")); got != want {
				t.Errorf("the retried reply went to %q; want %q", got, want)
			}
		})
	}
}

// TestImportReplyInALaterBatchJoinsTheThread imports a JSONL file whose
// reply to a reply comes more than one import batch after its parent.
func TestImportReplyInALaterBatchJoinsTheThread(t *testing.T) {
	in, c, _, _ := threadIngestor(t, "direct")
	lines := []schemas.Event{tweet("t0", ""), tweet("t1", "t0")}
	for i := range importBatch {
		lines = append(lines, tweet("f"+strconv.Itoa(i), ""))
	}
	lines = append(lines, tweet("t2", "t1"))
	path := filepath.Join(t.TempDir(), "thread.jsonl")
	var raw []byte
	for _, e := range lines {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(append(raw, b...), '\n')
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := ImportJSONL(context.Background(), in, in.Store, path, nil)
	if err != nil || res.Accepted != len(lines) {
		t.Fatalf("import: %+v, %v; want %d accepted", res, err, len(lines))
	}
	thread := in.ConversationID(tweet("t0", ""))
	for _, id := range []string{"t0", "t1", "t2"} {
		if got := conversationOf(t, c, id); got != thread {
			t.Errorf("%s went to %q; want the thread's conversation %q", id, got, thread)
		}
	}
}

// placedStore answers lookups of replied-to messages from a fixed map.
type placedStore struct {
	store.Store
	placed map[string]string
}

func (s placedStore) EventConversations(_ context.Context, keys []string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range keys {
		if id, ok := s.placed[k]; ok {
			out[k] = id
		}
	}
	return out, nil
}

// FuzzConversations builds reply graphs (chains, cycles, self-replies,
// private and status events, parents placed earlier or unknown) and checks
// that every event ends in its own conversation, a placed parent's, or
// that of a public parent in the same call, and that a reply whose parent
// is in the call, public and not on a cycle, shares its conversation.
func FuzzConversations(f *testing.F) {
	f.Add([]byte{1, 0, 2, 0, 3, 1, 9, 2})
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := min(len(data)/2, 64)
		placedID := "conv-placed"
		in := &Ingestor{IDs: fakeIDs{}, Store: placedStore{placed: map[string]string{
			fakeIDs{}.Hash("event", "x|m|earlier"): placedID,
		}}}
		events := make([]schemas.Event, n)
		for i := range n {
			id := "m" + strconv.Itoa(i)
			e := tweet(id, "")
			switch r := int(data[2*i]) % (n + 3); {
			case r < n:
				e.ReplyToID = "m" + strconv.Itoa(r)
				e.ConversationKey = "x:thread:" + e.ReplyToID
			case r == n:
				e.ReplyToID, e.ConversationKey = "earlier", "x:thread:earlier"
			case r == n+1:
				e.ReplyToID, e.ConversationKey = "unknown", "x:thread:unknown"
			}
			if data[2*i+1]&1 != 0 {
				e.Visibility = schemas.Private
			}
			if data[2*i+1]&2 != 0 {
				e.Kind, e.Status = schemas.KindStatus, "read"
			}
			events[i] = e
		}
		ids, err := in.conversations(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		allowed := map[string]bool{placedID: true}
		for _, e := range events {
			allowed[in.ConversationID(e)] = true
		}
		for i, e := range events {
			if !allowed[ids[i]] {
				t.Fatalf("event %d went to %q, neither its own, a parent's nor a placed conversation", i, ids[i])
			}
			if !isPublicReply(e) && ids[i] != in.ConversationID(e) {
				t.Fatalf("event %d moved, but it is not a public reply", i)
			}
			if e.ReplyToID == "earlier" && isPublicReply(e) && ids[i] != placedID {
				t.Fatalf("event %d answers a placed message but went to %q", i, ids[i])
			}
		}
		// A chain of public replies without a cycle ends in one
		// conversation.
		for i, e := range events {
			if !isPublicReply(e) || !strings.HasPrefix(e.ReplyToID, "m") {
				continue
			}
			j, _ := strconv.Atoi(e.ReplyToID[1:])
			if events[j].Kind == schemas.KindStatus || events[j].Visibility != schemas.Public || onCycle(events, i) {
				continue
			}
			if ids[i] != ids[j] {
				t.Fatalf("event %d answers public event %d in the same call but went to %q, not %q", i, j, ids[i], ids[j])
			}
		}
	})
}

// onCycle reports whether following public replies within events from i
// comes back to an event already visited.
func onCycle(events []schemas.Event, i int) bool {
	seen := map[int]bool{}
	for {
		if seen[i] {
			return true
		}
		seen[i] = true
		e := events[i]
		if !isPublicReply(e) || !strings.HasPrefix(e.ReplyToID, "m") {
			return false
		}
		j, _ := strconv.Atoi(e.ReplyToID[1:])
		if events[j].Kind == schemas.KindStatus || events[j].Visibility != schemas.Public {
			return false
		}
		i = j
	}
}
