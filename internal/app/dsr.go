package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/mail"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/internal/edge"
	"github.com/webcaresync/webcaresync/internal/identity"
	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/workflows"
)

// registerDSR registers the data-subject request workflow.
func (a *App) registerDSR(w worker.Worker) {
	w.RegisterWorkflowWithOptions(workflows.DSR, workflow.RegisterOptions{Name: "DSR"})
}

// registerDSRActivities registers the data-subject request activities.
func (a *App) registerDSRActivities(w worker.Worker) {
	w.RegisterActivity(&activities.DSR{
		CRM: a.CRM, Store: a.Store, Keys: a.Keyring, Hasher: a.Hasher, Temporal: a.Client,
		Namespace: a.Cfg.Temporal.Namespace, Platforms: a.platforms(), Region: a.Cfg.Identity.DefaultRegion,
		Metrics: a.Metrics, Log: a.Log.Named("dsr"),
	})
}

// openDSRStatuses are the statuses of a request that is not complete.
var openDSRStatuses = []string{
	workflows.StatusReceived, workflows.StatusDiscovering, workflows.StatusAwaitingApproval,
	workflows.StatusErasing, workflows.StatusExporting, workflows.StatusEscalated,
}

// dsrCounts counts the open requests, and those past their deadline, from
// the store: one query per open status, so a scrape never reads the
// completed requests and their sealed exports.
func (a *App) dsrCounts(ctx context.Context) (metrics.DSRCounts, error) {
	c := metrics.DSRCounts{OpenByStatus: make(map[string]int, len(openDSRStatuses))}
	now := time.Now()
	for _, status := range openDSRStatuses {
		ds, err := a.Store.ListDSRs(ctx, store.DSRFilter{Status: status})
		if err != nil {
			return metrics.DSRCounts{}, err
		}
		c.OpenByStatus[status] = len(ds)
		for _, d := range ds {
			if now.After(d.Deadline) {
				c.Overdue++
			}
		}
	}
	return c, nil
}

// dsrService runs data-subject requests for the API and the CLI.
type dsrService struct{ a *App }

// DSRService returns the data-subject request service.
func (a *App) DSRService() edge.DSRService { return dsrService{a} }

var knownProviders = map[string]bool{"x": true, "messenger": true, "instagram": true, "whatsapp": true, "livechat": true, "generic": true}

// validate checks a request and returns the normalised identifiers.
func (s dsrService) validate(req edge.DSRRequest) (activities.SubjectIdentifiers, error) {
	var ids activities.SubjectIdentifiers
	if req.Type != store.DSRAccess && req.Type != store.DSRErasure {
		return ids, fmt.Errorf(`%w: type must be "access" or "erasure"`, edge.ErrInvalid)
	}
	if e := strings.TrimSpace(req.Identifiers.Email); e != "" {
		if _, err := mail.ParseAddress(e); err != nil {
			return ids, fmt.Errorf("%w: identifiers.email is not an email address", edge.ErrInvalid)
		}
		ids.Email = strings.ToLower(e)
	}
	if p := strings.TrimSpace(req.Identifiers.Phone); p != "" {
		ids.Phone = identity.NormalisePhone(p, s.a.Cfg.Identity.DefaultRegion)
		if ids.Phone == "" {
			return ids, fmt.Errorf("%w: identifiers.phone is not a valid phone number", edge.ErrInvalid)
		}
	}
	for i, h := range req.Identifiers.Handles {
		if !knownProviders[h.Provider] || h.ID == "" {
			return ids, fmt.Errorf("%w: identifiers.handles[%d] needs a provider (x, messenger, instagram, whatsapp) and an id", edge.ErrInvalid, i)
		}
		ids.Handles = append(ids.Handles, activities.SubjectHandle{Provider: h.Provider, ID: h.ID})
	}
	if ids.Email == "" && ids.Phone == "" && len(ids.Handles) == 0 {
		return ids, fmt.Errorf("%w: give at least one identifier: email, phone or a handle", edge.ErrInvalid)
	}
	return ids, nil
}

// subjectHash is the keyed hash that names the subject in the DSR record.
func (s dsrService) subjectHash(ids activities.SubjectIdentifiers) string {
	switch {
	case ids.Email != "":
		return s.a.Hasher.Hash(store.KindEmail, ids.Email)
	case ids.Phone != "":
		return s.a.Hasher.Hash(store.KindPhone, ids.Phone)
	default:
		return s.a.Hasher.Hash(store.KindHandle, ids.Handles[0].Provider+":"+ids.Handles[0].ID)
	}
}

// Open records the request and starts its workflow.
func (s dsrService) Open(ctx context.Context, req edge.DSRRequest, actor string) (string, time.Time, error) {
	ids, err := s.validate(req)
	if err != nil {
		return "", time.Time{}, err
	}
	received := time.Now().UTC()
	if req.ReceivedAt != nil {
		if req.ReceivedAt.After(received.Add(time.Minute)) {
			return "", time.Time{}, fmt.Errorf("%w: received_at is in the future", edge.ErrInvalid)
		}
		received = req.ReceivedAt.UTC()
	}
	id := "dsr-" + uuid.NewString()
	deadline := workflows.Deadline(received)
	if _, err := s.a.Store.CreateDSR(ctx, store.DSR{
		ID: id, Type: req.Type, Status: workflows.StatusReceived, SubjectHash: s.subjectHash(ids),
		ReceivedAt: received, Deadline: deadline, VerifiedBy: actor, VerificationMethod: req.Verification,
	}); err != nil {
		return "", time.Time{}, err
	}
	requireApproval := true
	if s.a.Cfg.DSR.RequireApproval != nil {
		requireApproval = *s.a.Cfg.DSR.RequireApproval
	}
	wctx := privacy.WithKeyID(ctx, id)
	_, err = s.a.Client.ExecuteWorkflow(wctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.a.Cfg.Temporal.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(ingest.KindKey.ValueSet("dsr")),
	}, workflows.DSR, workflows.DSRInput{
		ID: id, Type: req.Type, ReceivedAt: received, Identifiers: ids,
		RequireApproval: requireApproval && req.Type == store.DSRErasure, Verification: req.Verification,
	})
	if err != nil {
		return "", time.Time{}, err
	}
	s.a.Metrics.DSROpened.WithLabelValues(req.Type).Inc()
	return id, deadline, nil
}

