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

	"github.com/webcaresync/webcaresync/activities"
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
	// HonourSuppression skips events the erasure suppression list covers:
	// those whose author was erased, and every event, inbound or the
	// brand's reply, of a conversation an erasure deleted. The import
	// always sets it, so that a backfill of old events cannot bring erased
	// data back.
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
// duplicate and not signalled again. Without a Sealer, an event is claimed
// only after its signal, so two concurrent calls with the same new event
// may both signal it (the workflow drops the repeat by its dedupe key),
// and a crash never leaves an event claimed that did not reach Temporal.
func (in *Ingestor) Ingest(ctx context.Context, events []schemas.Event, opts Options) (Result, error) {
	var res Result
	// The direct path reads the events' own dedupe claims with the
	// conversations of the messages they answer, in one query; the inbox
	// claims atomically as it writes, and a replay bypasses dedupe.
	direct := in.Sealer == nil && !opts.Replay
	ids, claimed, err := in.place(ctx, events, direct)
	if err != nil {
		return res, err
	}
	if opts.HonourSuppression {
		// After placing the events, so that a reply that follows its
		// parent into an erased conversation is suppressed with it.
		if events, ids, err = in.suppress(ctx, events, ids, &res); err != nil {
			return res, err
		}
	}
	groups, order := in.group(events, ids)
	if in.Sealer != nil && !opts.Replay {
		if in.Temporal.Down() {
			return res, fmt.Errorf("%w: temporal is unreachable", ErrUnavailable)
		}
		return in.ingestInbox(ctx, groups, order, res)
	}
	if direct {
		in.dropClaimed(groups, order, claimed, &res)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		failed    bool
		delivered []*group
	)
	for _, id := range order {
		g := groups[id]
		if len(g.events) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := in.signal(ctx, g, opts.Replay)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = true
				in.Log.Warn("temporal did not accept a conversation's events; the platform will retry", zap.String("conversation", g.id), zap.Error(err))
				return
			}
			delivered = append(delivered, g)
		}()
	}
	wg.Wait()
	if !opts.Replay {
		// Claimed only once delivered: a crash before this point leaves
		// the events unclaimed, so the retry delivers them again and the
		// workflow drops what it has seen. Claiming first would make the
		// retry drop events that never reached their workflow.
		if err := in.claim(context.WithoutCancel(ctx), delivered); err != nil {
			in.Log.Warn("events reached their workflows but their dedupe claims were not recorded; the platform's retry delivers them again and the workflow drops the repeats", zap.Error(err))
			return res, fmt.Errorf("%w: the dedupe store failed: %v", ErrUnavailable, err)
		}
	}
	if failed {
		return res, ErrUnavailable
	}
	in.count(groups, order, &res)
	return res, nil
}

// suppress drops the events the erasure suppression list covers, counting
// them in res, and returns the rest with their conversation IDs. An event
// is covered when its author was erased, its conversation (ids holds each
// event's) was deleted by an erasure, or it is, or answers, a message an
// erasure deleted: the brand's replies to an erased customer are authored
// by the brand but answer, name and quote the customer, and a public reply
// may name another root than the erased thread's. One query answers for
// the whole call when nothing in it is covered, the usual case; otherwise
// each hash is looked up once.
func (in *Ingestor) suppress(ctx context.Context, events []schemas.Event, ids []string, res *Result) ([]schemas.Event, []string, error) {
	hashes := make([][]string, len(events))
	var all []string
	for i, e := range events {
		hashes[i] = []string{activities.ConversationHash(in.IDs, ids[i]), AuthorHash(in.IDs, e), in.messageHash(e.Channel, e.PlatformMessageID)}
		if e.ReplyToID != "" {
			hashes[i] = append(hashes[i], in.messageHash(e.Channel, e.ReplyToID))
		}
		all = append(all, hashes[i]...)
	}
	if len(all) == 0 {
		return events, ids, nil
	}
	covered, err := in.Store.AnySuppressed(ctx, all)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the suppression list: %w", err)
	}
	if !covered {
		return events, ids, nil
	}
	known := map[string]bool{}
	listed := func(h string) (bool, error) {
		if hit, ok := known[h]; ok {
			return hit, nil
		}
		hit, err := in.Store.AnySuppressed(ctx, []string{h})
		if err != nil {
			return false, fmt.Errorf("cannot read the suppression list: %w", err)
		}
		known[h] = hit
		return hit, nil
	}
	keptEvents, keptIDs := events[:0:0], ids[:0:0]
	for i, e := range events {
		hit := false
		for _, h := range hashes[i] {
			if hit, err = listed(h); err != nil {
				return nil, nil, err
			}
			if hit {
				break
			}
		}
		if hit {
			res.Suppressed++
			in.Metrics.EventsSupressed.Inc()
			continue
		}
		keptEvents = append(keptEvents, e)
		keptIDs = append(keptIDs, ids[i])
	}
	return keptEvents, keptIDs, nil
}

// messageHash is the keyed dedupe key of a message, as the ingest claims
// it and an erasure suppresses it.
func (in *Ingestor) messageHash(ch schemas.Channel, platformMessageID string) string {
	return in.IDs.Hash("event", workflows.DedupeKey(schemas.Event{Kind: schemas.KindMessage, Channel: ch, PlatformMessageID: platformMessageID}))
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

// dropClaimed drops the events delivered before (claimed holds their
// dedupe keys, see place) and repeats within the call, keeping in each
// group the keys of the fresh events for claim.
func (in *Ingestor) dropClaimed(groups map[string]*group, order []string, claimed map[string]string, res *Result) {
	seen := map[string]bool{}
	for _, id := range order {
		g := groups[id]
		kept := g.events[:0:0]
		for _, e := range g.events {
			key := in.IDs.Hash("event", workflows.DedupeKey(e))
			if _, done := claimed[key]; done || seen[key] {
				res.Duplicates++
				in.Metrics.EventsDuplicate.WithLabelValues(string(e.Channel)).Inc()
				continue
			}
			seen[key] = true
			kept = append(kept, e)
			g.keys = append(g.keys, key)
		}
		g.events = kept
	}
}

// claim records the dedupe keys of delivered events with their
// conversation, so that a repeat is dropped before it is signalled and an
// erasure can forget them. A key a concurrent caller claimed meanwhile was
// delivered twice; the workflow drops the second copy.
func (in *Ingestor) claim(ctx context.Context, delivered []*group) error {
	var claims []store.EventClaim
	for _, g := range delivered {
		for _, k := range g.keys {
			claims = append(claims, store.EventClaim{Key: k, ConversationID: g.id})
		}
	}
	if len(claims) == 0 {
		return nil
	}
	_, err := in.Store.ClaimConversationEvents(ctx, claims)
	return err
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
