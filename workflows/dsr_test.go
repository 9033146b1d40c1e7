package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/webcaresync/webcaresync/activities"
)

// received is when the test requests arrive: 3 March, so the deadline is
// 3 April (31 days), the early reminder 27 March and the late one 2 April.
var received = time.Date(2025, time.March, 3, 10, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// eraseSteps are the erase activities in the order dsr.go runs them.
var eraseSteps = []string{"StopConversations", "EraseCRM", "ErasePlatforms", "EraseTemporal", "ShredKeys", "EraseStore"}

// deadlineEvent is one DeadlineEvent call: its kind, the deadline it was
// about, and the workflow time it ran at.
type deadlineEvent struct {
	Kind     string
	Deadline time.Time
	At       time.Time
}

// dsrRecorder stands in for the DSR activities: it records every call in
// order and fails the activities named in fail permanently, as many times
// as given. The activities themselves are tested against the store, the
// CRM sandbox and the platform fakes in their own packages.
type dsrRecorder struct {
	env *testsuite.TestWorkflowEnvironment

	mu        sync.Mutex
	calls     []string
	statuses  []activities.StatusInput
	events    []deadlineEvent
	erased    []activities.EraseInput
	exported  []activities.ExportInput
	fail      map[string]int
	footprint map[string]activities.Footprint
}

func (r *dsrRecorder) call(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, name)
	if r.fail[name] > 0 {
		r.fail[name]--
		return temporal.NewNonRetryableApplicationError("the system refused the request", activities.ErrPermanent, nil)
	}
	return nil
}

// snapshot returns the calls so far.
func (r *dsrRecorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// only returns the calls named in names, in order.
func (r *dsrRecorder) only(names ...string) []string { return onlyOf(r.snapshot(), names...) }

func (r *dsrRecorder) statusWords() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.statuses {
		out = append(out, s.Status)
	}
	return out
}

func (r *dsrRecorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

func newDSREnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *dsrRecorder) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(received)
	r := &dsrRecorder{env: env, fail: map[string]int{}, footprint: map[string]activities.Footprint{
		"initial": {CRM: map[string][]string{"Contact": {"003A"}, "SocialPost": {"0ST1"}}, ConversationIDs: []string{"conv-1"}},
	}}
	var a *activities.DSR
	env.RegisterActivity(a)
	env.OnActivity(a.Discover, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DiscoverInput) (activities.Footprint, error) {
		// Only the discovery after the erasure leaves the CRM's recycle bin
		// out: the others must find what is in it, to erase it.
		if final := strings.HasPrefix(in.Pass, "final-"); final != in.LiveOnly {
			t.Errorf("discovery %s asked for LiveOnly %v", in.Pass, in.LiveOnly)
		}
		if err := r.call("Discover:" + in.Pass); err != nil {
			return activities.Footprint{}, err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.footprint[in.Pass], nil
	})
	env.OnActivity(a.Export, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExportInput) error {
		if err := r.call("Export"); err != nil {
			return err
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.exported = append(r.exported, in)
		return nil
	})
	for name, fn := range map[string]func(context.Context, activities.EraseInput) error{
		"StopConversations": a.StopConversations, "EraseCRM": a.EraseCRM, "ErasePlatforms": a.ErasePlatforms,
		"EraseTemporal": a.EraseTemporal, "ShredKeys": a.ShredKeys, "EraseStore": a.EraseStore,
	} {
		env.OnActivity(fn, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.EraseInput) error {
			if err := r.call(name); err != nil {
				return err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.erased = append(r.erased, in)
			return nil
		})
	}
	env.OnActivity(a.RecordStatus, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StatusInput) error {
		r.mu.Lock()
		r.statuses = append(r.statuses, in)
		r.mu.Unlock()
		return r.call("RecordStatus:" + in.Status)
	})
	env.OnActivity(a.DeadlineEvent, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeadlineInput) error {
		r.mu.Lock()
		r.events = append(r.events, deadlineEvent{Kind: in.Kind, Deadline: in.Deadline, At: env.Now().UTC()})
		r.mu.Unlock()
		return r.call("DeadlineEvent:" + in.Kind)
	})
	return env, r
}

