// Package workflows holds webcaresync's Temporal workflows: one
// ConversationWorkflow per conversation, which writes the conversation into
// the CRM, and one DSR workflow per data-subject request.
package workflows

import (
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/schemas"
)

// Signal and query names of the conversation workflow.
const (
	// EventsSignal carries an EventsSignal with new events, in order.
	EventsSignal = "events"
	// ReviewSignal carries a ReviewDecision for an identity review.
	ReviewSignal = "review"
	// UnlinkSignal asks the workflow to unlink the conversation's personas.
	UnlinkSignal = "unlink"
	// StopSignal asks the workflow to stop without syncing more (erasure).
	StopSignal = "stop"
	// StateQuery returns the ConversationStatus.
	StateQuery = "state"
)

// SearchAttributeFlags is a keyword-list search attribute with the flags
// of a conversation (FlagPublicDetails, FlagReview). It carries no data.
const SearchAttributeFlags = "WebcaresyncFlags"

// FlagsKey is the typed key of SearchAttributeFlags.
var FlagsKey = temporal.NewSearchAttributeKeyKeywordList(SearchAttributeFlags)

// The conversation flags.
const (
	// FlagPublicDetails: the customer posted contact details in public;
	// the agent should ask them to continue in a DM.
	FlagPublicDetails = "public-details"
	// FlagReview: an identity match waits in the review queue.
	FlagReview = "review"
)

// Defaults of the conversation workflow.
const (
	// DefaultIdleTimeout ends a conversation workflow that has had no events
	// for this long; a later event starts a new run with the same ID.
	DefaultIdleTimeout = 24 * time.Hour
	// DefaultBatchSize is the most events one CRM sync takes; Salesforce
	// collections hold at most 200 records.
	DefaultBatchSize = 200
	// seenLimit bounds the dedupe memory carried across continue-as-new.
	seenLimit = 2000
	// budgetProbeInterval is how often a paused conversation asks whether
	// the CRM's daily budget is back. The worker's gate makes it at most one
	// CRM call a minute for the whole process.
	budgetProbeInterval = time.Minute
	// DefaultHoldRefused is how long a conversation holds a batch that the
	// CRM refuses as a whole for a reason retrying alone cannot fix (login
	// refused, an object or field of the mapping that the org does not
	// have, duplicate records), retrying it, before it parks the batch's
	// events and goes on with the next batch. A day leaves an operator time
	// to fix the credentials or the mapping, after which the held batches
	// go through by themselves, in order; a batch still refused after that
	// is parked, so it cannot block its conversation for ever.
	DefaultHoldRefused = 24 * time.Hour
	// refusedRetryFirst and refusedRetryMax bound the backoff between the
	// attempts at a refused batch.
	refusedRetryFirst = time.Minute
	refusedRetryMax   = 15 * time.Minute
)

// continueAsNewEvents bounds the history: the workflow continues as new
// well before Temporal's 50k-event limit, carrying its state. A variable
// so that tests can lower it.
var continueAsNewEvents = 8000

// continueAsNewBatches also bounds a run by batches written, a second
// guard that does not depend on the history length the server reports.
var continueAsNewBatches = 1000

// ConversationInput starts (or continues) a conversation workflow.
type ConversationInput struct {
	// ConversationID is opaque, derived by keyed hash from the channel's
	// conversation key (for a public reply, the key of the thread it
	// answers, as the ingest resolves it); it is also the workflow ID and
	// the name of the conversation's data key.
	ConversationID string `json:"conversation_id"`
	// CRMTaskQueue is the task queue of the CRM activities; it carries the
	// rate limit that caps CRM concurrency.
	CRMTaskQueue string `json:"crm_task_queue,omitempty"`
	// IdleTimeout overrides DefaultIdleTimeout.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// BatchSize overrides DefaultBatchSize.
	BatchSize int `json:"batch_size,omitempty"`
	// FlushInterval is the shortest time between the starts of two CRM
	// batches while events keep arriving: a batch that is not full waits
	// until FlushInterval has passed since the previous one began, so that
	// load turns into fuller batches and fewer CRM calls. The first batch
	// after a quiet spell goes at once. Zero (the default) never waits.
	FlushInterval time.Duration `json:"flush_interval,omitempty"`
	// HoldRefused overrides DefaultHoldRefused.
	HoldRefused time.Duration `json:"hold_refused,omitempty"`
	// State is carried over continue-as-new. A new run (signal-with-start
	// after the previous run ended) starts with an empty State; its first
	// batch continues the state that webcaresync's store keeps.
	State crm.ConversationState `json:"state"`
	// Pending are events received but not yet synced, carried over
	// continue-as-new.
	Pending []schemas.Event `json:"pending,omitempty"`
	// Seen are the dedupe keys of recent events.
	Seen []string `json:"seen,omitempty"`
	// Synced counts events written over the conversation's life.
	Synced int `json:"synced,omitempty"`
}

