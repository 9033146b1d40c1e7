package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/internal/privacy"
)

// Names of the DSR workflow's signals, updates and queries.
const (
	// DSRApproveSignal approves an erasure; it carries the approver.
	DSRApproveSignal = "approve"
	// DSRRetrySignal retries an escalated step after the cause was fixed.
	DSRRetrySignal = "retry"
	// DSRExtendUpdate extends the deadline by two months, with a reason.
	DSRExtendUpdate = "extend"
	// DSRStatusQuery returns the DSRStatus.
	DSRStatusQuery = "status"
)

// DSR statuses, as stored and shown.
const (
	StatusReceived         = "received"
	StatusDiscovering      = "discovering"
	StatusAwaitingApproval = "awaiting_approval"
	StatusErasing          = "erasing"
	StatusExporting        = "exporting"
	StatusEscalated        = "escalated"
	StatusCompleted        = activities.StatusCompleted
)

// Deadline rules (GDPR Art. 12(3)).
const (
	// reminderBefore are the reminders before the deadline.
	reminderEarly = 7 * 24 * time.Hour
	reminderLate  = 24 * time.Hour
)

// DSRInput starts a data-subject request workflow.
type DSRInput struct {
	ID              string                        `json:"id"`
	Type            string                        `json:"type"` // access or erasure
	ReceivedAt      time.Time                     `json:"received_at"`
	Identifiers     activities.SubjectIdentifiers `json:"identifiers"`
	RequireApproval bool                          `json:"require_approval"`
	Verification    string                        `json:"verification,omitempty"`
}

// Deadline returns the statutory deadline (Art. 12(3)): received-at plus
// one calendar month, at the same clock time. When the next month has no
// such day (received 31 January), the deadline is that month's last day
// (28 or 29 February), as Regulation 1182/71 Art. 3(2)(c) counts periods
// in months. time.Time.AddDate would normalise 31 February to 3 March,
// which is late.
func Deadline(receivedAt time.Time) time.Time { return addMonths(receivedAt, 1) }

// ExtendedDeadline returns the deadline after the one extension Art. 12(3)
// allows, "two further months": received-at plus three calendar months,
// clamped to the end of the month like Deadline.
func ExtendedDeadline(receivedAt time.Time) time.Time { return addMonths(receivedAt, 3) }