func dsrInput(typ string, approval bool) DSRInput {
	return DSRInput{
		ID: "dsr-test", Type: typ, ReceivedAt: received, RequireApproval: approval,
		Identifiers: activities.SubjectIdentifiers{Email: "subject@example.test", Handles: []activities.SubjectHandle{{Provider: "x", ID: "2"}}},
	}
}

func approveAt(env *testsuite.TestWorkflowEnvironment, after time.Duration) {
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DSRApproveSignal, ApproveArg{Actor: "dpo"})
	}, after)
}

// updateResult is what became of one extend update.
type updateResult struct {
	accepted bool
	rejected error
	done     bool
	err      error
	deadline time.Time
}

func extendCallback(r *updateResult) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept: func() { r.accepted = true },
		OnReject: func(err error) { r.rejected = err },
		OnComplete: func(v any, err error) {
			r.done, r.err = true, err
			if t, ok := v.(time.Time); ok {
				r.deadline = t
			}
		},
	}
}

func extendAt(env *testsuite.TestWorkflowEnvironment, after time.Duration, arg ExtendArg) *updateResult {
	r := &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(DSRExtendUpdate, "", extendCallback(r), arg)
	}, after)
	return r
}

func queryAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, after time.Duration) *DSRStatus {
	st := &DSRStatus{}
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(DSRStatusQuery)
		require.NoError(t, err)
		require.NoError(t, v.Get(st))
	}, after)
	return st
}

// finalStatus queries a workflow that has ended.
func finalStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) DSRStatus {
	t.Helper()
	var st DSRStatus
	v, err := env.QueryWorkflow(DSRStatusQuery)
	require.NoError(t, err)
	require.NoError(t, v.Get(&st))
	return st
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, time.UTC) }

// Go's AddDate normalises 31 February to 3 March. GDPR periods in months
// end on the last day of a month that has no such day (Regulation
// 1182/71 Art. 3(2)(c); the EDPB's access guidelines count the same way),
// so Deadline clamps.
func TestDeadlineAddsOneCalendarMonthClampedToMonthEnd(t *testing.T) {
	require.Equal(t, date(2025, time.March, 3), date(2025, time.January, 31).AddDate(0, 1, 0),
		"what Go's AddDate does with 31 January, and why Deadline does not use it")
	for _, tc := range []struct{ in, deadline, extended time.Time }{
		{date(2025, time.March, 3), date(2025, time.April, 3), date(2025, time.June, 3)},
		{date(2025, time.January, 31), date(2025, time.February, 28), date(2025, time.April, 30)},
		{date(2024, time.January, 31), date(2024, time.February, 29), date(2024, time.April, 30)},
		{date(2025, time.March, 31), date(2025, time.April, 30), date(2025, time.June, 30)},
		{date(2025, time.August, 31), date(2025, time.September, 30), date(2025, time.November, 30)},
		{date(2024, time.November, 30), date(2024, time.December, 30), date(2025, time.February, 28)},
		{date(2025, time.December, 15), date(2026, time.January, 15), date(2026, time.March, 15)},
		{date(2025, time.February, 28), date(2025, time.March, 28), date(2025, time.May, 28)},
	} {
		require.Equal(t, tc.deadline, Deadline(tc.in), "deadline of %s", tc.in.Format(time.DateOnly))
		require.Equal(t, tc.extended, ExtendedDeadline(tc.in), "extended deadline of %s", tc.in.Format(time.DateOnly))
	}
}

func TestDeadlineKeepsTheLocalClockTimeAcrossDaylightSaving(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no time zone database")
	}
	in := time.Date(2025, time.March, 10, 9, 0, 0, 0, ams)
	require.Equal(t, time.Date(2025, time.April, 10, 9, 0, 0, 0, ams), Deadline(in))
}

func TestDSRDeadlineOf31JanuaryIsEndOfFebruary(t *testing.T) {
	env, _ := newDSREnv(t)
	jan31 := date(2025, time.January, 31)
	env.SetStartTime(jan31)
	in := dsrInput("erasure", true)
	in.ReceivedAt = jan31
	st := queryAt(t, env, time.Hour)
	// 28 February at the hour of receipt: the month is over, even though
	// AddDate would still have three days to go.
	late := extendAt(env, 28*day, ExtendArg{Reason: "complex request", Actor: "dpo"})
	approveAt(env, 29*day)
	env.ExecuteWorkflow(DSR, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, date(2025, time.February, 28), st.Deadline)
	require.Error(t, late.rejected, "the first month ended on 28 February")
	require.False(t, late.accepted)
}

