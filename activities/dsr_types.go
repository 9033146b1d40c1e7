package activities

import (
	"fmt"
	"time"
)

// Systems a data-subject request reaches. They name ledger rows.
// StatusCompleted is the status of a request that has finished; the DSR
// workflow (workflows.StatusCompleted) and its activities share it.
const StatusCompleted = "completed"

const (
	SystemCRM      = "salesforce"
	SystemStore    = "webcaresync-store"
	SystemTemporal = "temporal"
	SystemKeys     = "encryption-keys"
	SystemX        = "x"
	SystemMeta     = "meta"
)

// SubjectIdentifiers name the data subject of a request. They are PII and
// travel only inside encrypted payloads.
type SubjectIdentifiers struct {
	Email   string          `json:"email,omitempty"`
	Phone   string          `json:"phone,omitempty"`
	Handles []SubjectHandle `json:"handles,omitempty"`
}

// SubjectHandle is a social handle: provider (x, messenger, instagram,
// whatsapp) and the platform user id.
type SubjectHandle struct {
	Provider string `json:"provider"`
	ID       string `json:"id"`
}

// DiscoverInput asks for a subject's footprint across every system.
type DiscoverInput struct {
	DSRID       string             `json:"dsr_id"`
	Identifiers SubjectIdentifiers `json:"identifiers"`
	// Pass distinguishes the first discovery from the one just before
	// deleting ("initial", "pre-erasure"); it names ledger rows.
	Pass string `json:"pass"`
	// ContactIDs and ConversationIDs are what an earlier pass of the
	// erasure found, for the discovery after it: the store no longer
	// leads to them, but a message that arrived while the erasure ran
	// may have added a post to an anonymised Contact or a new run to a
	// conversation.
	ContactIDs      []string `json:"contact_ids,omitempty"`
	ConversationIDs []string `json:"conversation_ids,omitempty"`
	// LiveOnly asks the CRM for live records only: the discovery after the
	// erasure must not count what the erasure deleted and the CRM still
	// lists for a while (Salesforce's queryAll, for about a day after a
	// purge).
	LiveOnly bool `json:"live_only,omitempty"`
}

// Footprint is what is held about a subject, by system, as record IDs and
// counts: no personal data, so it can be shown before anything is deleted.
type Footprint struct {
	// SubjectIDs are webcaresync's subjects (identity graph).
	SubjectIDs []string `json:"subject_ids,omitempty"`
	// ConversationIDs are the subject's conversations (and workflow IDs).
	ConversationIDs []string `json:"conversation_ids,omitempty"`
	// CRM lists the CRM records by object: Contact, SocialPersona,
	// SocialPost, Case, Individual, Task.
	CRM map[string][]string `json:"crm,omitempty"`
	// Platforms lists what each social platform holds that the brand can
	// act on: its own replies and the customer's public comments.
	Platforms map[string][]PlatformItem `json:"platforms,omitempty"`
	// Store counts the rows of webcaresync's store, by table.
	Store map[string]int `json:"store,omitempty"`
	// Executions counts the subject's Temporal workflow executions.
	Executions int `json:"executions"`
	// IdentifierHashes are the keyed hashes of the subject's identifiers,
	// for the suppression list.
	IdentifierHashes []string `json:"identifier_hashes,omitempty"`
}

// PlatformItem is one item on a social platform: the platform's id, what
// it is (reply, comment, dm), and whether the brand wrote it.
type PlatformItem struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Channel  string `json:"channel"`
	ByBrand  bool   `json:"by_brand"`
	BrandID  string `json:"brand_id,omitempty"`
	ParentID string `json:"parent_id,omitempty"`
}

// Empty reports whether nothing was found.
func (f Footprint) Empty() bool {
	n := len(f.SubjectIDs) + len(f.ConversationIDs) + f.Executions
	for _, ids := range f.CRM {
		n += len(ids)
	}
	for _, items := range f.Platforms {
		n += len(items)
	}
	return n == 0
}

// Outcome is what one system did with a subject's data: one ledger row.
type Outcome struct {
	System string `json:"system"`
	// Action is found, erased, anonymised, retained, not_possible or
	// failed (the store's Ledger* constants).
	Action string `json:"action"`
	// Object names what was acted on, such as "SocialPost".
	Object string `json:"object,omitempty"`
	Count  int    `json:"count"`
	// Detail says what was done instead when not possible, the legal basis
	// when retained, or the reason when failed. No personal data.
	Detail string `json:"detail,omitempty"`
	// Policy names the rule that applied, such as the mapping's erasure
	// rule or "GDPR Art. 17(3)(b) statutory retention".
	Policy string    `json:"policy,omitempty"`
	At     time.Time `json:"at"`
}

// EraseInput asks one system to erase the footprint.
type EraseInput struct {
	DSRID     string             `json:"dsr_id"`
	Footprint Footprint          `json:"footprint"`
	Subject   SubjectIdentifiers `json:"subject"`
	// Sweep is 0 for the erasure itself and N for the N-th sweep, which
	// erases what a discovery after the erasure still found (a message
	// that arrived while it ran). It names the sweep's ledger rows, so
	// that they do not collide with the first pass's.
	Sweep int `json:"sweep,omitempty"`
}

// ledgerStep names a step's ledger rows: the step itself for the
// erasure, with the sweep number for a sweep.
func (in EraseInput) ledgerStep(step string) string {
	if in.Sweep == 0 {
		return step
	}
	return fmt.Sprintf("%s-sweep-%d", step, in.Sweep)
}

// ExportInput asks for the access export of a footprint.
type ExportInput struct {
	DSRID     string             `json:"dsr_id"`
	Footprint Footprint          `json:"footprint"`
	Subject   SubjectIdentifiers `json:"subject"`
}

// StatusInput records a DSR's status change in the store.
type StatusInput struct {
	DSRID  string `json:"dsr_id"`
	Status string `json:"status"`
	// Deadline, when set, replaces the stored deadline (extension).
	Deadline *time.Time `json:"deadline,omitempty"`
	// ExtensionReason is recorded with an extension.
	ExtensionReason string `json:"extension_reason,omitempty"`
	// ApprovedBy is recorded with an approval.
	ApprovedBy string `json:"approved_by,omitempty"`
	// Outcomes are appended to the ledger, idempotently.
	Outcomes []Outcome `json:"outcomes,omitempty"`
	// Step names the workflow step, for ledger idempotency keys.
	Step string `json:"step,omitempty"`
}

// DeadlineInput reports a deadline event: "early" and "late" reminders,
// or "overdue".
type DeadlineInput struct {
	DSRID    string    `json:"dsr_id"`
	Kind     string    `json:"kind"`
	Deadline time.Time `json:"deadline"`
}
