// Package ingest hands canonical events to their conversation workflows:
// it derives the opaque conversation ID, drops repeated events, and signals
// (with start) one workflow per conversation. It is the one entry to the
// data path for webhooks, the JSONL import and replays.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

// signalTimeout bounds one SignalWithStart.
const signalTimeout = 10 * time.Second

// ErrUnavailable means Temporal did not durably accept the events; the
// caller must not acknowledge them (webhooks answer 503 so that the
// platform retries).
var ErrUnavailable = errors.New("temporal did not accept the events; retry later")

// SearchAttributeKind is the keyword search attribute that tells
// webcaresync's workflows apart. Its values carry no PII.
const SearchAttributeKind = "WebcaresyncKind"

// KindKey is the typed key of SearchAttributeKind.
var KindKey = temporal.NewSearchAttributeKeyKeyword(SearchAttributeKind)

// IDs derives opaque IDs from natural keys.
type IDs interface {
	// OpaqueID returns an ID like prefix-<base32> that reveals nothing of
	// value.
	OpaqueID(prefix, value string) string
	// Hash returns a keyed hash of value, domain-separated by kind.
	Hash(kind, value string) string
}

// Ingestor signals events into conversation workflows.
type Ingestor struct {
	Client       client.Client
	Store        store.Store
	IDs          IDs
	TaskQueue    string
	CRMTaskQueue string
	// IdleTimeout and BatchSize are passed to new conversation workflows;
	// zero keeps the workflow's defaults.
	IdleTimeout time.Duration
	BatchSize   int
	// FlushInterval is passed to new conversation workflows: the shortest
	// time between two CRM batches of one conversation while events keep
	// arriving. Zero keeps the workflow's default (no wait).
	FlushInterval time.Duration
	// Sealer, when set, makes Ingest durable in the store's inbox instead
	// of signalling Temporal itself: the events are sealed under their
	// conversation's data key, group-committed with concurrent callers, and
	// a Relay delivers them. Replays still signal directly.
	Sealer Sealer
	// Temporal, when set with Sealer, refuses events while Temporal is
	// unreachable (see Health).
	Temporal *Health
	Metrics  *metrics.Metrics
	Log      *zap.Logger

	wakeOnce sync.Once
	wakeCh   chan struct{}
}

// Options change how one Ingest call treats its events.
type Options struct {
	// HonourSuppression skips events whose author is on the erasure
	// suppression list. The import always sets it, so that a backfill of
	// old events cannot bring erased data back.
	HonourSuppression bool
	// Replay bypasses dedupe, for parked events replayed after a fix.
	Replay bool
}

// Result counts what one Ingest call did.
type Result struct {
	Accepted   int
	Duplicates int
	Suppressed int
}

// ConversationID returns the opaque conversation ID (and workflow ID) of an
// event.
func (in *Ingestor) ConversationID(e schemas.Event) string {
	return in.IDs.OpaqueID("conv", string(e.Channel)+"|"+e.ConversationKey)
}

// AuthorHash is the suppression-list hash of an event's author.
func AuthorHash(ids IDs, e schemas.Event) string {
	return ids.Hash(store.KindHandle, string(e.Channel)+":"+e.Author.PlatformUserID)
}

type group struct {
	id     string
	events []schemas.Event
	keys   []string
}