func TestDSRExtensionInsideFirstMonthMovesDeadlineByTwoMonths(t *testing.T) {
	env, r := newDSREnv(t)
	first := extendAt(env, 10*day, ExtendArg{Reason: "many systems to search", Actor: "dpo"})
	second := extendAt(env, 11*day, ExtendArg{Reason: "still busy", Actor: "dpo"})
	st := queryAt(t, env, 12*day)
	approveAt(env, 13*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())

	require.True(t, first.accepted)
	require.NoError(t, first.rejected)
	require.True(t, first.done)
	require.NoError(t, first.err)
	require.Equal(t, date(2025, time.June, 3), first.deadline, "received 3 March: 3 April plus two further months")
	require.True(t, st.Extended)
	require.Equal(t, date(2025, time.June, 3), st.Deadline)

	require.ErrorContains(t, second.rejected, "already extended")
	require.False(t, second.accepted)

	var ext []activities.StatusInput
	r.mu.Lock()
	for _, s := range r.statuses {
		if s.Deadline != nil {
			ext = append(ext, s)
		}
	}
	r.mu.Unlock()
	require.Len(t, ext, 1, "one extension is recorded")
	require.Equal(t, date(2025, time.June, 3), *ext[0].Deadline)
	require.Equal(t, "many systems to search", ext[0].ExtensionReason)
}

func TestDSRTwoExtensionsAtOnceOnlyOneWins(t *testing.T) {
	env, _ := newDSREnv(t)
	a, b := &updateResult{}, &updateResult{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(DSRExtendUpdate, "a", extendCallback(a), ExtendArg{Reason: "one", Actor: "dpo"})
		env.UpdateWorkflow(DSRExtendUpdate, "b", extendCallback(b), ExtendArg{Reason: "two", Actor: "dpo"})
	}, day)
	approveAt(env, 2*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())
	ok := 0
	for _, u := range []*updateResult{a, b} {
		if u.accepted && u.done && u.err == nil {
			ok++
		}
	}
	require.Equal(t, 1, ok, "GDPR allows one extension: a=%+v b=%+v", *a, *b)
}

func TestDSRExtensionAfterFirstMonthIsRefused(t *testing.T) {
	env, r := newDSREnv(t)
	late := extendAt(env, 32*day, ExtendArg{Reason: "forgot", Actor: "dpo"})
	st := queryAt(t, env, 32*day+time.Hour)
	approveAt(env, 33*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())
	require.ErrorContains(t, late.rejected, "first month has passed")
	require.False(t, late.accepted)
	require.False(t, st.Extended)
	require.Equal(t, Deadline(received), st.Deadline)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.statuses {
		require.Nil(t, s.Deadline, "a refused extension records no new deadline")
	}
}

func TestDSRExtensionWithoutReasonIsRefused(t *testing.T) {
	env, _ := newDSREnv(t)
	u := extendAt(env, day, ExtendArg{Actor: "dpo"})
	st := queryAt(t, env, day+time.Hour)
	approveAt(env, 2*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())
	require.ErrorContains(t, u.rejected, "reason")
	require.False(t, st.Extended)
}

func TestDSRRemindersAndOverdueWhenStuck(t *testing.T) {
	env, r := newDSREnv(t)
	st := queryAt(t, env, 35*day)
	// Nobody approves the erasure until long after the deadline.
	approveAt(env, 40*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())

	deadline := Deadline(received)
	require.Equal(t, []string{"early", "late", "overdue"}, r.kinds())
	r.mu.Lock()
	events := slices.Clone(r.events)
	r.mu.Unlock()
	require.Equal(t, deadline.Add(-7*day), events[0].At, "the early reminder comes a week before")
	require.Equal(t, deadline.Add(-day), events[1].At, "the late reminder comes a day before")
	require.False(t, events[2].At.Before(deadline), "the overdue alert comes after the deadline")
	for _, e := range events {
		require.Equal(t, deadline, e.Deadline)
	}
	require.True(t, st.Overdue)
	require.Equal(t, StatusAwaitingApproval, st.Status)
	require.Equal(t, StatusCompleted, r.statusWords()[len(r.statusWords())-1])
}

