package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/schemas"
)

func ev(id string, text string) schemas.Event {
	return schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:1:2",
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: id,
		Author: schemas.Author{PlatformUserID: "2"}, Text: text, OccurredAt: time.Unix(1700000000, 0).UTC(),
		Brand: schemas.BrandAccount{ID: "1"},
	}
}

// fakeCRM records the batches a conversation writes. The workflow tests
// exercise ordering, batching, dedupe and the budget pause; the real
// connector is tested against the sandbox in its own package.
type recorder struct {
	batches [][]string
}

func (r *recorder) sync(_ context.Context, b crm.SyncBatch) (crm.SyncResult, error) {
	var ids []string
	for _, e := range b.Events {
		ids = append(ids, e.PlatformMessageID)
	}
	r.batches = append(r.batches, ids)
	st := b.State
	st.CaseID = "500000000000001AAA"
	return crm.SyncResult{State: st, Written: ids, Calls: 2}, nil
}

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *recorder) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	rec := &recorder{}
	var sync *activities.Sync
	var id *activities.Identity
	env.RegisterActivity(sync)
	env.RegisterActivity(id)
	env.OnActivity(sync.SyncBatch, mock.Anything, mock.Anything).Return(rec.sync)
	env.OnActivity(id.Match, mock.Anything, mock.Anything).Return(activities.MatchResult{}, nil)
	return env, rec
}

func TestConversationWritesInOrderAndDedupes(t *testing.T) {
	env, rec := newEnv(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m1", "hoi"), ev("m2", "nog iets")}})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		// A platform retry: m2 again, and a new m3.
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m2", "nog iets"), ev("m3", "dank je")}})
	}, 2*time.Second)
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var all []string
	for _, b := range rec.batches {
		all = append(all, b...)
	}
	require.Equal(t, []string{"m1", "m2", "m3"}, all)
}

func TestConversationBatchesUnderLoad(t *testing.T) {
	env, rec := newEnv(t)
	var events []schemas.Event
	for i := range 450 {
		events = append(events, ev("m"+itoa(i), "x"))
	}
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: events})
	}, time.Second)
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, rec.batches, 3, "450 events take three batches of at most 200")
	require.Len(t, rec.batches[0], 200)
	require.Len(t, rec.batches[2], 50)
}

func TestConversationPausesWhileBudgetIsExhausted(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var sync *activities.Sync
	var id *activities.Identity
	env.RegisterActivity(sync)
	env.RegisterActivity(id)
	calls := 0
	env.OnActivity(sync.SyncBatch, mock.Anything, mock.Anything).Return(func(_ context.Context, b crm.SyncBatch) (crm.SyncResult, error) {
		calls++
		if calls <= 3 {
			return crm.SyncResult{}, temporal.NewNonRetryableApplicationError("budget", activities.ErrBudgetExhausted, nil)
		}
		return crm.SyncResult{State: b.State, Written: []string{b.Events[0].PlatformMessageID}}, nil
	})
	env.OnActivity(id.Match, mock.Anything, mock.Anything).Return(activities.MatchResult{}, nil)
	start := env.Now()
	var paused bool
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m1", "hoi")}})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StateQuery)
		require.NoError(t, err)
		var st ConversationStatus
		require.NoError(t, v.Get(&st))
		paused = st.Paused
	}, 90*time.Second)
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.True(t, paused, "the workflow reports the pause while waiting")
	require.Equal(t, 4, calls, "three refusals, then the write")
	require.GreaterOrEqual(t, env.Now().Sub(start), 3*time.Minute, "probes are a minute apart")
}

func TestConversationContinuesAsNewWithState(t *testing.T) {
	old := continueAsNewBatches
	continueAsNewBatches = 1
	defer func() { continueAsNewBatches = old }()
	env, rec := newEnv(t)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m0", "al gezien"), ev("m1", "hoi")}})
	}, time.Second)
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour, Seen: []string{"x|m|m0"}})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next ConversationInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, "500000000000001AAA", next.State.CaseID, "CRM ids survive continue-as-new")
	require.Contains(t, next.Seen, "x|m|m0")
	require.Contains(t, next.Seen, "x|m|m1", "dedupe memory survives continue-as-new")
	require.Equal(t, [][]string{{"m1"}}, rec.batches, "m0 was seen before the continue-as-new and is not written again")
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