// addMonths adds n calendar months to t, keeping the clock time and
// clamping the day to the last day of the target month.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	target := m + time.Month(n)
	// Day 0 of the month after the target is the target's last day.
	last := time.Date(y, target+1, 0, 0, 0, 0, 0, t.Location()).Day()
	return time.Date(y, target, min(d, last), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// ExtendArg is the argument of DSRExtendUpdate.
type ExtendArg struct {
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
}

// ApproveArg is the argument of DSRApproveSignal.
type ApproveArg struct {
	Actor string `json:"actor"`
}

// DSRStatus is what DSRStatusQuery returns. It carries no personal data.
type DSRStatus struct {
	Status     string               `json:"status"`
	Deadline   time.Time            `json:"deadline"`
	Extended   bool                 `json:"extended"`
	Overdue    bool                 `json:"overdue"`
	ApprovedBy string               `json:"approved_by,omitempty"`
	Footprint  activities.Footprint `json:"footprint"`
	Escalation string               `json:"escalation,omitempty"`
	Step       string               `json:"step,omitempty"`
}

// dsr is the running state of a DSR workflow.
type dsr struct {
	in       DSRInput
	st       DSRStatus
	deadline workflow.Channel
}

// DSR runs one data-subject request: discovery across every linked system,
// then an access export, or, after approval, erasure system by system with
// a ledger row for each, ending with crypto-shredding. The deadline runs as
// a durable timer beside it, with reminders and an overdue alert. Every
// step is idempotent, so a crash or a second run repeats nothing harmful.
func DSR(ctx workflow.Context, in DSRInput) error {
	// Everything this workflow carries is encrypted under the request's own
	// key, which joins the subject's keys and is shredded with them.
	ctx = privacy.WorkflowWithKeyID(ctx, in.ID)
	d := &dsr{in: in, st: DSRStatus{Status: StatusReceived, Deadline: Deadline(in.ReceivedAt)}}
	d.deadline = workflow.NewChannel(ctx)
	if err := workflow.SetQueryHandler(ctx, DSRStatusQuery, func() (DSRStatus, error) { return d.st, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DSRExtendUpdate, d.extend, workflow.UpdateHandlerOptions{Validator: d.validateExtend}); err != nil {
		return err
	}
	workflow.Go(ctx, d.watchDeadline)

	fp, err := d.discover(ctx, "initial")
	if err != nil {
		return err
	}
	d.st.Footprint = fp
	if in.Type == "access" {
		if err := d.setStatus(ctx, StatusExporting, nil); err != nil {
			return err
		}
		var a *activities.DSR
		if err := d.step(ctx, "export", storeOptions, a.Export, activities.ExportInput{DSRID: in.ID, Footprint: fp, Subject: in.Identifiers}); err != nil {
			return err
		}
		return d.setStatus(ctx, StatusCompleted, nil)
	}
	return d.erase(ctx)
}

// erase runs the erasure steps after approval.
func (d *dsr) erase(ctx workflow.Context) error {
	if d.in.RequireApproval {
		if err := d.setStatus(ctx, StatusAwaitingApproval, nil); err != nil {
			return err
		}
		var arg ApproveArg
		workflow.GetSignalChannel(ctx, DSRApproveSignal).Receive(ctx, &arg)
		d.st.ApprovedBy = arg.Actor
		if err := d.record(ctx, activities.StatusInput{DSRID: d.in.ID, Status: StatusAwaitingApproval, ApprovedBy: arg.Actor}); err != nil {
			return err
		}
	}
	// Discover again just before deleting: anything written since the
	// first pass (a new message, a new link) is erased too.
	fp, err := d.discover(ctx, "pre-erasure")
	if err != nil {
		return err
	}
	fp = mergeFootprints(d.st.Footprint, fp)
	d.st.Footprint = fp
	if err := d.setStatus(ctx, StatusErasing, nil); err != nil {
		return err
	}
	if err := d.eraseAll(ctx, fp, 0); err != nil {
		return err
	}
	// A message that arrived while the steps ran (the customer wrote
	// again) started a new conversation run after its run was stopped: its
	// post reached the CRM after the CRM was erased, under a key that
	// shred-keys destroyed or one that nothing erases. Look once more and
	// sweep up what came in. Histories recorded before this existed end
	// here.
	if workflow.GetVersion(ctx, finalSweepChange, workflow.DefaultVersion, 1) >= 1 {
		if err := d.sweepLate(ctx, fp); err != nil {
			return err
		}
	}
	// The keys are gone: from here on the workflow passes no payload that
	// needs them. The status update carries only fixed words.
	return d.setStatusPlain(ctx, StatusCompleted)
}

// finalSweepChange is the workflow.GetVersion change id of the final
// discovery and its sweeps.
const finalSweepChange = "erasure-final-sweep"

// maxSweeps bounds the sweeps in a row: a subject whose data keeps coming
// back after that many (a live conversation, a sync writing behind the
// erasure) needs an operator, so the request escalates.
const maxSweeps = 3

// eraseAll runs the erasure steps over a footprint: sweep 0 is the
// erasure itself, sweep N the N-th sweep for late items. A sweep's steps
// are named with its number, so its ledger rows do not collide with the
// first pass's.
func (d *dsr) eraseAll(ctx workflow.Context, fp activities.Footprint, sweep int) error {
	in := activities.EraseInput{DSRID: d.in.ID, Footprint: fp, Subject: d.in.Identifiers, Sweep: sweep}
	var a *activities.DSR
	// Order matters: stop the conversation workflows first so that nothing
	// writes while the CRM is erased; shred the keys (which also drops them
	// from every cache) before the store forgets which keys were the
	// subject's.
	steps := []struct {
		name string
		opts workflow.ActivityOptions
		fn   any
	}{
		{"stop-conversations", temporalOptions, a.StopConversations},
		{"erase-crm", crmEraseOptions, a.EraseCRM},
		{"erase-platforms", platformOptions, a.ErasePlatforms},
		{"erase-temporal", temporalOptions, a.EraseTemporal},
		{"shred-keys", storeOptions, a.ShredKeys},
		{"erase-store", storeOptions, a.EraseStore},
	}
	for _, s := range steps {
		if err := d.step(ctx, sweepStep(s.name, sweep), s.opts, s.fn, in); err != nil {
			return err
		}
	}
	return nil
}

// sweepStep names a step of a sweep: the step itself for the erasure,
// with "-sweep-N" for the N-th sweep.
func sweepStep(name string, sweep int) string {
	if sweep == 0 {
		return name
	}
	return fmt.Sprintf("%s-sweep-%d", name, sweep)
}

// sweepLate discovers the subject once more after the erasure steps and,
// while that finds something the steps had not erased, runs the steps
// again over what it found. After maxSweeps sweeps in a row it escalates
// and, once an operator retries, goes on sweeping. Each sweep's count is
// in the ledger.
func (d *dsr) sweepLate(ctx workflow.Context, erased activities.Footprint) error {
	inRow := 0
	for sweep := 1; ; sweep++ {
		var a *activities.DSR
		var fp activities.Footprint
		// The status stays erasing: this is the erasure checking its work.
		if err := d.stepResult(ctx, "discover-final-"+fmt.Sprint(sweep), crmEraseOptions, a.Discover, activities.DiscoverInput{
			DSRID: d.in.ID, Identifiers: d.in.Identifiers, Pass: "final-" + fmt.Sprint(sweep),
			ContactIDs: erased.CRM["Contact"], ConversationIDs: erased.ConversationIDs, LiveOnly: true,
		}, &fp); err != nil {
			return err
		}
		n := lateItems(erased, fp)
		if n == 0 {
			return nil
		}
		if inRow == maxSweeps {
			if err := d.escalateLate(ctx, sweep, n); err != nil {
				return err
			}
			inRow = 0
		}
		inRow++
		d.st.Step = sweepStep("sweep", sweep)
		d.st.Footprint = mergeFootprints(d.st.Footprint, fp)
		if err := d.setStatus(ctx, StatusErasing, []activities.Outcome{{
			System: "dsr", Action: "found", Object: "late items", Count: n,
			Detail: fmt.Sprintf("sweep %d: a discovery after the erasure found items written while it ran (such as a new message from the subject); erasing them", sweep),
			Policy: "GDPR Art. 17", At: workflow.Now(ctx),
		}}); err != nil {
			return err
		}
		if err := d.eraseAll(ctx, fp, sweep); err != nil {
			return err
		}
		d.st.Step = sweepStep("sweep", sweep)
		if err := d.setStatus(ctx, StatusErasing, []activities.Outcome{{
			System: "dsr", Action: "erased", Object: "late items", Count: n,
			Detail: fmt.Sprintf("sweep %d erased the items written while the erasure ran", sweep),
			Policy: "GDPR Art. 17", At: workflow.Now(ctx),
		}}); err != nil {
			return err
		}
		erased = mergeFootprints(erased, fp)
	}
}

// escalateLate marks the request escalated because items of the subject
// kept appearing after maxSweeps sweeps, and waits for an operator's retry.
func (d *dsr) escalateLate(ctx workflow.Context, sweep, n int) error {
	d.st.Step = sweepStep("sweep", sweep)
	reason := fmt.Sprintf("%d sweeps in a row still found items of the subject written after the erasure (%d now)", maxSweeps, n)
	d.st.Escalation = d.st.Step + ": " + reason
	if err := d.setStatus(ctx, StatusEscalated, []activities.Outcome{{
		System: "dsr", Action: "failed", Object: "late items", Count: n,
		Detail: reason + "; something keeps writing the subject's data (a live conversation, a backfill, a sync): stop it, then run `webcaresync dsr retry`",
		At:     workflow.Now(ctx),
	}}); err != nil {
		return err
	}
	workflow.GetSignalChannel(ctx, DSRRetrySignal).Receive(ctx, nil)
	d.st.Escalation = ""
	return nil
}

// lateItems counts what a discovery after the erasure found that the
// erasure had not already handled: CRM records and conversations it did
// not know, every Temporal execution and every store row. Records the
// erasure already handled and Salesforce still lists (kept in the Recycle
// Bin, or purged rows queryAll shows for a while) are not late: the
// erasure's ledger says what became of them. The store's conversation
// count only repeats the conversations.
func lateItems(erased, fp activities.Footprint) int {
	n := fp.Executions
	for obj, ids := range fp.CRM {
		for _, id := range ids {
			if !slices.Contains(erased.CRM[obj], id) {
				n++
			}
		}
	}
	for _, id := range fp.ConversationIDs {
		if !slices.Contains(erased.ConversationIDs, id) {
			n++
		}
	}
	for table, c := range fp.Store {
		if table != "conversations" {
			n += c
		}
	}
	return n
}

// heartbeatTimeout is how soon Temporal retries an attempt whose worker
// died: the activities heartbeat every few seconds.
const heartbeatTimeout = 15 * time.Second

// Activity options per system. Each system has its own retry policy: the
// CRM and the platforms are retried for longer (outages, budget), the store
// briefly. When the attempts run out the step escalates instead of failing
// the request.
var (
	crmEraseOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 12,
			NonRetryableErrorTypes: []string{activities.ErrPermanent},
		},
	}
	platformOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrPermanent},
		},
	}
	storeOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 8},
	}
	temporalOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 8},
	}
)