func TestDSRNoOverdueWhenCompletedInTime(t *testing.T) {
	env, r := newDSREnv(t)
	// Approved after the early reminder (27 March), before the late one.
	approveAt(env, 25*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"early"}, r.kinds())
}

func TestDSRNoDeadlineEventsWhenCompletedAtOnce(t *testing.T) {
	env, r := newDSREnv(t)
	env.ExecuteWorkflow(DSR, dsrInput("access", false))
	require.NoError(t, env.GetWorkflowError())
	require.Empty(t, r.kinds())
}

func TestDSROverdueMovesWithExtension(t *testing.T) {
	env, r := newDSREnv(t)
	extended := extendAt(env, 5*day, ExtendArg{Reason: "many systems to search", Actor: "dpo"})
	st := queryAt(t, env, 40*day)
	approveAt(env, 100*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())
	require.NoError(t, extended.err)

	newDeadline := ExtendedDeadline(received)
	require.False(t, st.Overdue, "past the first deadline but inside the extension")
	require.Equal(t, []string{"early", "late", "overdue"}, r.kinds())
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		require.Equal(t, newDeadline, e.Deadline, "%s is about the extended deadline", e.Kind)
	}
	require.Equal(t, newDeadline.Add(-7*day), r.events[0].At)
	require.False(t, r.events[2].At.Before(newDeadline), "the overdue alert waits for the extended deadline")
}

func TestDSRErasureWaitsForApprovalRediscoversAndErasesInOrder(t *testing.T) {
	env, r := newDSREnv(t)
	// A message arrives between the two passes: the second pass finds a
	// new post and a new conversation.
	r.footprint["pre-erasure"] = activities.Footprint{
		CRM: map[string][]string{"SocialPost": {"0ST1", "0ST2"}}, ConversationIDs: []string{"conv-1", "conv-2"},
	}
	var before []string
	env.RegisterDelayedCallback(func() { before = r.snapshot() }, 2*day)
	st := queryAt(t, env, 2*day)
	approveAt(env, 3*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", true))
	require.NoError(t, env.GetWorkflowError())
	final := finalStatus(t, env)

	require.Equal(t, StatusAwaitingApproval, st.Status)
	require.Equal(t, []string{"Discover:initial"}, onlyOf(before, "Discover", "StopConversations", "EraseCRM", "ErasePlatforms", "EraseTemporal", "ShredKeys", "EraseStore", "Export"),
		"nothing is erased before the approval")
	require.Equal(t, []string{"0ST1"}, st.Footprint.CRM["SocialPost"], "the footprint is shown before anything is deleted")

	require.Equal(t, append(append([]string{"Discover:initial", "Discover:pre-erasure"}, eraseSteps...), "Discover:final-1"),
		r.only(append([]string{"Discover", "Export"}, eraseSteps...)...), "a final discovery that finds nothing ends the erasure")
	r.mu.Lock()
	for _, in := range r.erased {
		require.ElementsMatch(t, []string{"0ST1", "0ST2"}, in.Footprint.CRM["SocialPost"], "both passes are erased")
		require.Equal(t, []string{"003A"}, in.Footprint.CRM["Contact"], "the first pass is not forgotten")
		require.ElementsMatch(t, []string{"conv-1", "conv-2"}, in.Footprint.ConversationIDs)
	}
	approvals := 0
	for _, s := range r.statuses {
		if s.ApprovedBy == "dpo" {
			approvals++
		}
	}
	r.mu.Unlock()
	require.Equal(t, 1, approvals, "the approver is recorded")
	require.Equal(t, "dpo", final.ApprovedBy)
	words := r.statusWords()
	require.Equal(t, StatusCompleted, words[len(words)-1])
	require.Equal(t, 1, count(words, StatusCompleted))
}

func TestDSRErasureWithoutApprovalSetting(t *testing.T) {
	env, r := newDSREnv(t)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", false))
	require.NoError(t, env.GetWorkflowError())
	require.NotContains(t, r.statusWords(), StatusAwaitingApproval)
	require.Equal(t, append(append([]string{"Discover:initial", "Discover:pre-erasure"}, eraseSteps...), "Discover:final-1"),
		r.only(append([]string{"Discover"}, eraseSteps...)...))
}

func TestDSRPermanentFailureEscalatesUntilRetry(t *testing.T) {
	env, r := newDSREnv(t)
	r.fail["EraseCRM"] = 1
	var before []string
	var beforeStatuses []string
	env.RegisterDelayedCallback(func() {
		before = r.snapshot()
		beforeStatuses = r.statusWords()
	}, day)
	st := queryAt(t, env, day)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(DSRRetrySignal, nil) }, 2*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", false))
	require.NoError(t, env.GetWorkflowError())
	final := finalStatus(t, env)

	require.Equal(t, StatusEscalated, st.Status)
	require.Contains(t, st.Escalation, "erase-crm")
	require.Equal(t, "erase-crm", st.Step)
	require.NotContains(t, beforeStatuses, StatusCompleted, "a failed system never looks complete")
	require.NotContains(t, before, "ErasePlatforms", "the next steps wait for the failed one")
	r.mu.Lock()
	var failed []activities.Outcome
	for _, s := range r.statuses {
		if s.Status == StatusEscalated {
			failed = append(failed, s.Outcomes...)
		}
	}
	r.mu.Unlock()
	require.Len(t, failed, 1)
	require.Equal(t, "failed", failed[0].Action)
	require.Equal(t, activities.SystemCRM, failed[0].System)
	require.Contains(t, failed[0].Detail, activities.ErrPermanent)

	require.Equal(t, []string{"StopConversations", "EraseCRM", "EraseCRM", "ErasePlatforms", "EraseTemporal", "ShredKeys", "EraseStore"},
		r.only(eraseSteps...), "the retry runs the failed step again, and only it")
	words := r.statusWords()
	require.Equal(t, StatusCompleted, words[len(words)-1])
	esc := slices.Index(words, StatusEscalated)
	require.Equal(t, StatusErasing, words[esc+1], "the request goes back to erasing after the retry")
	require.Equal(t, StatusCompleted, final.Status)
	require.Empty(t, final.Escalation)
}