// DSRView is a request as the API shows it: no personal data.
type DSRView struct {
	ID                 string                `json:"id"`
	Type               string                `json:"type"`
	Status             string                `json:"status"`
	ReceivedAt         time.Time             `json:"received_at"`
	Deadline           time.Time             `json:"deadline"`
	Extended           bool                  `json:"extended"`
	ExtensionReason    string                `json:"extension_reason,omitempty"`
	VerifiedBy         string                `json:"verified_by,omitempty"`
	VerificationMethod string                `json:"verification_method,omitempty"`
	ApprovedBy         string                `json:"approved_by,omitempty"`
	ApprovedAt         *time.Time            `json:"approved_at,omitempty"`
	Overdue            bool                  `json:"overdue"`
	Escalation         string                `json:"escalation,omitempty"`
	Footprint          *activities.Footprint `json:"footprint,omitempty"`
	Ledger             []store.LedgerEntry   `json:"ledger"`
}

// Status returns the request with its ledger.
func (s dsrService) Status(ctx context.Context, id string) (any, error) {
	return s.view(ctx, id)
}

func (s dsrService) view(ctx context.Context, id string) (DSRView, error) {
	d, err := s.a.Store.GetDSR(ctx, id)
	if err != nil {
		return DSRView{}, err
	}
	ledger, err := s.a.Store.LedgerByDSR(ctx, id)
	if err != nil {
		return DSRView{}, err
	}
	v := DSRView{
		ID: d.ID, Type: d.Type, Status: d.Status, ReceivedAt: d.ReceivedAt, Deadline: d.Deadline,
		Extended: d.Extended, ExtensionReason: d.ExtensionReason, VerifiedBy: d.VerifiedBy,
		VerificationMethod: d.VerificationMethod, ApprovedBy: d.ApprovedBy, ApprovedAt: d.ApprovedAt,
		Overdue: d.Status != workflows.StatusCompleted && time.Now().After(d.Deadline), Ledger: ledger,
	}
	if d.Status != workflows.StatusCompleted {
		if q, err := s.a.Client.QueryWorkflow(privacy.WithKeyID(ctx, id), id, "", workflows.DSRStatusQuery); err == nil {
			var st workflows.DSRStatus
			if q.Get(&st) == nil {
				v.Escalation = st.Escalation
				v.Footprint = &st.Footprint
			}
		}
	}
	return v, nil
}

// Approve approves an erasure.
func (s dsrService) Approve(ctx context.Context, id, actor string) error {
	d, err := s.a.Store.GetDSR(ctx, id)
	if err != nil {
		return err
	}
	if d.Type != store.DSRErasure {
		return fmt.Errorf("%w: only erasure requests need approval", edge.ErrInvalid)
	}
	if d.ApprovedBy != "" {
		return fmt.Errorf("%w: already approved", edge.ErrConflict)
	}
	return s.signal(ctx, id, workflows.DSRApproveSignal, workflows.ApproveArg{Actor: actor})
}

// Retry retries an escalated step.
func (s dsrService) Retry(ctx context.Context, id string) error {
	return s.signal(ctx, id, workflows.DSRRetrySignal, nil)
}

func (s dsrService) signal(ctx context.Context, id, name string, arg any) error {
	err := s.a.Client.SignalWorkflow(privacy.WithKeyID(ctx, id), id, "", name, arg)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: the request is no longer running", edge.ErrConflict)
	}
	return err
}

// Extend extends the deadline by two months, with a reason.
func (s dsrService) Extend(ctx context.Context, id, reason, actor string) (time.Time, error) {
	if strings.TrimSpace(reason) == "" {
		return time.Time{}, fmt.Errorf("%w: an extension needs a reason", edge.ErrInvalid)
	}
	if _, err := s.a.Store.GetDSR(ctx, id); err != nil {
		return time.Time{}, err
	}
	h, err := s.a.Client.UpdateWorkflow(privacy.WithKeyID(ctx, id), client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: workflows.DSRExtendUpdate, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.ExtendArg{Reason: reason, Actor: actor}},
	})
	if err != nil {
		return time.Time{}, err
	}
	var deadline time.Time
	if err := h.Get(ctx, &deadline); err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			return time.Time{}, fmt.Errorf("%w: %s", edge.ErrConflict, app.Message())
		}
		return time.Time{}, err
	}
	_ = s.a.Store.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: "dsr.extended", Target: id, Outcome: deadline.Format(time.RFC3339)})
	return deadline, nil
}