// step runs one activity until it succeeds. When its retries run out it
// records the failure in the ledger, marks the request escalated, and
// waits for an operator's retry signal: a failed system never lets the
// request look complete.
func (d *dsr) step(ctx workflow.Context, name string, opts workflow.ActivityOptions, fn any, arg any) error {
	return d.stepResult(ctx, name, opts, fn, arg, nil)
}

// stepResult is step for an activity with a result, which it stores in
// result.
func (d *dsr) stepResult(ctx workflow.Context, name string, opts workflow.ActivityOptions, fn any, arg any, result any) error {
	d.st.Step = name
	// resume is the status to go back to after an escalation: exporting
	// for an access request, erasing for an erasure.
	resume := d.st.Status
	retry := workflow.GetSignalChannel(ctx, DSRRetrySignal)
	for attempt := 1; ; attempt++ {
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), fn, arg).Get(ctx, result)
		if err == nil {
			if d.st.Escalation != "" {
				d.st.Escalation = ""
				if err := d.setStatus(ctx, resume, nil); err != nil {
					return err
				}
			}
			return nil
		}
		if errors.Is(ctx.Err(), workflow.ErrCanceled) {
			return err
		}
		reason := failureReason(err)
		d.st.Escalation = name + ": " + reason
		if rerr := d.setStatus(ctx, StatusEscalated, []activities.Outcome{{
			System: systemOf(name), Action: "failed", Detail: fmt.Sprintf("attempt %d: %s; waiting for an operator to fix the cause and run `webcaresync dsr retry`", attempt, reason),
			At: workflow.Now(ctx),
		}}); rerr != nil {
			return rerr
		}
		retry.Receive(ctx, nil)
	}
}

