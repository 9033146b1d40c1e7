package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/mail"
	"sort"
	"strings"
	"time"

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
	a.Metrics.WatchDSRs(a.dsrCounts)
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
		var b bytes.Buffer
		if err := reportHTML.Execute(&b, doc); err != nil {
			return "", nil, err
		}
		return "text/html; charset=utf-8", b.Bytes(), nil
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

var reportHTML = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>webcaresync data-subject request report</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}pre{white-space:pre-wrap;background:#fafafa;padding:1em}</style></head>
<body>
{{with .Request}}{{template "req" .}}{{end}}
{{with .Export}}<h2>Everything held about the data subject</h2>
{{range $sys, $data := .Systems}}<h3>{{$sys}}</h3><pre>{{printf "%+v" $data}}</pre>{{end}}{{end}}
{{with .Notifications}}<h2>Art. 19 notifications</h2><ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
{{define "req"}}<h1>Data-subject request {{.ID}}</h1>
<table><tr><th>Type</th><td>{{.Type}}</td></tr><tr><th>Status</th><td>{{.Status}}</td></tr>
<tr><th>Received</th><td>{{.ReceivedAt}}</td></tr><tr><th>Deadline</th><td>{{.Deadline}}{{if .Extended}} (extended: {{.ExtensionReason}}){{end}}</td></tr>
<tr><th>Verified by</th><td>{{.VerifiedBy}} {{.VerificationMethod}}</td></tr><tr><th>Approved by</th><td>{{.ApprovedBy}}</td></tr></table>
<h2>Ledger</h2><table><tr><th>When</th><th>System</th><th>Action</th><th>Count</th><th>What</th><th>Policy</th></tr>
{{range .Ledger}}<tr><td>{{.At.Format "2006-01-02 15:04:05"}}</td><td>{{.System}}</td><td>{{.Action}}</td><td>{{.Count}}</td><td>{{.Detail}}</td><td>{{.Policy}}</td></tr>{{end}}</table>{{end}}
`))