// Report returns the access export (for access requests) or the evidence
// report (for erasure), as JSON or HTML.
func (s dsrService) Report(ctx context.Context, id, format string) (string, []byte, error) {
	v, err := s.view(ctx, id)
	if err != nil {
		return "", nil, err
	}
	var doc any
	if v.Type == store.DSRAccess {
		if v.Status != workflows.StatusCompleted {
			return "", nil, fmt.Errorf("%w: the access export is not ready yet (status %s)", edge.ErrConflict, v.Status)
		}
		d, err := s.a.Store.GetDSR(ctx, id)
		if err != nil {
			return "", nil, err
		}
		var sealed activities.SealedReport
		if err := json.Unmarshal(d.ReportJSON, &sealed); err != nil {
			return "", nil, err
		}
		raw, err := s.a.Keyring.Open(ctx, sealed.KeyID, sealed.Sealed)
		if errors.Is(err, privacy.ErrErased) {
			return "", nil, fmt.Errorf("%w: a later erasure request for the same subject erased this access export; the request's status and ledger remain", edge.ErrGone)
		}
		if err != nil {
			return "", nil, err
		}
		var export activities.AccessExport
		if err := json.Unmarshal(raw, &export); err != nil {
			return "", nil, err
		}
		doc = AccessReport{Request: v, Export: export}
	} else {
		ns := notifications(v)
		lines := make([]string, 0, len(ns))
		for _, n := range ns {
			lines = append(lines, n.Line())
		}
		if err := s.recordNotifications(ctx, id, ns); err != nil {
			return "", nil, err
		}
		doc = EvidenceReport{Request: v, Notifications: lines, Recipients: ns}
	}
	if format == "html" {
		b, err := renderReportHTML(doc, time.Now(), s.a.Cfg.DSR.ControllerContact)
		if err != nil {
			return "", nil, err
		}
		return "text/html; charset=utf-8", b, nil
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	return "application/json", out, err
}

// AccessReport is the access export with its request.
type AccessReport struct {
	Request DSRView                 `json:"request"`
	Export  activities.AccessExport `json:"export"`
	// Notifications is empty for access requests.
	Notifications []string `json:"notifications,omitempty"`
}

// EvidenceReport is the erasure's evidence: per system what was found,
// what was done, when and under what policy, and the Art. 19
// notifications.
type EvidenceReport struct {
	Request DSRView `json:"request"`
	// Notifications says, one line per recipient, what the controller
	// tells that recipient under Art. 19; Recipients has the same
	// content field by field.
	Notifications []string       `json:"notifications"`
	Recipients    []Notification `json:"recipients"`
	// Export is empty for erasure requests.
	Export *activities.AccessExport `json:"export,omitempty"`
}

// NotificationStatus is the status of every Art. 19 notification:
// webcaresync lists them, the controller sends them. Nothing is e-mailed.
const NotificationStatus = "recorded for the controller to send"

// Notification is one Art. 19 notification: a recipient the subject's
// data was disclosed to, and what was done with it there.
type Notification struct {
	// Recipient names the system as the ledger does: salesforce, x,
	// whatsapp, messenger, instagram.
	Recipient string `json:"recipient"`
	// Name is the recipient in words.
	Name string `json:"name"`
	// Outcome sums Done up: erased, anonymised, retained, not_possible or
	// failed (the least complete action wins), or pending while nothing
	// was done there yet.
	Outcome string               `json:"outcome"`
	Done    []NotificationAction `json:"done"`
	Status  string               `json:"status"`
}

// NotificationAction is one thing done at a recipient: a ledger row.
type NotificationAction struct {
	Action string `json:"action"`
	// What names what was acted on, with the reason when retained, what
	// was done instead when not possible, or the error when failed.
	What   string    `json:"what"`
	Count  int       `json:"count"`
	Policy string    `json:"policy,omitempty"`
	At     time.Time `json:"at"`
}

// ownSystems hold the data for webcaresync itself; nothing was disclosed
// to them, so they get no Art. 19 notification.
var ownSystems = map[string]bool{activities.SystemStore: true, activities.SystemTemporal: true, activities.SystemKeys: true}

// recipientNames name the recipients in words.
var recipientNames = map[string]string{
	activities.SystemCRM:  "the CRM (Salesforce org)",
	"x":                   "X",
	"whatsapp":            "WhatsApp (Meta)",
	"messenger":           "Messenger (Meta)",
	"instagram":           "Instagram (Meta)",
	activities.SystemMeta: "Meta",
	"livechat":            "the live chat provider",
	"generic":             "the generic channel's platform",
}

// outcomeRank orders actions from the most to the least complete; a
// recipient's outcome is its least complete action.
var outcomeRank = map[string]int{store.LedgerErased: 1, store.LedgerAnonymised: 2, store.LedgerRetained: 3, store.LedgerNotPossible: 4, store.LedgerFailed: 5}

// recipientOf returns the Art. 19 recipient of a ledger row, or "" for
// webcaresync's own systems. Meta's rows name the platform in their
// detail ("whatsapp posts ..."), so each Meta platform is its own
// recipient.
func recipientOf(e store.LedgerEntry) string {
	if ownSystems[e.System] {
		return ""
	}
	if e.System == activities.SystemMeta {
		if p, _, _ := strings.Cut(e.Detail, " "); knownProviders[p] {
			return p
		}
	}
	return e.System
}

// notifications lists the Art. 19 notifications from the ledger: every
// recipient the data was disclosed to (the CRM org and each platform the
// data was found on or acted on, not webcaresync's own store, Temporal or
// keys) and what was done there, the CRM first and then by name.
func notifications(v DSRView) []Notification {
	byRecipient := map[string]*Notification{}
	for _, e := range v.Ledger {
		r := recipientOf(e)
		if r == "" {
			continue
		}
		n := byRecipient[r]
		if n == nil {
			name := recipientNames[r]
			if name == "" {
				name = r
			}
			n = &Notification{Recipient: r, Name: name, Outcome: "pending", Done: []NotificationAction{}, Status: NotificationStatus}
			byRecipient[r] = n
		}
		if e.Action == store.LedgerFound {
			continue
		}
		n.Done = append(n.Done, NotificationAction{Action: e.Action, What: e.Detail, Count: e.Count, Policy: e.Policy, At: e.At})
		if outcomeRank[e.Action] > outcomeRank[n.Outcome] {
			n.Outcome = e.Action
		}
	}
	out := make([]Notification, 0, len(byRecipient))
	for _, n := range byRecipient {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool {
		ci, cj := out[i].Recipient == activities.SystemCRM, out[j].Recipient == activities.SystemCRM
		if ci != cj {
			return ci
		}
		return out[i].Recipient < out[j].Recipient
	})
	return out
}

// Line says a notification in one sentence, for the report's
// notifications list.
func (n Notification) Line() string {
	if len(n.Done) == 0 {
		return fmt.Sprintf("%s: data was found there and nothing has been done yet; %s (GDPR Art. 19)", n.Name, NotificationStatus)
	}
	parts := make([]string, 0, len(n.Done))
	for _, d := range n.Done {
		p := actionWords[d.Action]
		if p == "" {
			p = d.Action
		}
		if d.Count > 0 {
			p += fmt.Sprintf(" %d", d.Count)
		}
		if d.What != "" {
			p += " " + d.What
		}
		if d.Policy != "" {
			p += " (" + d.Policy + ")"
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("%s: %s; %s (GDPR Art. 19)", n.Name, strings.Join(parts, "; "), NotificationStatus)
}

// actionWords say the ledger's actions in words.
var actionWords = map[string]string{
	store.LedgerErased:      "erased",
	store.LedgerAnonymised:  "anonymised",
	store.LedgerRetained:    "retained",
	store.LedgerNotPossible: "not possible through the API, instead:",
	store.LedgerFailed:      "failed",
}

// recordNotifications writes to the audit log that the notification list
// was produced, naming the recipients (system names, no personal data).
func (s dsrService) recordNotifications(ctx context.Context, id string, ns []Notification) error {
	names := make([]string, 0, len(ns))
	for _, n := range ns {
		names = append(names, n.Recipient)
	}
	outcome := fmt.Sprintf("%d recipients (%s), %s", len(ns), strings.Join(names, ", "), NotificationStatus)
	if err := s.a.Store.AppendAudit(ctx, store.AuditEntry{Actor: "webcaresync", Action: "dsr.art19.listed", Target: id, Outcome: outcome}); err != nil {
		return fmt.Errorf("cannot record the Art. 19 notification list in the audit log; check the store and ask again: %w", err)
	}
	return nil
}

// reportPage is what the HTML report shows: every value a string with a
// label, so that the template prints no Go value as such, and
// html/template escapes all of it.
type reportPage struct {
	Title      string
	Intro      string
	RequestID  string
	Generated  string
	Collected  string
	Controller string
	Request    []reportField
	Named      []reportField
	Systems    []reportSystem
	Recipients []reportRecipient
	Ledger     reportSection
}

// reportSystem is one system's data.
type reportSystem struct {
	Name     string
	Intro    string
	Sections []reportSection
}

// reportSection is a titled table, a list of records, or labelled fields.
type reportSection struct {
	Title   string
	Note    string
	Columns []string
	Rows    [][]string
	Records []reportRecord
	Fields  []reportField
}

// reportRecord is one record with its labelled fields.
type reportRecord struct {
	Title  string
	Fields []reportField
}

// reportField is one labelled value.
type reportField struct{ Label, Value string }

// reportRecipient is an Art. 19 notification as the HTML shows it.
type reportRecipient struct {
	Name, Outcome, Status string
	Done                  reportSection
}

// reportTime is how the HTML report writes times: the same in Dutch and
// English, in UTC.
const reportTime = "2006-01-02 15:04 UTC"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(reportTime)
}

// renderReportHTML renders an AccessReport or EvidenceReport as a
// document a data subject can read; controller, when set, says how to
// reach the controller.
func renderReportHTML(doc any, now time.Time, controller string) ([]byte, error) {
	var p reportPage
	switch d := doc.(type) {
	case AccessReport:
		p = reportPage{
			Title:     "Your personal data: access request " + d.Request.ID,
			Intro:     "This document answers a request for access to personal data (GDPR Art. 15). It lists everything held about you, grouped by the system that holds it: the CRM, the social platforms, webcaresync's own store and its workflow engine. Dates and times are in UTC.",
			RequestID: d.Request.ID, Generated: fmtTime(now), Collected: fmtTime(d.Export.GeneratedAt),
			Request: requestFields(d.Request), Named: namedFields(d.Export.Subject),
		}
		systems, err := exportSystems(d.Export.Systems)
		if err != nil {
			return nil, err
		}
		p.Systems = systems
		p.Ledger = ledgerSection(d.Request.Ledger)
	case EvidenceReport:
		p = reportPage{
			Title:     "Erasure request " + d.Request.ID + ": evidence",
			Intro:     "This document is the evidence for a request to erase personal data (GDPR Art. 17): what was found in each system, what was done there, when and under which policy, and the notifications to each recipient of the data (GDPR Art. 19). The notifications are recorded for the controller to send; webcaresync does not send them.",
			RequestID: d.Request.ID, Generated: fmtTime(now), Request: requestFields(d.Request),
		}
		for _, n := range d.Recipients {
			p.Recipients = append(p.Recipients, recipientView(n))
		}
		p.Ledger = ledgerSection(d.Request.Ledger)
	default:
		return nil, fmt.Errorf("cannot render a %T as HTML", doc)
	}
	p.Controller = controller
	var b bytes.Buffer
	if err := reportHTML.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// requestTypes and requestStatuses say a request's type and status in
// words.
var (
	requestTypes    = map[string]string{store.DSRAccess: "access (GDPR Art. 15)", store.DSRErasure: "erasure (GDPR Art. 17)"}
	requestStatuses = map[string]string{workflows.StatusAwaitingApproval: "awaiting approval", workflows.StatusEscalated: "needs attention (escalated)"}
)

func requestFields(v DSRView) []reportField {
	typ, status := requestTypes[v.Type], requestStatuses[v.Status]
	if typ == "" {
		typ = v.Type
	}
	if status == "" {
		status = v.Status
	}
	deadline := fmtTime(v.Deadline)
	if v.Extended {
		deadline += " (extended: " + v.ExtensionReason + ")"
	}
	fs := []reportField{{"Request", v.ID}, {"Type", typ}, {"Status", status}, {"Received", fmtTime(v.ReceivedAt)}, {"Deadline", deadline},
		{"Identity verified by", strings.TrimSpace(v.VerifiedBy + " " + v.VerificationMethod)}, {"Approved by", v.ApprovedBy}}
	if v.ApprovedAt != nil {
		fs = append(fs, reportField{"Approved", fmtTime(*v.ApprovedAt)})
	}
	return nonEmpty(fs)
}

func namedFields(s activities.SubjectIdentifiers) []reportField {
	fs := []reportField{{"E-mail address", s.Email}, {"Phone number", s.Phone}}
	for _, h := range s.Handles {
		fs = append(fs, reportField{providerName(h.Provider) + " account", h.ID})
	}
	return nonEmpty(fs)
}

func nonEmpty(fs []reportField) []reportField {
	out := fs[:0]
	for _, f := range fs {
		if strings.TrimSpace(f.Value) != "" {
			out = append(out, f)
		}
	}
	return out
}

func ledgerSection(ledger []store.LedgerEntry) reportSection {
	sec := reportSection{Title: "What was done, step by step", Columns: []string{"When", "System", "Action", "Count", "What", "Policy"}}
	for _, e := range ledger {
		sec.Rows = append(sec.Rows, []string{fmtTime(e.At), systemName(e.System), actionName(e.Action), strconv.Itoa(e.Count), e.Detail, e.Policy})
	}
	return sec
}

func recipientView(n Notification) reportRecipient {
	r := reportRecipient{Name: n.Name, Outcome: actionName(n.Outcome), Status: n.Status,
		Done: reportSection{Columns: []string{"When", "Action", "Count", "What", "Policy"}}}
	for _, d := range n.Done {
		r.Done.Rows = append(r.Done.Rows, []string{fmtTime(d.At), actionName(d.Action), strconv.Itoa(d.Count), d.What, d.Policy})
	}
	return r
}

func actionName(a string) string {
	switch a {
	case store.LedgerNotPossible:
		return "not possible through the API"
	case "pending":
		return "nothing done yet"
	}
	return a
}

// systemNames name the systems of the access export and the ledger.
var systemNames = map[string]string{
	activities.SystemCRM:      "CRM (Salesforce)",
	activities.SystemStore:    "webcaresync's own store",
	activities.SystemTemporal: "Workflow engine (Temporal)",
	activities.SystemKeys:     "Encryption keys",
	"platforms":               "Social platforms",
}

func systemName(s string) string {
	if n := systemNames[s]; n != "" {
		return n
	}
	return providerName(s)
}

// providerNames name the channels.
var providerNames = map[string]string{"x": "X", "whatsapp": "WhatsApp", "messenger": "Messenger", "instagram": "Instagram", "livechat": "Live chat", "generic": "Other channel", "meta": "Meta"}

func providerName(p string) string {
	if n := providerNames[strings.ToLower(p)]; n != "" {
		return n
	}
	return p
}

// systemOrder is the order of the systems in the access report; others
// follow by name.
var systemOrder = []string{activities.SystemCRM, "platforms", activities.SystemStore, activities.SystemTemporal}

// exportSystems turns the export's systems into labelled sections. The
// export reaches the report as decoded JSON, so each system is read
// through JSON again, whatever Go type holds it.
func exportSystems(systems map[string]any) ([]reportSystem, error) {
	names := make([]string, 0, len(systems))
	for n := range systems {
		names = append(names, n)
	}
	rank := func(n string) int {
		if i := slices.Index(systemOrder, n); i >= 0 {
			return i
		}
		return len(systemOrder)
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	var out []reportSystem
	for _, name := range names {
		raw, err := json.Marshal(systems[name])
		if err != nil {
			return nil, err
		}
		var data any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return nil, err
		}
		sys := reportSystem{Name: systemName(name)}
		switch name {
		case activities.SystemCRM:
			sys.Intro = "The records the CRM holds, by kind of record. Records marked as in the recycle bin were deleted but can still be restored there."
			sys.Sections = crmSections(asMap(data))
		case activities.SystemStore:
			sys.Intro = "What webcaresync itself keeps to recognise the same person across channels, and the history of data requests."
			sys.Sections = storeSections(asMap(data))
		case "platforms":
			sys.Intro = "Messages and comments on the social platforms that the brand can act on."
			sys.Sections = platformSections(asMap(data))
		default:
			sys.Sections = genericSections(data)
		}
		out = append(out, sys)
	}
	return out, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// crmObjects are the CRM objects in the order the report shows them, with
// their titles; other objects follow by name.
var crmObjects = []struct{ Object, Title string }{
	{"Contact", "Contact details"},
	{"Individual", "Privacy preferences"},
	{"SocialPersona", "Social profiles"},
	{"Case", "Cases"},
	{"Task", "Tasks"},
}

func crmSections(objects map[string]any) []reportSection {
	var out []reportSection
	if posts := asList(objects["SocialPost"]); len(posts) > 0 {
		out = append(out, messageSection(posts))
	}
	seen := map[string]bool{"SocialPost": true}
	add := func(object, title string) {
		seen[object] = true
		recs := asList(objects[object])
		if len(recs) == 0 {
			return
		}
		sec := reportSection{Title: title + " (" + object + ")"}
		for _, r := range recs {
			m := asMap(r)
			sec.Records = append(sec.Records, reportRecord{Title: recordTitle(m), Fields: recordFields(m, nil)})
		}
		out = append(out, sec)
	}
	for _, o := range crmObjects {
		add(o.Object, o.Title)
	}
	rest := make([]string, 0, len(objects))
	for o := range objects {
		if !seen[o] {
			rest = append(rest, o)
		}
	}
	sort.Strings(rest)
	for _, o := range rest {
		add(o, humanise(o))
	}
	return out
}

// messageFields are the SocialPost fields the messages table has columns
// for; the others go to its details column.
var messageFields = []string{"Posted", "Provider", "MessageType", "IsOutbound", "Content", "Headline", "attributes"}

// messageSection lists the messages, oldest first: date, channel,
// direction and text, and the other fields as details.
func messageSection(posts []any) reportSection {
	recs := make([]map[string]any, 0, len(posts))
	for _, p := range posts {
		recs = append(recs, asMap(p))
	}
	when := func(m map[string]any) string {
		if s, ok := m["Posted"].(string); ok && s != "" {
			return s
		}
		s, _ := m["CreatedDate"].(string)
		return s
	}
	sort.SliceStable(recs, func(i, j int) bool { return when(recs[i]) < when(recs[j]) })
	sec := reportSection{Title: "Messages (SocialPost)", Columns: []string{"Date", "Channel", "Direction", "Text", "Details"}}
	for _, m := range recs {
		channel := providerName(fmtValue(m["Provider"]))
		if t := fmtValue(m["MessageType"]); t != "" {
			channel += " (" + strings.ToLower(t) + ")"
		}
		direction := "from you"
		if m["IsOutbound"] == true {
			direction = "from the brand"
		}
		text := fmtValue(m["Content"])
		if text == "" {
			text = fmtValue(m["Headline"])
		}
		var details []string
		for _, f := range recordFields(m, messageFields) {
			details = append(details, f.Label+": "+f.Value)
		}
		sec.Rows = append(sec.Rows, []string{fmtValue(when(m)), channel, direction, text, strings.Join(details, "; ")})
	}
	return sec
}

// recordTitle names a CRM record by its name, number or subject.
func recordTitle(m map[string]any) string {
	for _, k := range []string{"Name", "CaseNumber", "Subject", "Id"} {
		if v := fmtValue(m[k]); v != "" {
			return v
		}
	}
	return "Record"
}

// recordFields returns a record's fields with labels, in a stable order:
// the labelled fields first, in fieldLabels' order, then the others by
// name. Empty fields and those in skip are left out.
func recordFields(m map[string]any, skip []string) []reportField {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "attributes" && !slices.Contains(skip, k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := labelRank(keys[i]), labelRank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	var out []reportField
	for _, k := range keys {
		if v := fmtValue(m[k]); v != "" {
			out = append(out, reportField{label(k), v})
		}
	}
	return out
}

// fieldLabels label the fields whose names do not read well split up, in
// the order a record shows them.
var fieldLabels = []struct{ Field, Label string }{
	{"Name", "Name"}, {"Salutation", "Salutation"}, {"FirstName", "First name"}, {"LastName", "Last name"},
	{"Email", "E-mail address"}, {"SuppliedEmail", "E-mail address given"}, {"SuppliedName", "Name given"}, {"SuppliedPhone", "Phone number given"},
	{"Phone", "Phone number"}, {"MobilePhone", "Mobile phone number"}, {"HomePhone", "Home phone number"}, {"OtherPhone", "Other phone number"},
	{"MailingStreet", "Street"}, {"MailingPostalCode", "Postcode"}, {"MailingCity", "City"}, {"MailingState", "State or province"}, {"MailingCountry", "Country"},
	{"Birthdate", "Date of birth"}, {"BirthDate", "Date of birth"}, {"Provider", "Channel"}, {"ExternalId", "Account ID on the platform"},
	{"RealName", "Name on the platform"}, {"ProfileUrl", "Profile link"}, {"Handle", "Handle"}, {"ExternalPostId", "Message ID on the platform"}, {"PostUrl", "Message link"},
	{"CaseNumber", "Case number"}, {"Subject", "Subject"}, {"Description", "Description"}, {"Status", "Status"},
	{"HasOptedOutOfEmail", "No e-mail wanted"}, {"DoNotCall", "No calls wanted"}, {"ShouldForget", "Asked to be forgotten"},
	{"HasOptedOutTracking", "No tracking wanted"}, {"HasOptedOutProfiling", "No profiling wanted"}, {"HasOptedOutProcessing", "No processing wanted"}, {"HasOptedOutSolicit", "No solicitation wanted"},
	{"IsDeleted", "In the recycle bin"}, {"IsClosed", "Closed"}, {"ClosedDate", "Closed on"}, {"ActivityDate", "Due date"},
	{"Id", "Record ID"}, {"AccountId", "Account record"}, {"IndividualId", "Privacy preferences record"}, {"ContactId", "Contact record"},
	{"PersonaId", "Social profile record"}, {"ParentId", "Parent record"}, {"WhoId", "Person record"}, {"WhatId", "Related record"}, {"ReplyToId", "In reply to record"},
	{"CreatedDate", "Created"}, {"LastModifiedDate", "Last changed"},
}

func labelRank(field string) int {
	for i, l := range fieldLabels {
		if l.Field == field {
			return i
		}
	}
	return len(fieldLabels)
}

func label(field string) string {
	for _, l := range fieldLabels {
		if l.Field == field {
			return l.Label
		}
	}
	return humanise(field)
}

// humanise turns a field name (FirstName, Webcare_Thread__c, rule_name)
// into words: "First name", "Webcare thread", "Rule name".
func humanise(name string) string {
	name = strings.TrimSuffix(name, "__c")
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case r == '_' || r == '-':
			b.WriteRune(' ')
			continue
		case i > 0 && unicode.IsUpper(r) && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])):
			b.WriteRune(' ')
		}
		b.WriteRune(r)
	}
	words := strings.Fields(b.String())
	for i, w := range words {
		if i > 0 && w != strings.ToUpper(w) {
			words[i] = strings.ToLower(w)
		} else if i == 0 {
			rs := []rune(w)
			rs[0] = unicode.ToUpper(rs[0])
			words[i] = string(rs)
		}
	}
	return strings.Join(words, " ")
}