// failureReason keeps an activity failure's type and message, which the
// activities write without personal data.
func failureReason(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type() + ": " + app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "timed out"
	}
	return "activity failed"
}

func systemOf(step string) string {
	switch step {
	case "erase-crm":
		return activities.SystemCRM
	case "erase-platforms":
		return "platforms"
	case "erase-store", "export":
		return activities.SystemStore
	case "erase-temporal", "stop-conversations":
		return activities.SystemTemporal
	case "shred-keys":
		return activities.SystemKeys
	case "discover-initial", "discover-pre-erasure":
		return "discovery"
	}
	if strings.HasPrefix(step, "discover-final-") {
		return "discovery"
	}
	if name, _, ok := strings.Cut(step, "-sweep-"); ok {
		return systemOf(name)
	}
	return step
}

// discover runs a discovery pass.
func (d *dsr) discover(ctx workflow.Context, pass string) (activities.Footprint, error) {
	if err := d.setStatus(ctx, StatusDiscovering, nil); err != nil {
		return activities.Footprint{}, err
	}
	var a *activities.DSR
	var fp activities.Footprint
	// Discovery escalates like the other steps: a CRM outage that outlasts
	// the retries leaves the request escalated and visible, not failed.
	err := d.stepResult(ctx, "discover-"+pass, crmEraseOptions, a.Discover, activities.DiscoverInput{
		DSRID: d.in.ID, Identifiers: d.in.Identifiers, Pass: pass,
	}, &fp)
	return fp, err
}

// setStatus records a status (and ledger outcomes) in the store.
func (d *dsr) setStatus(ctx workflow.Context, status string, outcomes []activities.Outcome) error {
	d.st.Status = status
	return d.record(ctx, activities.StatusInput{DSRID: d.in.ID, Status: status, Outcomes: outcomes, Step: d.st.Step})
}

// setStatusPlain records the final status after the keys were shredded.
// Its input is fixed words and an opaque id; it is still encrypted, under
// the system key, since this request's key no longer exists.
func (d *dsr) setStatusPlain(ctx workflow.Context, status string) error {
	d.st.Status = status
	ctx = privacy.WorkflowWithKeyID(ctx, privacy.SystemKeyID)
	return d.record(ctx, activities.StatusInput{DSRID: d.in.ID, Status: status})
}

func (d *dsr) record(ctx workflow.Context, in activities.StatusInput) error {
	var a *activities.DSR
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, storeOptions), a.RecordStatus, in).Get(ctx, nil)
}

// validateExtend refuses an extension without a reason, a second one, or
// one after the first month (Art. 12(3): notice must be given within one
// month of receipt).
func (d *dsr) validateExtend(ctx workflow.Context, arg ExtendArg) error {
	if arg.Reason == "" {
		return errors.New("an extension needs a reason, which is sent to the data subject")
	}
	if d.st.Extended {
		return errors.New("the deadline was already extended; GDPR allows one extension of at most two months")
	}
	if !workflow.Now(ctx).Before(Deadline(d.in.ReceivedAt)) {
		return errors.New("the first month has passed; an extension must be noticed within one month of receipt")
	}
	if d.st.Status == StatusCompleted {
		return errors.New("the request is complete")
	}
	return nil
}