// lateFootprint is what a final discovery finds of a message that arrived
// while the erasure ran: a new post in the CRM and the new run of the
// conversation the erasure already stopped.
var lateFootprint = activities.Footprint{
	CRM:             map[string][]string{"Contact": {"003A"}, "SocialPost": {"0ST1", "0ST2"}},
	ConversationIDs: []string{"conv-1"},
	Executions:      1,
	Store:           map[string]int{"conversations": 1},
}

// lateRows returns the ledger outcomes about late items, as "action
// count".
func (r *dsrRecorder) lateRows() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.statuses {
		for _, o := range s.Outcomes {
			if o.Object == "late items" {
				out = append(out, fmt.Sprintf("%s %d", o.Action, o.Count))
			}
		}
	}
	return out
}

func TestDSRErasureSweepsUpAMessageThatArrivedWhileItRan(t *testing.T) {
	env, r := newDSREnv(t)
	r.footprint["final-1"] = lateFootprint
	// What the erasure already erased and Salesforce still lists is not
	// late: the second final discovery finds the first pass's post in the
	// Recycle Bin and nothing else.
	r.footprint["final-2"] = activities.Footprint{CRM: map[string][]string{"SocialPost": {"0ST1"}}, ConversationIDs: []string{"conv-1"}, Store: map[string]int{"conversations": 1}}
	env.ExecuteWorkflow(DSR, dsrInput("erasure", false))
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, append(append(append(append([]string{"Discover:initial", "Discover:pre-erasure"}, eraseSteps...), "Discover:final-1"), eraseSteps...), "Discover:final-2"),
		r.only(append([]string{"Discover"}, eraseSteps...)...), "the steps run again for the late items, then a discovery finds nothing new")
	r.mu.Lock()
	require.Len(t, r.erased, 2*len(eraseSteps))
	sweep := r.erased[len(eraseSteps):]
	r.mu.Unlock()
	for _, in := range sweep {
		require.Equal(t, 1, in.Sweep, "the sweep's ledger rows are named apart from the first pass's")
		require.Equal(t, []string{"0ST1", "0ST2"}, in.Footprint.CRM["SocialPost"], "the sweep erases the footprint the final discovery found")
	}
	require.Equal(t, []string{"found 2", "erased 2"}, r.lateRows(), "the late items are the new post and the conversation's new run, not what the erasure already knew")
	words := r.statusWords()
	require.Equal(t, StatusCompleted, words[len(words)-1])
	require.NotContains(t, words, StatusEscalated)
	require.Equal(t, StatusCompleted, finalStatus(t, env).Status)
}

