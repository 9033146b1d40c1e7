// Command record records the workflow histories that
// workflows/replay_test.go replays. It starts the embedded Temporal server
// in memory, runs a worker with stub activities under the real activity
// names, drives a conversation and three data-subject requests through
// their signals and updates, and writes each history as JSON into
// workflows/testdata.
//
// Run it from the module root after a change that is meant to alter a
// workflow's commands (behind a version gate), and commit the files:
//
//	go run ./workflows/testdata/record
//
// It links the Temporal server, so the first build takes a while, and it
// takes about four minutes to run: the conversation's budget pause and
// the refused batches wait for their one-minute retries in real time.
// -only records some scenarios and leaves the other files as they are. The histories use the default
// (unencrypted) data converter and hold only the canned data below.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/temporalserver"
	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

const taskQueue = "record"

func main() {
	out := flag.String("out", "workflows/testdata", "directory the history files are written to")
	only := flag.String("only", "", "record only these scenarios, comma-separated: "+strings.Join(scenarioNames, ", ")+" (default all)")
	flag.Parse()
	if err := run(*out, *only); err != nil {
		fmt.Fprintln(os.Stderr, "record:", err)
		os.Exit(1)
	}
}

// scenarioNames are the scenarios in the order they are recorded.
var scenarioNames = []string{"conversation", "refused", "access", "erasure", "escalation"}

func run(out, only string) error {
	want := map[string]bool{}
	for _, name := range strings.Split(only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(scenarioNames, name) {
			return fmt.Errorf("unknown scenario %q; use one of %s", name, strings.Join(scenarioNames, ", "))
		}
		want[name] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := temporalserver.Start(ctx, temporalserver.Options{
		SearchAttributes: map[string]enumspb.IndexedValueType{
			ingest.SearchAttributeKind:     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.SearchAttributeFlags: enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		},
		// The server suggests continue-as-new after this many events, so a
		// short conversation records one.
		DynamicConfig: map[string]any{"limit.historyCount.suggestContinueAsNew": 60},
	})
	if err != nil {
		return err
	}
	defer func() { _ = srv.Stop() }()
	c, err := client.Dial(client.Options{
		HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace(),
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	})
	if err != nil {
		return err
	}
	defer c.Close()

	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Conversation, workflow.RegisterOptions{Name: "Conversation"})
	w.RegisterWorkflowWithOptions(workflows.DSR, workflow.RegisterOptions{Name: "DSR"})
	w.RegisterActivity(&syncStub{attempts: map[string]int{}})
	w.RegisterActivity(&identityStub{})
	w.RegisterActivity(&dsrStub{failed: map[string]bool{}})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()

	r := recorder{c: c, out: out}
	steps := map[string]func(context.Context) error{
		"conversation": r.conversation, "refused": r.refused, "access": r.access, "erasure": r.erasure, "escalation": r.escalation,
	}
	for _, name := range scenarioNames {
		if len(want) > 0 && !want[name] {
			continue
		}
		if err := steps[name](ctx); err != nil {
			return err
		}
	}
	return nil
}

type recorder struct {
	c   client.Client
	out string
}

func event(id, text string) schemas.Event {
	return schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:record:1",
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: id,
		Author: schemas.Author{PlatformUserID: "record-customer"}, Text: text, OccurredAt: time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC),
		Brand: schemas.BrandAccount{ID: "record-brand"},
	}
}