// extend moves the deadline by two months and records the reason.
func (d *dsr) extend(ctx workflow.Context, arg ExtendArg) (time.Time, error) {
	// Updates delivered in one workflow task are all validated before any
	// handler runs: check again, and claim the one extension before the
	// activity yields, so that a second update is refused.
	if err := d.validateExtend(ctx, arg); err != nil {
		return time.Time{}, err
	}
	d.st.Extended = true
	deadline := ExtendedDeadline(d.in.ReceivedAt)
	if err := d.record(ctx, activities.StatusInput{DSRID: d.in.ID, Status: d.st.Status, Deadline: &deadline, ExtensionReason: arg.Reason, Outcomes: []activities.Outcome{{
		System: "dsr", Action: "retained", Detail: "deadline extended by two months by " + arg.Actor, Policy: "GDPR Art. 12(3)", At: workflow.Now(ctx),
	}}, Step: "extend"}); err != nil {
		d.st.Extended = false
		return time.Time{}, err
	}
	d.st.Deadline = deadline
	d.deadline.SendAsync(deadline)
	return deadline, nil
}

// watchDeadline fires reminders before the deadline and raises the
// overdue alert after it, following extensions. It ends when the request
// completes.
func (d *dsr) watchDeadline(ctx workflow.Context) {
	var a *activities.DSR
	fired := map[string]bool{}
	for d.st.Status != StatusCompleted {
		now := workflow.Now(ctx)
		next, label := d.st.Deadline, "overdue"
		switch {
		case !fired[key("early", d.st.Deadline)] && now.Before(d.st.Deadline.Add(-reminderEarly)):
			next, label = d.st.Deadline.Add(-reminderEarly), "early"
		case !fired[key("late", d.st.Deadline)] && now.Before(d.st.Deadline.Add(-reminderLate)):
			next, label = d.st.Deadline.Add(-reminderLate), "late"
		case fired[key("overdue", d.st.Deadline)]:
			// Overdue already raised for this deadline: wait for an
			// extension or the end.
			next, label = time.Time{}, ""
		}
		timerCtx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(d.deadline, func(c workflow.ReceiveChannel, _ bool) {
			var t time.Time
			c.Receive(ctx, &t)
			d.st.Overdue = false
		})
		timerFired := false
		if label != "" {
			sel.AddFuture(workflow.NewTimer(timerCtx, next.Sub(now)), func(workflow.Future) { timerFired = true })
		}
		sel.Select(ctx)
		cancel()
		if !timerFired || d.st.Status == StatusCompleted {
			continue
		}
		fired[key(label, d.st.Deadline)] = true
		if label == "overdue" {
			d.st.Overdue = true
		}
		ao := workflow.WithActivityOptions(ctx, storeOptions)
		_ = workflow.ExecuteActivity(ao, a.DeadlineEvent, activities.DeadlineInput{DSRID: d.in.ID, Kind: label, Deadline: d.st.Deadline}).Get(ctx, nil)
	}
}

func key(label string, t time.Time) string { return label + "@" + t.UTC().Format(time.RFC3339) }

// mergeFootprints unions two discovery passes.
func mergeFootprints(a, b activities.Footprint) activities.Footprint {
	out := activities.Footprint{
		SubjectIDs:       union(a.SubjectIDs, b.SubjectIDs),
		ConversationIDs:  union(a.ConversationIDs, b.ConversationIDs),
		IdentifierHashes: union(a.IdentifierHashes, b.IdentifierHashes),
		CRM:              map[string][]string{},
		Platforms:        map[string][]activities.PlatformItem{},
		Store:            b.Store,
		Executions:       max(a.Executions, b.Executions),
	}
	for _, f := range []activities.Footprint{a, b} {
		for obj, ids := range f.CRM {
			out.CRM[obj] = union(out.CRM[obj], ids)
		}
		for p, items := range f.Platforms {
			seen := map[string]bool{}
			for _, it := range out.Platforms[p] {
				seen[it.ID] = true
			}
			for _, it := range items {
				if !seen[it.ID] {
					out.Platforms[p] = append(out.Platforms[p], it)
					seen[it.ID] = true
				}
			}
		}
	}
	return out
}

func union(a, b []string) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var out []string
	for _, l := range [][]string{a, b} {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}