// EventsSignalArg is the payload of EventsSignal.
type EventsSignalArg struct {
	Events []schemas.Event `json:"events"`
	// Replay delivers events again even if they were seen before: parked
	// events replayed after the mapping was fixed.
	Replay bool `json:"replay,omitempty"`
}

// ReviewDecision resolves an identity review.
type ReviewDecision struct {
	ReviewID  string `json:"review_id"`
	ContactID string `json:"contact_id,omitempty"`
	Reject    bool   `json:"reject,omitempty"`
	Actor     string `json:"actor"`
}

// ConversationStatus is what StateQuery returns. It holds no message data.
type ConversationStatus struct {
	Pending  int    `json:"pending"`
	Synced   int    `json:"synced"`
	Parked   int    `json:"parked"`
	Paused   bool   `json:"paused"`
	CaseID   string `json:"case_id,omitempty"`
	Linked   bool   `json:"linked"`
	Stopping bool   `json:"stopping"`
	// Refused is the CRM's error code while the CRM refuses the pending
	// batch as a whole and the workflow holds it and retries (Paused is
	// true meanwhile). A code, never data.
	Refused string `json:"refused,omitempty"`
}

// conversation is the workflow's running state.
type conversation struct {
	in      ConversationInput
	pending []schemas.Event
	seen    map[string]bool
	order   []string
	status  ConversationStatus
	stop    bool
	reviews []ReviewDecision
	unlink  bool
	flags   []string
	batches int
	// linger is whether FlushInterval applies (versioned); lastFlush is
	// when the previous batch began.
	linger    bool
	lastFlush time.Time
}

// flushIntervalChange versions the FlushInterval wait, which adds a timer
// to the workflow's commands.
const flushIntervalChange = "flush-interval"

// refusedBatchChange versions holding and parking a batch that the CRM
// refuses as a whole (before, the run failed and the batch was lost).
const refusedBatchChange = "refused-batch"

// DedupeKey is the key under which an event is deduplicated: a status
// update is distinct from the message it updates.
func DedupeKey(e schemas.Event) string {
	if e.Kind == schemas.KindStatus {
		return string(e.Channel) + "|s|" + e.PlatformMessageID + "|" + e.Status
	}
	return string(e.Channel) + "|m|" + e.PlatformMessageID
}

func (c *conversation) add(events []schemas.Event, replay bool) {
	for _, e := range events {
		k := DedupeKey(e)
		if c.seen[k] && !replay {
			continue
		}
		c.seen[k] = true
		c.order = append(c.order, k)
		c.pending = append(c.pending, e)
	}
	if len(c.order) > seenLimit {
		for _, k := range c.order[:len(c.order)-seenLimit] {
			delete(c.seen, k)
		}
		c.order = append([]string(nil), c.order[len(c.order)-seenLimit:]...)
	}
}