// fmtValue writes a decoded JSON value in words: times in UTC, yes and
// no, numbers as written, lists and objects as labelled text. It never
// prints a Go value as such.
func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if t, ok := parseTime(x); ok {
			return fmtTime(t)
		}
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if s := fmtValue(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		fs := recordFields(x, nil)
		parts := make([]string, 0, len(fs))
		for _, f := range fs {
			parts = append(parts, f.Label+": "+f.Value)
		}
		return strings.Join(parts, ", ")
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var decoded any
	if json.Unmarshal(raw, &decoded) != nil {
		return ""
	}
	if _, ok := decoded.(map[string]any); ok {
		return fmtValue(decoded)
	}
	if _, ok := decoded.([]any); ok {
		return fmtValue(decoded)
	}
	return strings.Trim(string(raw), `"`)
}

// parseTime reads the times of the export: RFC 3339 (webcaresync) and
// Salesforce's 2006-01-02T15:04:05.000+0000. Dates without a time stay as
// they are.
func parseTime(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[10] != 'T' {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// identifierKinds title the identifier tables by kind.
var identifierKinds = map[string]string{
	store.KindEmail: "E-mail addresses", store.KindPhone: "Phone numbers", store.KindHandle: "Social handles",
	store.KindPostcode: "Postcodes", store.KindName: "Names",
}

// storeSections lays out webcaresync's own store: identifiers by kind,
// identity links with their evidence, reviews, conversations and requests.
func storeSections(m map[string]any) []reportSection {
	var out []reportSection
	byKind := map[string][][]string{}
	for _, it := range asList(m["identifiers"]) {
		id := asMap(it)
		kind := fmtValue(id["Kind"])
		byKind[kind] = append(byKind[kind], []string{fmtValue(id["Value"]), fmtValue(id["Source"]), fmtValue(id["At"])})
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		title := identifierKinds[k]
		if title == "" {
			title = humanise(k)
		}
		out = append(out, reportSection{Title: title, Note: "Used to recognise the same person across channels.",
			Columns: []string{"Value", "Learned in conversation", "Recorded"}, Rows: byKind[k]})
	}
	out = appendTable(out, m["links"], "Links between your social accounts and the CRM contact",
		"Each link says why webcaresync decided an account is yours: the matching rule, and the message that showed it (by keyed hash).",
		[]column{{"Channel", "Channel"}, {"CRMContactID", "CRM contact record"}, {"CRMPersonaID", "CRM social profile record"}, {"Rule", "Why (matching rule)"},
			{"EvidenceMessageHash", "Evidence (message, keyed hash)"}, {"ApprovedBy", "Approved by"}, {"CreatedAt", "Linked"}, {"RevokedAt", "Undone"}})
	out = appendTable(out, m["reviews"], "Reviews of possible matches", "",
		[]column{{"CreatedAt", "Opened"}, {"ConversationID", "Conversation"}, {"Status", "Status"}, {"Reason", "Reason"}, {"Rule", "Rule"},
			{"ResolvedAt", "Resolved"}, {"ResolvedBy", "Resolved by"}, {"ResolvedContactID", "Chosen CRM contact record"}})
	var convs [][]string
	for _, c := range asList(m["conversations"]) {
		convs = append(convs, []string{fmtValue(c)})
	}
	if len(convs) > 0 {
		out = append(out, reportSection{Title: "Conversations", Note: "webcaresync's references for your conversations; their messages are listed with the CRM above.", Columns: []string{"Reference"}, Rows: convs})
	}
	out = appendTable(out, m["dsr_history"], "Data requests about you", "",
		[]column{{"ID", "Request"}, {"Type", "Type"}, {"Status", "Status"}, {"ReceivedAt", "Received"}, {"Deadline", "Deadline"},
			{"ExtensionReason", "Extended because"}, {"ApprovedAt", "Approved"}})
	rest := map[string]any{}
	for k, v := range m {
		if !slices.Contains([]string{"identifiers", "links", "reviews", "conversations", "dsr_history"}, k) {
			rest[k] = v
		}
	}
	return append(out, genericSections(rest)...)
}

// column is a table column: the JSON key and its label.
type column struct{ Key, Label string }

// appendTable adds a table of the items' columns, when there are items.
func appendTable(out []reportSection, items any, title, note string, cols []column) []reportSection {
	list := asList(items)
	if len(list) == 0 {
		return out
	}
	sec := reportSection{Title: title, Note: note}
	for _, c := range cols {
		sec.Columns = append(sec.Columns, c.Label)
	}
	for _, it := range list {
		m := asMap(it)
		row := make([]string, 0, len(cols))
		for _, c := range cols {
			row = append(row, fmtValue(m[c.Key]))
		}
		sec.Rows = append(sec.Rows, row)
	}
	return append(out, sec)
}

// platformSections lists, per platform, the items the brand can act on.
func platformSections(m map[string]any) []reportSection {
	providers := make([]string, 0, len(m))
	for p := range m {
		providers = append(providers, p)
	}
	sort.Strings(providers)
	var out []reportSection
	for _, p := range providers {
		sec := reportSection{Title: providerName(p), Columns: []string{"What", "Channel", "Written by", "ID on the platform", "In reply to"}}
		for _, it := range asList(m[p]) {
			item := asMap(it)
			by := "you"
			if item["by_brand"] == true {
				by = "the brand"
			}
			sec.Rows = append(sec.Rows, []string{fmtValue(item["kind"]), fmtValue(item["channel"]), by, fmtValue(item["id"]), fmtValue(item["parent_id"])})
		}
		out = append(out, sec)
	}
	return out
}

// genericSections lays out a system the report has no layout for: an
// object's lists become tables, its other values labelled fields.
func genericSections(data any) []reportSection {
	switch x := data.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []reportSection
		fields := reportSection{}
		for _, k := range keys {
			if l, ok := x[k].([]any); ok {
				if len(l) > 0 {
					out = append(out, listSection(humanise(k), l))
				}
				continue
			}
			if v := fmtValue(x[k]); v != "" {
				fields.Fields = append(fields.Fields, reportField{humanise(k), v})
			}
		}
		if len(fields.Fields) > 0 {
			out = append([]reportSection{fields}, out...)
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		return []reportSection{listSection("", x)}
	}
	if v := fmtValue(data); v != "" {
		return []reportSection{{Fields: []reportField{{"Value", v}}}}
	}
	return nil
}

// listSection is a table of a list: objects by their keys, other values
// in one column.
func listSection(title string, l []any) reportSection {
	keys := map[string]bool{}
	for _, it := range l {
		for k := range asMap(it) {
			keys[k] = true
		}
	}
	if len(keys) == 0 {
		sec := reportSection{Title: title, Columns: []string{"Value"}}
		for _, it := range l {
			sec.Rows = append(sec.Rows, []string{fmtValue(it)})
		}
		return sec
	}
	cols := make([]column, 0, len(keys))
	for k := range keys {
		cols = append(cols, column{k, label(k)})
	}
	sort.Slice(cols, func(i, j int) bool { return cols[i].Key < cols[j].Key })
	return appendTable(nil, l, title, "", cols)[0]
}

var reportHTML = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;line-height:1.4}table{border-collapse:collapse;width:100%;margin-bottom:1em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}th[scope=row]{width:16em}.note{color:#555}header{border-bottom:2px solid #333;margin-bottom:1.5em}</style></head>
<body>
<header><h1>{{.Title}}</h1>
<p>{{.Intro}}</p>
<table><tr><th scope="row">Request</th><td>{{.RequestID}}</td></tr>
<tr><th scope="row">Document generated</th><td>{{.Generated}}</td></tr>
{{with .Collected}}<tr><th scope="row">Data collected</th><td>{{.}}</td></tr>{{end}}
{{with .Controller}}<tr><th scope="row">Questions about this document</th><td>{{.}}</td></tr>{{end}}</table></header>
<h2>The request</h2>
{{template "fields" .Request}}
{{with .Named}}<h2>The request named you by</h2>{{template "fields" .}}{{end}}
{{range .Systems}}<h2>{{.Name}}</h2>{{with .Intro}}<p class="note">{{.}}</p>{{end}}
{{range .Sections}}{{template "section" .}}{{else}}<p>Nothing is held here.</p>{{end}}{{end}}
{{with .Recipients}}<h2>Notifications to recipients (GDPR Art. 19)</h2>
{{range .}}<h3>{{.Name}}: {{.Outcome}}</h3><p class="note">Notification {{.Status}}.</p>{{template "table" .Done}}{{end}}{{end}}
{{with .Ledger}}{{if .Rows}}<h2>{{.Title}}</h2>
{{template "table" .}}{{end}}{{end}}
</body></html>
{{define "fields"}}<table>{{range .}}<tr><th scope="row">{{.Label}}</th><td>{{.Value}}</td></tr>{{end}}</table>{{end}}
{{define "table"}}{{if .Rows}}<table><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}{{end}}
{{define "section"}}{{with .Title}}<h3>{{.}}</h3>{{end}}{{with .Note}}<p class="note">{{.}}</p>{{end}}
{{with .Fields}}{{template "fields" .}}{{end}}
{{template "table" .}}
{{range .Records}}<h4>{{.Title}}</h4>{{template "fields" .Fields}}{{end}}{{end}}
`))
