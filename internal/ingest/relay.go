package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// Sealer encrypts and decrypts inbox payloads under a conversation's data
// key. *privacy.Keyring implements it.
type Sealer interface {
	// Seal encrypts plaintext under the data key keyID.
	Seal(ctx context.Context, keyID string, plaintext []byte) ([]byte, error)
	// Open decrypts what Seal returned; it wraps privacy.ErrErased when the
	// key was destroyed by an erasure.
	Open(ctx context.Context, keyID string, sealed []byte) ([]byte, error)
}

var _ Sealer = (*privacy.Keyring)(nil)

// entries seals each group's events under its conversation's key into one
// inbox item carrying the group's dedupe claims.
func (in *Ingestor) entries(ctx context.Context, groups []*group) ([]store.InboxEntry, error) {
	out := make([]store.InboxEntry, 0, len(groups))
	for _, g := range groups {
		raw, err := json.Marshal(g.events)
		if err != nil {
			return nil, fmt.Errorf("cannot encode events for the inbox: %w", err)
		}
		sealed, err := in.Sealer.Seal(ctx, g.id, raw)
		if err != nil {
			return nil, fmt.Errorf("cannot seal events for the inbox: %w", err)
		}
		claims := make([]store.EventClaim, len(g.keys))
		for i, k := range g.keys {
			claims[i] = store.EventClaim{Key: k, ConversationID: g.id}
		}
		out = append(out, store.InboxEntry{Claims: claims, Item: store.InboxItem{ConversationID: g.id, KeyID: g.id, Payload: sealed}})
	}
	return out, nil
}

// wakeup returns the channel that tells the relay new items are in the
// inbox.
func (in *Ingestor) wakeup() chan struct{} {
	in.wakeOnce.Do(func() { in.wakeCh = make(chan struct{}, 1) })
	return in.wakeCh
}

func (in *Ingestor) wake() {
	select {
	case in.wakeup() <- struct{}{}:
	default:
	}
}

// Relay delivers the durable inbox to Temporal: it claims items oldest
// first, groups them by conversation, sends one SignalWithStart per
// conversation carrying all of its claimed events, and deletes the items
// Temporal accepted. Items it could not deliver are released and offered
// again; items of a crashed relay come back when their lease ends. A
// redelivered event is dropped by the conversation workflow's dedupe, so
// every event reaches its workflow once.
type Relay struct {
	// Ingestor signals the workflows and owns the store.
	Ingestor *Ingestor
	// Batch is the most items one cycle claims. Default: 2000.
	Batch int
	// Interval is the shortest time between the starts of two cycles while
	// items keep arriving: the longer, the more events each signal carries
	// and the fewer signals Temporal must take. Default: 100ms.
	Interval time.Duration
	// Parallel is how many signals one cycle sends at once. Default: 16.
	Parallel int
	// Poll is how often an idle relay looks at the inbox without being
	// woken (items left by another process or a crash). Default: 1s.
	Poll time.Duration
	// Log receives delivery failures; it never receives event data.
	Log *zap.Logger
}

func (r *Relay) defaults() {
	if r.Batch <= 0 {
		r.Batch = 2000
	}
	if r.Interval <= 0 {
		r.Interval = 100 * time.Millisecond
	}
	if r.Parallel <= 0 {
		r.Parallel = 16
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Log == nil {
		r.Log = zap.NewNop()
	}
}

// Run delivers the inbox until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	r.defaults()
	wake := r.Ingestor.wakeup()
	poll := time.NewTicker(r.Poll)
	defer poll.Stop()
	for {
		start := time.Now()
		n, err := r.DeliverOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.Log.Warn("the inbox relay could not deliver; it retries", zap.Error(err))
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-poll.C:
			}
			continue
		}
		if n >= r.Batch {
			continue
		}
		// Let the next cycle gather more events per conversation.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(start.Add(r.Interval))):
		}
	}
}

// relayGroup is one conversation's claimed items.
type relayGroup struct {
	id     string
	seqs   []int64
	events []schemas.Event
}

// DeliverOnce claims one batch of inbox items, signals them and returns how
// many items it claimed. An error means the claim or the acknowledgement
// failed; items whose signal failed are released, which is not an error.
func (r *Relay) DeliverOnce(ctx context.Context) (int, error) {
	r.defaults()
	in := r.Ingestor
	items, err := in.Store.ClaimInbox(ctx, r.Batch)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	byID := map[string]*relayGroup{}
	var order []*relayGroup
	var done, release []int64
	for _, it := range items {
		raw, err := in.Sealer.Open(ctx, it.KeyID, it.Payload)
		if errors.Is(err, privacy.ErrErased) {
			// The conversation was erased: its events must not come back.
			done = append(done, it.Seq)
			continue
		}
		var events []schemas.Event
		if err == nil {
			err = json.Unmarshal(raw, &events)
		}
		if err != nil {
			r.Log.Error("an inbox item cannot be read; it stays in the inbox", zap.Int64("seq", it.Seq), zap.Error(err))
			release = append(release, it.Seq)
			continue
		}
		g := byID[it.ConversationID]
		if g == nil {
			g = &relayGroup{id: it.ConversationID}
			byID[it.ConversationID] = g
			order = append(order, g)
		}
		g.seqs = append(g.seqs, it.Seq)
		g.events = append(g.events, events...)
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		sem = make(chan struct{}, r.Parallel)
	)
	for _, g := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := in.signal(ctx, &group{id: g.id, events: g.events}, false)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.Log.Warn("temporal did not accept a conversation's inbox events; they are offered again", zap.String("conversation", g.id), zap.Error(err))
				release = append(release, g.seqs...)
				return
			}
			done = append(done, g.seqs...)
		}()
	}
	wg.Wait()
	// The outcome is recorded even if ctx ended meanwhile: a signal that
	// went through must not be sent again needlessly.
	bg := context.WithoutCancel(ctx)
	if err := in.Store.AckInbox(bg, done); err != nil {
		return len(items), fmt.Errorf("cannot acknowledge delivered inbox items (they will be delivered again and dropped as duplicates): %w", err)
	}
	if err := in.Store.ReleaseInbox(bg, release); err != nil {
		return len(items), fmt.Errorf("cannot release undelivered inbox items (they come back when their lease ends): %w", err)
	}
	return len(items), nil
}