// conversation records a conversation: two signals, a budget pause, an
// identity review, batches under FlushInterval (a version marker), and a
// continue-as-new, then the continued run until it goes idle.
func (r recorder) conversation(ctx context.Context) error {
	const id = "conv-record"
	in := workflows.ConversationInput{ConversationID: id, IdleTimeout: 5 * time.Second, FlushInterval: time.Second}
	run, err := r.c.SignalWithStartWorkflow(ctx, id, workflows.EventsSignal,
		workflows.EventsSignalArg{Events: []schemas.Event{event("m1", "hello"), event("m2", "a question")}},
		client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "Conversation", in)
	if err != nil {
		return err
	}
	firstRun := run.GetRunID()
	// The first batch meets an exhausted budget and is written after the
	// one-minute probe; matching then opens a review.
	if err := r.waitFor(ctx, 3*time.Minute, func() (bool, error) {
		var st workflows.ConversationStatus
		v, err := r.c.QueryWorkflow(ctx, id, "", workflows.StateQuery)
		if err != nil {
			return false, err
		}
		return v.Get(&st) == nil && st.Synced >= 2, nil
	}); err != nil {
		return fmt.Errorf("conversation: first batch: %w", err)
	}
	if err := r.c.SignalWorkflow(ctx, id, "", workflows.ReviewSignal, workflows.ReviewDecision{ReviewID: "review-1", ContactID: "003RECORD", Actor: "record-agent"}); err != nil {
		return err
	}
	// More events, a second apart, until the run continues as new.
	for i := 3; ; i++ {
		if err := r.c.SignalWorkflow(ctx, id, "", workflows.EventsSignal, workflows.EventsSignalArg{Events: []schemas.Event{event(fmt.Sprintf("m%d", i), "more")}}); err != nil {
			return err
		}
		desc, err := r.c.DescribeWorkflowExecution(ctx, id, firstRun)
		if err != nil {
			return err
		}
		if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
			break
		}
		if i > 60 {
			return errors.New("conversation: no continue-as-new after 60 events")
		}
		time.Sleep(500 * time.Millisecond)
	}
	hist, err := r.history(ctx, id, firstRun)
	if err != nil {
		return err
	}
	next := hist.Events[len(hist.Events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	// The continued run writes what was pending and goes idle.
	if err := r.c.GetWorkflow(ctx, id, next).Get(ctx, nil); err != nil {
		return fmt.Errorf("conversation: continued run: %w", err)
	}
	if err := r.write("conversation.json", hist); err != nil {
		return err
	}
	return r.save(ctx, "conversation-continued.json", id, next)
}

// refused records a conversation whose batches the CRM refuses as a whole:
// the first is held and goes through on the next attempt a minute later;
// the second is refused for longer than HoldRefused and parked; the third
// is written, and the run goes idle. It takes about two minutes.
func (r recorder) refused(ctx context.Context) error {
	const id = "conv-record-refused"
	in := workflows.ConversationInput{ConversationID: id, IdleTimeout: 5 * time.Second, HoldRefused: 30 * time.Second}
	run, err := r.c.SignalWithStartWorkflow(ctx, id, workflows.EventsSignal,
		workflows.EventsSignalArg{Events: []schemas.Event{event("r1", "refused once")}},
		client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "Conversation", in)
	if err != nil {
		return err
	}
	status := func(ok func(workflows.ConversationStatus) bool) func() (bool, error) {
		return func() (bool, error) {
			var st workflows.ConversationStatus
			v, err := r.c.QueryWorkflow(ctx, id, "", workflows.StateQuery)
			if err != nil {
				return false, err
			}
			return v.Get(&st) == nil && ok(st), nil
		}
	}
	if err := r.waitFor(ctx, 3*time.Minute, status(func(st workflows.ConversationStatus) bool { return st.Synced >= 1 })); err != nil {
		return fmt.Errorf("refused: held batch: %w", err)
	}
	if err := r.c.SignalWorkflow(ctx, id, "", workflows.EventsSignal, workflows.EventsSignalArg{Events: []schemas.Event{event("r2", "refused for good")}}); err != nil {
		return err
	}
	if err := r.waitFor(ctx, 3*time.Minute, status(func(st workflows.ConversationStatus) bool { return st.Parked >= 1 })); err != nil {
		return fmt.Errorf("refused: parked batch: %w", err)
	}
	if err := r.c.SignalWorkflow(ctx, id, "", workflows.EventsSignal, workflows.EventsSignalArg{Events: []schemas.Event{event("r3", "written")}}); err != nil {
		return err
	}
	// The run may continue as new (the server suggests it early here); its
	// history holds the refusals.
	first := run.GetRunID()
	if err := run.Get(ctx, nil); err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	return r.save(ctx, "conversation-refused.json", id, first)
}

// access records an access request.
func (r recorder) access(ctx context.Context) error {
	const id = "dsr-record-access"
	run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "DSR", workflows.DSRInput{
		ID: id, Type: "access", ReceivedAt: time.Now().UTC(), Identifiers: subject,
	})
	if err != nil {
		return err
	}
	if err := run.Get(ctx, nil); err != nil {
		return fmt.Errorf("access: %w", err)
	}
	return r.save(ctx, "dsr-access.json", id, run.GetRunID())
}

var subject = activities.SubjectIdentifiers{Email: "subject@example.test", Handles: []activities.SubjectHandle{{Provider: "x", ID: "record-customer"}}}