// Conversation is the workflow of one conversation. It accumulates events
// from signals, deduplicates them and writes them to the CRM in ordered
// batches: while one batch is being written, the next accumulates, so load
// turns into bigger batches rather than more calls.
func Conversation(ctx workflow.Context, in ConversationInput) error {
	c := &conversation{in: in, seen: map[string]bool{}}
	if c.in.IdleTimeout <= 0 {
		c.in.IdleTimeout = DefaultIdleTimeout
	}
	if c.in.BatchSize <= 0 || c.in.BatchSize > DefaultBatchSize {
		c.in.BatchSize = DefaultBatchSize
	}
	for _, k := range in.Seen {
		c.seen[k] = true
		c.order = append(c.order, k)
	}
	c.pending = append(c.pending, in.Pending...)
	c.status.Synced = in.Synced
	if c.in.FlushInterval > 0 {
		c.linger = workflow.GetVersion(ctx, flushIntervalChange, workflow.DefaultVersion, 1) >= 1
	}
	if err := workflow.SetQueryHandler(ctx, StateQuery, func() (ConversationStatus, error) {
		s := c.status
		s.Pending = len(c.pending)
		s.CaseID = c.in.State.CaseID
		s.Linked = c.in.State.ContactID != ""
		s.Stopping = c.stop
		return s, nil
	}); err != nil {
		return err
	}

	events := workflow.GetSignalChannel(ctx, EventsSignal)
	reviews := workflow.GetSignalChannel(ctx, ReviewSignal)
	unlink := workflow.GetSignalChannel(ctx, UnlinkSignal)
	stop := workflow.GetSignalChannel(ctx, StopSignal)
	drain := func() {
		for {
			var arg EventsSignalArg
			if !events.ReceiveAsync(&arg) {
				break
			}
			c.add(arg.Events, arg.Replay)
		}
		for {
			var d ReviewDecision
			if !reviews.ReceiveAsync(&d) {
				break
			}
			c.reviews = append(c.reviews, d)
		}
		if unlink.ReceiveAsync(nil) {
			c.unlink = true
		}
		if stop.ReceiveAsync(nil) {
			c.stop = true
		}
	}

	for {
		drain()
		if c.stop {
			// An erasure is running: write nothing more, keep nothing.
			return nil
		}
		if len(c.pending) == 0 && len(c.reviews) == 0 && !c.unlink {
			if c.runLong(ctx) {
				return c.continueAsNew(ctx)
			}
			idle := c.waitForWork(ctx, events, reviews, unlink, stop)
			if idle {
				drain()
				if len(c.pending) == 0 && len(c.reviews) == 0 && !c.unlink {
					return nil
				}
			}
			continue
		}
		if err := c.applyReviews(ctx); err != nil {
			return err
		}
		if len(c.pending) > 0 {
			if c.waitForBatch(ctx) {
				drain()
				if c.stop {
					return nil
				}
			}
			if err := c.flush(ctx); err != nil {
				return err
			}
		}
		if c.runLong(ctx) {
			drain()
			return c.continueAsNew(ctx)
		}
	}
}

// runLong reports whether this run's history is long enough to continue
// as new.
func (c *conversation) runLong(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > continueAsNewEvents || c.batches >= continueAsNewBatches
}

// waitForBatch waits, when FlushInterval applies and the pending batch is
// not full, until FlushInterval has passed since the previous batch began.
// It reports whether it waited.
func (c *conversation) waitForBatch(ctx workflow.Context) bool {
	if !c.linger || c.lastFlush.IsZero() || len(c.pending) >= c.in.BatchSize {
		return false
	}
	wait := c.lastFlush.Add(c.in.FlushInterval).Sub(workflow.Now(ctx))
	if wait <= 0 {
		return false
	}
	// A cancelled sleep only ends the wait early; the loop goes on.
	_ = workflow.Sleep(ctx, wait)
	return true
}

// waitForWork blocks until a signal arrives or the idle timeout fires; it
// reports whether the conversation went idle.
func (c *conversation) waitForWork(ctx workflow.Context, chans ...workflow.ReceiveChannel) bool {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	idle := false
	sel := workflow.NewSelector(ctx)
	for _, ch := range chans {
		sel.AddReceive(ch, func(workflow.ReceiveChannel, bool) {})
	}
	sel.AddFuture(workflow.NewTimer(timerCtx, c.in.IdleTimeout), func(workflow.Future) { idle = true })
	sel.Select(ctx)
	return idle
}

