package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/schemas"
)

// storedState stands for the conversation_states row of one conversation.
type storedState struct {
	state crm.ConversationState
	loads int
	saves []crm.ConversationState
}

func newStateEnv(st *storedState, match activities.MatchResult) (*testsuite.TestWorkflowEnvironment, *[]activities.ApplyReviewInput) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var sync *activities.Sync
	var id *activities.Identity
	env.RegisterActivity(sync)
	env.RegisterActivity(id)
	env.OnActivity(sync.SyncBatch, mock.Anything, mock.Anything).Return(func(_ context.Context, b crm.SyncBatch) (crm.SyncResult, error) {
		// As the activity does: a batch without state continues the
		// stored one, and the state after the batch is stored.
		if emptyState(b.State) {
			b.State = st.state
		}
		out := b.State
		if out.CaseID == "" {
			out.CaseID = "500000000000002AAA"
		}
		st.state = out
		return crm.SyncResult{State: out, Written: []string{b.Events[0].PlatformMessageID}}, nil
	})
	env.OnActivity(id.Match, mock.Anything, mock.Anything).Return(match, nil)
	env.OnActivity(sync.LoadState, mock.Anything, mock.Anything).Return(func(context.Context, activities.StateInput) (crm.ConversationState, error) {
		st.loads++
		return st.state, nil
	})
	env.OnActivity(sync.SaveState, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StateInput) error {
		st.saves = append(st.saves, in.State)
		st.state = in.State
		return nil
	})
	applied := &[]activities.ApplyReviewInput{}
	env.OnActivity(id.ApplyReview, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ApplyReviewInput) (crm.ConversationState, error) {
		*applied = append(*applied, in)
		out := in.State
		out.ContactID = in.ContactID
		return out, nil
	})
	return env, applied
}

// A contact linked by identity matching is stored at once, not only with
// the next batch: a run that ends before another message arrives must not
// forget the link (the next run would parent the persona to a post again).
func TestConversationStoresContactLinkedByMatch(t *testing.T) {
	st := &storedState{}
	env, _ := newStateEnv(st, activities.MatchResult{ContactID: "003000000000001AAA", SubjectID: "subject-1"})
	signalEach(env, "m1")
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, st.saves, 1, "the link is stored once")
	require.Equal(t, "003000000000001AAA", st.saves[0].ContactID)
	require.Equal(t, "subject-1", st.saves[0].SubjectID)
	require.Equal(t, "500000000000002AAA", st.saves[0].CaseID, "the stored state is the whole state, case included")
}

// A review resolved after the conversation's run ended starts a new run
// with an empty state: it loads the stored state first, so the review
// links the conversation's personas and posts, and stores the result.
func TestConversationRestoresStateBeforeReview(t *testing.T) {
	st := &storedState{state: crm.ConversationState{
		CaseID:     "500000000000001AAA",
		PersonaIDs: map[string]string{"x:2": "0ST000000000001AAA"},
		PostIDs:    map[string]string{"m1": "0SP000000000001AAA"},
		SubjectID:  "subject-1",
	}}
	env, applied := newStateEnv(st, activities.MatchResult{})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(ReviewSignal, ReviewDecision{ReviewID: "review-1", ContactID: "003000000000001AAA", Actor: "agent"})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(EventsSignal, EventsSignalArg{Events: []schemas.Event{ev("m2", "nog iets")}})
	}, time.Minute)
	env.ExecuteWorkflow(Conversation, ConversationInput{ConversationID: "conv-test", IdleTimeout: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 1, st.loads, "the new run loads the stored state once, before the review")
	require.Len(t, *applied, 1)
	require.Equal(t, "0ST000000000001AAA", (*applied)[0].State.PersonaIDs["x:2"], "the review acts on the stored personas")
	require.Len(t, st.saves, 1, "the review's result is stored")
	require.Equal(t, "003000000000001AAA", st.saves[0].ContactID)
	require.Equal(t, "500000000000001AAA", st.state.CaseID, "the next batch keeps the conversation's case")
	require.Equal(t, "003000000000001AAA", st.state.ContactID, "and its contact")
}