// erasure records an erasure with approval, an early reminder and an
// extension.
func (r recorder) erasure(ctx context.Context) error {
	const id = "dsr-record-erasure"
	now := time.Now().UTC()
	// Received so long ago that the early reminder (a week before the
	// deadline) is due three seconds from now.
	received := now.Add(7*24*time.Hour+3*time.Second).AddDate(0, -1, 0)
	early := workflows.Deadline(received).Add(-7 * 24 * time.Hour)
	if early.Before(now) || early.After(now.Add(time.Minute)) {
		// Month ends can shift the date; record without the reminder.
		received, early = now, time.Time{}
	}
	run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "DSR", workflows.DSRInput{
		ID: id, Type: "erasure", ReceivedAt: received, Identifiers: subject, RequireApproval: true, Verification: "record",
	})
	if err != nil {
		return err
	}
	if err := r.waitStatus(ctx, id, workflows.StatusAwaitingApproval); err != nil {
		return fmt.Errorf("erasure: %w", err)
	}
	if !early.IsZero() {
		time.Sleep(time.Until(early) + 2*time.Second)
	}
	h, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: workflows.DSRExtendUpdate, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.ExtendArg{Reason: "many systems to search", Actor: "record-dpo"}},
	})
	if err != nil {
		return fmt.Errorf("erasure: extend: %w", err)
	}
	var deadline time.Time
	if err := h.Get(ctx, &deadline); err != nil {
		return fmt.Errorf("erasure: extend: %w", err)
	}
	if err := r.c.SignalWorkflow(ctx, id, "", workflows.DSRApproveSignal, workflows.ApproveArg{Actor: "record-dpo"}); err != nil {
		return err
	}
	if err := run.Get(ctx, nil); err != nil {
		return fmt.Errorf("erasure: %w", err)
	}
	return r.save(ctx, "dsr-erasure.json", id, run.GetRunID())
}

// escalation records an erasure whose CRM step fails permanently once,
// escalates, and completes after the retry signal.
func (r recorder) escalation(ctx context.Context) error {
	const id = "dsr-record-escalation"
	run, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, "DSR", workflows.DSRInput{
		ID: id, Type: "erasure", ReceivedAt: time.Now().UTC(), Identifiers: subject,
	})
	if err != nil {
		return err
	}
	if err := r.waitStatus(ctx, id, workflows.StatusEscalated); err != nil {
		return fmt.Errorf("escalation: %w", err)
	}
	if err := r.c.SignalWorkflow(ctx, id, "", workflows.DSRRetrySignal, nil); err != nil {
		return err
	}
	if err := run.Get(ctx, nil); err != nil {
		return fmt.Errorf("escalation: %w", err)
	}
	return r.save(ctx, "dsr-escalation.json", id, run.GetRunID())
}

func (r recorder) waitStatus(ctx context.Context, id, status string) error {
	return r.waitFor(ctx, time.Minute, func() (bool, error) {
		v, err := r.c.QueryWorkflow(ctx, id, "", workflows.DSRStatusQuery)
		if err != nil {
			return false, err
		}
		var st workflows.DSRStatus
		return v.Get(&st) == nil && st.Status == status, nil
	})
}

func (r recorder) waitFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("timed out waiting for the workflow")
}

func (r recorder) history(ctx context.Context, id, runID string) (*historypb.History, error) {
	it := r.c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		h.Events = append(h.Events, e)
	}
	return h, nil
}

func (r recorder) save(ctx context.Context, name, id, runID string) error {
	h, err := r.history(ctx, id, runID)
	if err != nil {
		return err
	}
	return r.write(name, h)
}

func (r recorder) write(name string, h *historypb.History) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		return err
	}
	path := filepath.Join(r.out, name)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d events\n", path, len(h.Events))
	return nil
}

// syncStub stands in for activities.Sync: the first batch meets an
// exhausted daily budget, later ones are written. The CRM refuses batches
// with r1 once and with r2 always, as a whole.
type syncStub struct {
	mu       sync.Mutex
	refused  bool
	attempts map[string]int
}