func TestDSRErasureEscalatesWhenLateItemsKeepComing(t *testing.T) {
	env, r := newDSREnv(t)
	for i := 1; i <= maxSweeps+1; i++ {
		r.footprint[fmt.Sprintf("final-%d", i)] = lateFootprint
	}
	st := queryAt(t, env, day)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(DSRRetrySignal, nil) }, 2*day)
	env.ExecuteWorkflow(DSR, dsrInput("erasure", false))
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, StatusEscalated, st.Status, "after the bound the request escalates instead of sweeping forever")
	require.Contains(t, st.Escalation, "sweeps in a row")
	require.NotEqual(t, StatusCompleted, st.Status)
	r.mu.Lock()
	var failed []activities.Outcome
	for _, s := range r.statuses {
		if s.Status == StatusEscalated {
			failed = append(failed, s.Outcomes...)
		}
	}
	sweeps := map[int]bool{}
	for _, in := range r.erased {
		sweeps[in.Sweep] = true
	}
	r.mu.Unlock()
	require.Len(t, failed, 1)
	require.Equal(t, "failed", failed[0].Action)
	require.Contains(t, failed[0].Detail, "webcaresync dsr retry")
	// The erasure and maxSweeps sweeps before the escalation, one more
	// after the operator's retry, whose final discovery finds nothing.
	require.Len(t, sweeps, maxSweeps+2)
	require.Equal(t, (maxSweeps+2)*len(eraseSteps), len(r.only(eraseSteps...)))
	require.Equal(t, StatusCompleted, finalStatus(t, env).Status)
}

func TestDSRAccessExportsWithoutApproval(t *testing.T) {
	env, r := newDSREnv(t)
	// Approval applies to erasure only, even if the input asks for it.
	env.ExecuteWorkflow(DSR, dsrInput("access", true))
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"Discover:initial", "Export"}, r.only(append([]string{"Discover", "Export"}, eraseSteps...)...))
	require.Equal(t, []string{StatusDiscovering, StatusExporting, StatusCompleted}, r.statusWords())
	require.Len(t, r.exported, 1)
	require.Equal(t, []string{"003A"}, r.exported[0].Footprint.CRM["Contact"])
	require.Equal(t, "subject@example.test", r.exported[0].Subject.Email)
}

func TestDSRAccessExportFailureEscalatesAndResumesExporting(t *testing.T) {
	env, r := newDSREnv(t)
	r.fail["Export"] = 1
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(DSRRetrySignal, nil) }, day)
	env.ExecuteWorkflow(DSR, dsrInput("access", false))
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{StatusDiscovering, StatusExporting, StatusEscalated, StatusExporting, StatusCompleted}, r.statusWords(),
		"an access request is never shown as erasing")
}

func onlyOf(calls []string, names ...string) []string {
	var out []string
	for _, c := range calls {
		if slices.Contains(names, strings.SplitN(c, ":", 2)[0]) {
			out = append(out, c)
		}
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestDSRDiscoveryFailureEscalatesInsteadOfFailing(t *testing.T) {
	env, r := newDSREnv(t)
	r.fail["Discover:initial"] = 1
	st := queryAt(t, env, day)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(DSRRetrySignal, nil) }, 2*day)
	env.ExecuteWorkflow(DSR, dsrInput("access", false))
	require.NoError(t, env.GetWorkflowError(), "a failed discovery must not fail the request")
	require.Equal(t, StatusEscalated, st.Status)
	require.Equal(t, "discover-initial", st.Step)
	require.Equal(t, []string{"Discover:initial", "Discover:initial", "Export"}, r.only("Discover", "Export"))
	require.Equal(t, []string{StatusDiscovering, StatusEscalated, StatusDiscovering, StatusExporting, StatusCompleted}, r.statusWords())
}