func (c *conversation) continueAsNew(ctx workflow.Context) error {
	next := c.in
	next.Pending = c.pending
	next.Seen = c.order
	next.Synced = c.status.Synced
	return workflow.NewContinueAsNewError(ctx, Conversation, next)
}

// crmOptions are the activity options of CRM calls. Temporal owns the
// retries: transient failures back off up to a minute between attempts
// forever (the CRM will come back, and nothing may be lost); permanent
// failures and an exhausted daily budget are not retried by Temporal but
// handled by the workflow.
func (c *conversation) crmOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: c.in.CRMTaskQueue,
		// A batch is at most 3 calls of 200 records; two minutes leaves room
		// for a slow org without hiding a hung connection for long.
		StartToCloseTimeout: 2 * time.Minute,
		// The activities heartbeat, so a batch on a worker that died is
		// retried elsewhere within seconds.
		HeartbeatTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrPermanent, activities.ErrBudgetExhausted},
		},
	})
}

// flush writes the next batch, pausing while the CRM's daily budget is
// exhausted, and holding the batch while the CRM refuses it as a whole
// (holdRefused) until it goes through or is parked.
func (c *conversation) flush(ctx workflow.Context) error {
	n := min(len(c.pending), c.in.BatchSize)
	batch := c.pending[:n]
	c.lastFlush = workflow.Now(ctx)
	var sync *activities.Sync
	var res crm.SyncResult
	var refused *refusal
	for {
		err := workflow.ExecuteActivity(c.crmOptions(ctx), sync.SyncBatch, crm.SyncBatch{
			ConversationID: c.in.ConversationID,
			Events:         batch,
			State:          c.in.State,
		}).Get(ctx, &res)
		if err == nil {
			break
		}
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			return err
		}
		if appErr.Type() == activities.ErrPermanent {
			if refused == nil {
				if workflow.GetVersion(ctx, refusedBatchChange, workflow.DefaultVersion, 1) < 1 {
					return err
				}
				refused = &refusal{since: workflow.Now(ctx), wait: refusedRetryFirst}
			}
			park, err := c.holdRefused(ctx, refused, appErr)
			if err != nil {
				return err
			}
			if park {
				return c.parkRefused(ctx, n, appErr)
			}
			continue
		}
		if appErr.Type() != activities.ErrBudgetExhausted {
			return err
		}
		// The daily API budget is gone. Nothing is lost: the batch stays
		// pending, and the workflow waits and probes.
		c.status.Paused = true
		if err := workflow.Sleep(ctx, budgetProbeInterval); err != nil {
			return err
		}
	}
	c.status.Paused = false
	c.status.Refused = ""
	c.batches++
	c.in.State = res.State
	c.status.Synced += len(res.Written)
	c.status.Parked += len(res.Parked)
	c.pending = append([]schemas.Event(nil), c.pending[n:]...)
	return c.matchIdentity(ctx, batch)
}

// refusal is a batch the CRM refuses as a whole: since when, and how long
// the workflow waits before the next attempt.
type refusal struct {
	since time.Time
	wait  time.Duration
}

// holdRefused handles one refusal of the pending batch as a whole (login
// refused, NOT_FOUND on the upsert URL, INVALID_FIELD for the whole call,
// duplicate records): the error does not go away by retrying at once, but
// it goes away when an operator fixes the credentials, the mapping or the
// CRM data, and every conversation sees the same error meanwhile. So the
// batch stays pending, in order, and the workflow reports the pause
// (Paused, Refused) and tries again with a backoff of one to fifteen
// minutes; the activity logs each refusal with its code. It reports true
// when the batch has been refused for longer than HoldRefused and is to be
// parked instead.
func (c *conversation) holdRefused(ctx workflow.Context, r *refusal, appErr *temporal.ApplicationError) (bool, error) {
	hold := c.in.HoldRefused
	if hold <= 0 {
		hold = DefaultHoldRefused
	}
	if workflow.Now(ctx).Sub(r.since) >= hold {
		return true, nil
	}
	c.status.Paused = true
	c.status.Refused = refusedCode(appErr)
	if err := workflow.Sleep(ctx, r.wait); err != nil {
		return false, err
	}
	r.wait = min(2*r.wait, refusedRetryMax)
	return false, nil
}