// SyncBatch has the signature of activities.Sync.SyncBatch.
func (s *syncStub) SyncBatch(_ context.Context, b crm.SyncBatch) (crm.SyncResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.ConversationID == "conv-record-refused" {
		for _, e := range b.Events {
			s.attempts[e.PlatformMessageID]++
			if (e.PlatformMessageID == "r1" && s.attempts["r1"] == 1) || e.PlatformMessageID == "r2" {
				return crm.SyncResult{}, temporal.NewNonRetryableApplicationError("crm permanent: INVALID_FIELD: No such column 'Record__c' on entity 'SocialPost'",
					activities.ErrPermanent, nil, "INVALID_FIELD")
			}
		}
	} else if !s.refused {
		s.refused = true
		return crm.SyncResult{}, temporal.NewNonRetryableApplicationError("the daily API budget is exhausted", activities.ErrBudgetExhausted, nil)
	}
	st := b.State
	if st.CaseID == "" {
		st.CaseID = "500RECORD"
	}
	var ids []string
	for _, e := range b.Events {
		ids = append(ids, e.PlatformMessageID)
	}
	return crm.SyncResult{State: st, Written: ids, Calls: 2}, nil
}

// ParkBatch has the signature of activities.Sync.ParkBatch.
func (s *syncStub) ParkBatch(context.Context, activities.ParkBatchInput) error { return nil }

// identityStub stands in for activities.Identity: the first match opens a
// review and flags details posted in public.
type identityStub struct {
	mu      sync.Mutex
	matched bool
}

// Match has the signature of activities.Identity.Match.
func (s *identityStub) Match(_ context.Context, _ activities.MatchInput) (activities.MatchResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.matched {
		return activities.MatchResult{}, nil
	}
	s.matched = true
	return activities.MatchResult{ReviewID: "review-1", PublicDetails: true, Rule: "record"}, nil
}

// ApplyReview has the signature of activities.Identity.ApplyReview.
func (s *identityStub) ApplyReview(_ context.Context, in activities.ApplyReviewInput) (crm.ConversationState, error) {
	st := in.State
	if !in.Reject {
		st.ContactID = in.ContactID
	}
	return st, nil
}

// dsrStub stands in for activities.DSR with canned footprints. EraseCRM
// fails permanently once for the escalation request.
type dsrStub struct {
	mu     sync.Mutex
	failed map[string]bool
}

// Discover has the signature of activities.DSR.Discover.
func (s *dsrStub) Discover(_ context.Context, in activities.DiscoverInput) (activities.Footprint, error) {
	fp := activities.Footprint{
		SubjectIDs: []string{"subject-record"}, ConversationIDs: []string{"conv-record"},
		CRM:        map[string][]string{"Contact": {"003RECORD"}, "SocialPost": {"0STRECORD1"}},
		Executions: 1,
	}
	if in.Pass == "pre-erasure" {
		fp.CRM["SocialPost"] = append(fp.CRM["SocialPost"], "0STRECORD2")
	}
	return fp, nil
}

// Export has the signature of activities.DSR.Export.
func (s *dsrStub) Export(context.Context, activities.ExportInput) error { return nil }

// StopConversations has the signature of activities.DSR.StopConversations.
func (s *dsrStub) StopConversations(context.Context, activities.EraseInput) error { return nil }

// EraseCRM has the signature of activities.DSR.EraseCRM.
func (s *dsrStub) EraseCRM(_ context.Context, in activities.EraseInput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.DSRID == "dsr-record-escalation" && !s.failed[in.DSRID] {
		s.failed[in.DSRID] = true
		return temporal.NewNonRetryableApplicationError("the CRM refused the delete", activities.ErrPermanent, nil)
	}
	return nil
}

// ErasePlatforms has the signature of activities.DSR.ErasePlatforms.
func (s *dsrStub) ErasePlatforms(context.Context, activities.EraseInput) error { return nil }

// EraseTemporal has the signature of activities.DSR.EraseTemporal.
func (s *dsrStub) EraseTemporal(context.Context, activities.EraseInput) error { return nil }

// ShredKeys has the signature of activities.DSR.ShredKeys.
func (s *dsrStub) ShredKeys(context.Context, activities.EraseInput) error { return nil }

// EraseStore has the signature of activities.DSR.EraseStore.
func (s *dsrStub) EraseStore(context.Context, activities.EraseInput) error { return nil }

// RecordStatus has the signature of activities.DSR.RecordStatus.
func (s *dsrStub) RecordStatus(context.Context, activities.StatusInput) error { return nil }

// DeadlineEvent has the signature of activities.DSR.DeadlineEvent.
func (s *dsrStub) DeadlineEvent(context.Context, activities.DeadlineInput) error { return nil }
