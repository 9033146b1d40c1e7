package workflows

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/schemas"
)

// refusingCRM refuses every batch as a whole, as SyncBatch reports a login
// refused or a mapping field the org lacks, while refuse says so.
type refusingCRM struct {
	refuse  func(b crm.SyncBatch) bool
	calls   int
	written []string
}

func (r *refusingCRM) sync(_ context.Context, b crm.SyncBatch) (crm.SyncResult, error) {
	r.calls++
	if r.refuse(b) {
		return crm.SyncResult{}, temporal.NewNonRetryableApplicationError("crm permanent: INVALID_FIELD: No such column 'Bad__c' on entity 'SocialPost'",
			activities.ErrPermanent, nil, "INVALID_FIELD")
	}
	var ids []string
	for _, e := range b.Events {
		ids = append(ids, e.PlatformMessageID)
	}
	r.written = append(r.written, ids...)
	st := b.State
	st.CaseID = "500000000000001AAA"
	return crm.SyncResult{State: st, Written: ids}, nil
}

func newRefusingEnv(r *refusingCRM) (*testsuite.TestWorkflowEnvironment, *[]activities.ParkBatchInput) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var sync *activities.Sync
	var id *activities.Identity
	env.RegisterActivity(sync)
	env.RegisterActivity(id)
	env.OnActivity(sync.SyncBatch, mock.Anything, mock.Anything).Return(r.sync)
	env.OnActivity(id.Match, mock.Anything, mock.Anything).Return(activities.MatchResult{}, nil)
	parked := &[]activities.ParkBatchInput{}
	env.OnActivity(sync.ParkBatch, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ParkBatchInput) error {
		*parked = append(*parked, in)
		return nil
	})
	return env, parked
}

func status(t *testing.T, env *testsuite.TestWorkflowEnvironment) ConversationStatus {
	t.Helper()
	v, err := env.QueryWorkflow(StateQuery)
	require.NoError(t, err)
	var st ConversationStatus
	require.NoError(t, v.Get(&st))
	return st
}

// A batch the CRM refuses as a whole (a mapping field the org lacks) is
// held, in order, while the refusal lasts, and goes through once it is
// fixed; the run does not fail and nothing is parked or lost.
func TestConversationHoldsRefusedBatchUntilFixed(t *testing.T) {
	fixedAt := time.Duration(0)
	var start time.Time
	var env *testsuite.TestWorkflowEnvironment
	r := &refusingCRM{}
	r.refuse = func(crm.SyncBatch) bool { return env.Now().Sub(start) < fixedAt }
	env, parked := newRefusingEnv(r)
	start = env.Now()
	fixedAt = 10 * time.Minute // the operator fixes the mapping and restarts
	signalEach(env, "m1", "m2")
	var during ConversationStatus
	writtenDuring := -1
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m3", "nog iets")}})
		during = status(t, env)
		writtenDuring = len(r.written)
	}, 5*time.Minute)
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError(), "a refused batch does not fail the conversation")
	require.True(t, during.Paused, "the conversation reports the pause while the CRM refuses its batch")
	require.Equal(t, "INVALID_FIELD", during.Refused, "the status names the CRM's error code")
	require.Equal(t, 0, writtenDuring, "nothing gets past the held batch")
	require.Empty(t, *parked, "a refusal that is fixed within the hold parks nothing")
	require.Equal(t, []string{"m1", "m2", "m3"}, r.written, "every message is written once, in order, after the fix")
	require.Greater(t, r.calls, 3, "the batch was retried")
	require.Less(t, r.calls, 10, "retries back off (1, 2, 4, 8 minutes)")
	final := status(t, env)
	require.False(t, final.Paused)
	require.Empty(t, final.Refused)
}

// A batch the CRM still refuses after HoldRefused is parked with the
// refusal's code and reason, so that it can be replayed after the fix, and
// the conversation goes on with the next batch.
func TestConversationParksBatchRefusedTooLong(t *testing.T) {
	r := &refusingCRM{refuse: func(b crm.SyncBatch) bool {
		return slices.ContainsFunc(b.Events, func(e schemas.Event) bool { return e.PlatformMessageID != "m3" })
	}}
	env, parked := newRefusingEnv(r)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m1", "hoi"), ev("m2", "hallo")}})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m3", "dank je")}})
	}, 3*time.Hour)
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: 10 * time.Hour, HoldRefused: 2 * time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, *parked, 1, "the refused batch is parked once")
	p := (*parked)[0]
	require.Equal(t, "conv-test", p.ConversationID)
	require.Equal(t, "INVALID_FIELD", p.ErrorCode)
	require.Contains(t, p.Reason, "No such column")
	var ids []string
	for _, e := range p.Events {
		ids = append(ids, e.PlatformMessageID)
	}
	require.Equal(t, []string{"m1", "m2"}, ids)
	require.Equal(t, []string{"m3"}, r.written, "the conversation goes on after parking")
	final := status(t, env)
	require.Equal(t, 2, final.Parked)
	require.False(t, final.Paused)
}