// parkRefused parks the first n pending events, which the CRM kept
// refusing as a whole, with the refusal's code and message, so that they
// show in `webcaresync parked`, count in the parked metric and can be
// replayed after the fix; the conversation goes on with its next batch.
func (c *conversation) parkRefused(ctx workflow.Context, n int, appErr *temporal.ApplicationError) error {
	var sync *activities.Sync
	batch := c.pending[:n]
	if err := workflow.ExecuteActivity(c.crmOptions(ctx), sync.ParkBatch, activities.ParkBatchInput{
		ConversationID: c.in.ConversationID,
		Events:         batch,
		ErrorCode:      refusedCode(appErr),
		Reason:         appErr.Message(),
	}).Get(ctx, nil); err != nil {
		return err
	}
	c.status.Paused = false
	c.status.Refused = ""
	c.status.Parked += n
	c.pending = append([]schemas.Event(nil), c.pending[n:]...)
	return nil
}

// refusedCode is the CRM's error code of a refusal, as the activity
// attaches it, or "REFUSED".
func refusedCode(appErr *temporal.ApplicationError) string {
	var code string
	if appErr.HasDetails() && appErr.Details(&code) == nil && code != "" {
		return code
	}
	return "REFUSED"
}

// matchIdentity runs identity matching on the batch's inbound messages.
// Details in private messages are matched; details in public posts only
// flag the conversation.
func (c *conversation) matchIdentity(ctx workflow.Context, batch []schemas.Event) error {
	var candidates []schemas.Event
	for _, e := range batch {
		if e.Kind == schemas.KindMessage && e.Direction == schemas.Inbound && e.Text != "" {
			candidates = append(candidates, e)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	var id *activities.Identity
	var res activities.MatchResult
	err := workflow.ExecuteActivity(c.crmOptions(ctx), id.Match, activities.MatchInput{
		ConversationID: c.in.ConversationID,
		Events:         candidates,
		State:          c.in.State,
	}).Get(ctx, &res)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && (appErr.Type() == activities.ErrBudgetExhausted || appErr.Type() == activities.ErrPermanent) {
			// Matching is best effort: the messages are in the CRM already,
			// and the next batch or a reviewer can still link them.
			return nil
		}
		return err
	}
	if res.ContactID != "" {
		c.in.State.ContactID = res.ContactID
	}
	if res.SubjectID != "" {
		c.in.State.SubjectID = res.SubjectID
	}
	var flags []string
	if res.PublicDetails {
		flags = append(flags, FlagPublicDetails)
	}
	if res.ReviewID != "" {
		flags = append(flags, FlagReview)
	}
	if len(flags) > 0 {
		c.flags = appendNew(c.flags, flags...)
		// The flags are fixed words, never data: operators can list the
		// conversations whose customer posted details in public, or that
		// wait for a review, in the Temporal UI.
		return workflow.UpsertTypedSearchAttributes(ctx, FlagsKey.ValueSet(c.flags))
	}
	return nil
}

func appendNew(list []string, vals ...string) []string {
	for _, v := range vals {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// applyReviews applies resolved identity reviews and unlink requests.
func (c *conversation) applyReviews(ctx workflow.Context) error {
	var id *activities.Identity
	for len(c.reviews) > 0 || c.unlink {
		in := activities.ApplyReviewInput{ConversationID: c.in.ConversationID, State: c.in.State}
		if c.unlink {
			in.Unlink = true
			c.unlink = false
		} else {
			d := c.reviews[0]
			c.reviews = c.reviews[1:]
			in.ReviewID, in.ContactID, in.Reject, in.Actor = d.ReviewID, d.ContactID, d.Reject, d.Actor
		}
		var out crm.ConversationState
		if err := workflow.ExecuteActivity(c.crmOptions(ctx), id.ApplyReview, in).Get(ctx, &out); err != nil {
			return err
		}
		c.in.State = out
	}
	return nil
}