// Ingest hands the events to their conversation workflows and returns once
// Temporal (or, with a Sealer, the store's inbox) has durably accepted every
// one of them, or ErrUnavailable. A repeated event is counted as a
// duplicate and not signalled again.
func (in *Ingestor) Ingest(ctx context.Context, events []schemas.Event, opts Options) (Result, error) {
	var res Result
	if opts.HonourSuppression {
		kept := events[:0:0]
		for _, e := range events {
			hit, err := in.Store.AnySuppressed(ctx, []string{AuthorHash(in.IDs, e)})
			if err != nil {
				return res, fmt.Errorf("cannot read the suppression list: %w", err)
			}
			if hit {
				res.Suppressed++
				in.Metrics.EventsSupressed.Inc()
				continue
			}
			kept = append(kept, e)
		}
		events = kept
	}
	ids, err := in.conversations(ctx, events)
	if err != nil {
		return res, err
	}
	groups, order := in.group(events, ids)
	if in.Sealer != nil && !opts.Replay {
		if in.Temporal.Down() {
			return res, fmt.Errorf("%w: temporal is unreachable", ErrUnavailable)
		}
		return in.ingestInbox(ctx, groups, order, res)
	}
	if !opts.Replay {
		if err := in.claim(ctx, groups, order, &res); err != nil {
			return res, err
		}
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []*group
	)
	for _, id := range order {
		g := groups[id]
		if len(g.events) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.signal(ctx, g, opts.Replay); err != nil {
				mu.Lock()
				failed = append(failed, g)
				mu.Unlock()
				in.Log.Warn("temporal did not accept a conversation's events; the platform will retry", zap.String("conversation", g.id), zap.Error(err))
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		var keys []string
		for _, g := range failed {
			keys = append(keys, g.keys...)
		}
		if !opts.Replay {
			if err := in.Store.ReleaseEvents(context.WithoutCancel(ctx), keys); err != nil {
				in.Log.Error("cannot release dedupe claims after a failed signal; the platform's retry may be dropped as a duplicate", zap.Error(err))
			}
		}
		return res, ErrUnavailable
	}
	in.count(groups, order, &res)
	return res, nil
}

// maxClaimRounds bounds the ClaimEnqueueInbox calls of one Ingest. A
// round repeats only the events whose entry lost another key to a
// concurrent duplicate, so two rounds settle all but adversarial races.
const maxClaimRounds = 8

// ingestInbox claims the events' dedupe keys and writes the fresh events to
// the inbox in one store transaction (group-committed with concurrent
// webhooks), one item per conversation sealed under its data key, and wakes
// the relay. An event is either claimed and in the inbox, or neither, so a
// crash at any point cannot lose an acknowledged event nor make the
// platform's retry look like a duplicate.
func (in *Ingestor) ingestInbox(ctx context.Context, groups map[string]*group, order []string, res Result) (Result, error) {
	seen := map[string]bool{}
	var pending []*group
	for _, id := range order {
		g := &group{id: id}
		for _, e := range groups[id].events {
			key := in.IDs.Hash("event", workflows.DedupeKey(e))
			if seen[key] {
				res.Duplicates++
				in.Metrics.EventsDuplicate.WithLabelValues(string(e.Channel)).Inc()
				continue
			}
			seen[key] = true
			g.events = append(g.events, e)
			g.keys = append(g.keys, key)
		}
		if len(g.events) > 0 {
			pending = append(pending, g)
		}
	}
	enqueued := false
	defer func() {
		if enqueued {
			in.wake()
		}
	}()
	for round := 0; len(pending) > 0; round++ {
		if round == maxClaimRounds {
			in.Log.Warn("events kept losing dedupe claims to concurrent duplicates; the platform will retry")
			return res, ErrUnavailable
		}
		entries, err := in.entries(ctx, pending)
		if err != nil {
			in.Log.Warn("the inbox did not accept the events; the platform will retry", zap.Error(err))
			return res, ErrUnavailable
		}
		outcomes, err := in.Store.ClaimEnqueueInbox(ctx, entries)
		if err != nil {
			in.Log.Warn("the inbox did not accept the events; the platform will retry", zap.Error(err))
			return res, ErrUnavailable
		}
		var next []*group
		for i, g := range pending {
			again := &group{id: g.id}
			for j, o := range outcomes[i] {
				e := g.events[j]
				switch o {
				case store.ClaimEnqueued:
					enqueued = true
					res.Accepted++
					in.Metrics.EventsAccepted.WithLabelValues(string(e.Channel)).Inc()
				case store.ClaimDuplicate:
					res.Duplicates++
					in.Metrics.EventsDuplicate.WithLabelValues(string(e.Channel)).Inc()
				default:
					again.events = append(again.events, e)
					again.keys = append(again.keys, g.keys[j])
				}
			}
			if len(again.events) > 0 {
				next = append(next, again)
			}
		}
		pending = next
	}
	return res, nil
}

// count adds the accepted events to res and the metrics.
func (in *Ingestor) count(groups map[string]*group, order []string, res *Result) {
	for _, id := range order {
		g := groups[id]
		res.Accepted += len(g.events)
		for _, e := range g.events {
			in.Metrics.EventsAccepted.WithLabelValues(string(e.Channel)).Inc()
		}
	}
}

// group splits events by conversation (ids holds each event's), keeping
// their order.
func (in *Ingestor) group(events []schemas.Event, ids []string) (map[string]*group, []string) {
	groups := map[string]*group{}
	var order []string
	for i, e := range events {
		id := ids[i]
		g, ok := groups[id]
		if !ok {
			g = &group{id: id}
			groups[id] = g
			order = append(order, id)
		}
		g.events = append(g.events, e)
	}
	return groups, order
}

// claim drops events already accepted before, keeping the claims of the
// fresh ones in their group so they can be released if the signal fails.
func (in *Ingestor) claim(ctx context.Context, groups map[string]*group, order []string, res *Result) error {
	var claims []store.EventClaim
	for _, id := range order {
		for _, e := range groups[id].events {
			claims = append(claims, store.EventClaim{Key: in.IDs.Hash("event", workflows.DedupeKey(e)), ConversationID: id})
		}
	}
	fresh, err := in.Store.ClaimConversationEvents(ctx, claims)
	if err != nil {
		return fmt.Errorf("%w: the dedupe store failed: %v", ErrUnavailable, err)
	}
	i := 0
	for _, id := range order {
		g := groups[id]
		kept := g.events[:0:0]
		for _, e := range g.events {
			if fresh[i] {
				kept = append(kept, e)
				g.keys = append(g.keys, claims[i].Key)
			} else {
				res.Duplicates++
				in.Metrics.EventsDuplicate.WithLabelValues(string(e.Channel)).Inc()
			}
			i++
		}
		g.events = kept
	}
	return nil
}

// signal hands one conversation's events to its workflow, starting it if
// needed. The payload is encrypted under the conversation's data key.
func (in *Ingestor) signal(ctx context.Context, g *group, replay bool) error {
	// Bound the wait: the SDK retries an unreachable frontend until the
	// context ends, and the platform must get its 503 while it still
	// listens.
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	ctx = privacy.WithKeyID(ctx, g.id)
	_, err := in.Client.SignalWithStartWorkflow(ctx, g.id, workflows.EventsSignal,
		workflows.EventsSignalArg{Events: g.events, Replay: replay},
		client.StartWorkflowOptions{
			ID:                       g.id,
			TaskQueue:                in.TaskQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			TypedSearchAttributes:    temporal.NewSearchAttributes(KindKey.ValueSet("conversation")),
		},
		workflows.Conversation, workflows.ConversationInput{
			ConversationID: g.id,
			CRMTaskQueue:   in.CRMTaskQueue,
			IdleTimeout:    in.IdleTimeout,
			BatchSize:      in.BatchSize,
			FlushInterval:  in.FlushInterval,
		})
	return err
}
