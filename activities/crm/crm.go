// Package crm defines what webcaresync needs from a CRM. Each CRM is one
// folder below this one (salesforce/ first) that implements Connector; the
// workflows and activities only ever see this package.
package crm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/webcaresync/webcaresync/schemas"
)

// ConversationState is what the conversation workflow remembers about the
// CRM records of one conversation between batches.
type ConversationState struct {
	// CaseID is the CRM id of the conversation's case, once created.
	CaseID string `json:"case_id,omitempty"`
	// CaseOpenedAt is when the current case was created or reopened.
	CaseOpenedAt time.Time `json:"case_opened_at,omitempty"`
	// PersonaIDs maps "channel:platform user id" to the CRM persona id.
	PersonaIDs map[string]string `json:"persona_ids,omitempty"`
	// ContactID is the CRM contact the conversation's customer is linked to.
	ContactID string `json:"contact_id,omitempty"`
	// SubjectID is webcaresync's data subject of the conversation's
	// customer (identity graph); connectors pass it through unchanged.
	SubjectID string `json:"subject_id,omitempty"`
	// Participants are the keyed handle hashes of the customers already
	// registered as participants of the conversation (the most recent
	// ones), so that a batch costs no store call for them; connectors pass
	// it through unchanged.
	Participants []string `json:"participants,omitempty"`
	// PostIDs maps platform message ids to CRM post ids, for reply-to links.
	// The workflow keeps only the recent ones.
	PostIDs map[string]string `json:"post_ids,omitempty"`
}

// SyncBatch is one ordered batch of events of one conversation.
type SyncBatch struct {
	// ConversationID is the opaque conversation id (also the workflow id).
	ConversationID string `json:"conversation_id"`
	// Events are the conversation's new events, in order, already deduped.
	Events []schemas.Event `json:"events"`
	// State is the conversation's state before this batch.
	State ConversationState `json:"state"`
}

// SyncResult is what a batch sync wrote.
type SyncResult struct {
	// State is the conversation's state after the batch.
	State ConversationState `json:"state"`
	// Written lists the platform message ids that are now in the CRM.
	Written []string `json:"written,omitempty"`
	// Parked lists events the CRM rejected for a reason retrying cannot fix
	// (validation, picklist, field-level security). They are parked with the
	// reason and can be replayed after the mapping is fixed.
	Parked []Parked `json:"parked,omitempty"`
	// Calls is the number of CRM API calls the batch took.
	Calls int `json:"calls"`
}

// Parked is an event the CRM rejected permanently, with the reason.
type Parked struct {
	PlatformMessageID string   `json:"platform_message_id"`
	ErrorCode         string   `json:"error_code"`
	Message           string   `json:"message"`
	Fields            []string `json:"fields,omitempty"`
}

// Contact is a CRM contact as identity matching sees it.
type Contact struct {
	ID         string `json:"id"`
	FirstName  string `json:"first_name,omitempty"`
	LastName   string `json:"last_name,omitempty"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	Mobile     string `json:"mobile,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Street     string `json:"street,omitempty"`
}

// ContactQuery asks for contacts by exact email, exact E.164 phone (matched
// against phone and mobile), or postcode. Empty fields are not used.
type ContactQuery struct {
	// ID finds one contact by its CRM id.
	ID         string `json:"id,omitempty"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
}

// Connector is one CRM. Implementations must be safe for concurrent use.
type Connector interface {
	// Sync writes one batch of a conversation: personas, posts (with their
	// reply-to chain) and the case, idempotently.
	Sync(ctx context.Context, batch SyncBatch) (SyncResult, error)
	// FindContacts returns the contacts matching any field of the query.
	FindContacts(ctx context.Context, q ContactQuery) ([]Contact, error)
	// CreateContact creates a contact and returns its id.
	CreateContact(ctx context.Context, c Contact) (string, error)
	// LinkPersonas parents the personas to the contact and sets the
	// contact on the given posts; an empty contactID unlinks them.
	LinkPersonas(ctx context.Context, personaIDs []string, contactID string, postIDs []string) error
	// Probe makes one cheap call to learn whether the CRM accepts calls again.
	Probe(ctx context.Context) error
}

// ErrorKind classifies a CRM failure for the retry policy. Temporal owns
// retries; the kind decides which retry policy applies.
type ErrorKind string

// The kinds of CRM failure.
const (
	// Transient failures (5xx, network) are retried with backoff.
	Transient ErrorKind = "transient"
	// Concurrency means the org's concurrent request cap was hit: back off.
	Concurrency ErrorKind = "concurrency"
	// BudgetExhausted means the daily API budget is gone: pause syncing.
	BudgetExhausted ErrorKind = "budget_exhausted"
	// Permanent failures (validation, mapping) are not retried.
	Permanent ErrorKind = "permanent"
)

// Error is a classified CRM failure. Its message never contains record data.
type Error struct {
	Kind       ErrorKind
	Code       string // the CRM's error code, e.g. REQUEST_LIMIT_EXCEEDED
	Message    string
	RetryAfter time.Duration // from a Retry-After header, if any
}

func (e *Error) Error() string {
	return fmt.Sprintf("crm %s: %s: %s", e.Kind, e.Code, e.Message)
}

// KindOf returns the kind of err, or Transient for unclassified errors.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Transient
}

// DiscoverQuery names a data subject to the CRM: by exact email and E.164
// phone, by known contact ids, by social persona (provider and the
// platform's user id), and by webcaresync conversation ids.
type DiscoverQuery struct {
	Emails          []string     `json:"emails,omitempty"`
	Phones          []string     `json:"phones,omitempty"`
	ContactIDs      []string     `json:"contact_ids,omitempty"`
	Personas        []PersonaRef `json:"personas,omitempty"`
	ConversationIDs []string     `json:"conversation_ids,omitempty"`
	// LiveOnly leaves out records in the CRM's recycle bin: the discovery
	// after an erasure looks for what was written meanwhile, not for what
	// the erasure deleted and the CRM still lists for a while.
	LiveOnly bool `json:"live_only,omitempty"`
}

// PersonaRef is a social persona: provider (x, messenger, instagram,
// whatsapp) and the platform's user id.
type PersonaRef struct {
	Provider   string `json:"provider"`
	ExternalID string `json:"external_id"`
}

// Discovered is a subject's footprint in the CRM: record ids by object
// (Contact, SocialPersona, SocialPost, Case, Individual, Task), and the
// social posts as the platforms know them, for platform erasure.
type Discovered struct {
	Records map[string][]string `json:"records"`
	Posts   []PlatformPost      `json:"posts,omitempty"`
	// ConversationIDs are the webcaresync conversations the records belong
	// to (from their external ids), so that an unlinked handle's
	// conversations are found too.
	ConversationIDs []string `json:"conversation_ids,omitempty"`
}

// PlatformPost is a social post as its platform knows it.
type PlatformPost struct {
	Provider       string `json:"provider"`
	ExternalPostID string `json:"external_post_id"`
	Outbound       bool   `json:"outbound"`
	Public         bool   `json:"public"`
}

// ErasureResult is what the CRM did with one object's records.
type ErasureResult struct {
	Object string `json:"object"`
	// Action is erased, anonymised or retained.
	Action string `json:"action"`
	Count  int    `json:"count"`
	// Policy names the mapping's erasure rule that applied.
	Policy string `json:"policy"`
	Detail string `json:"detail,omitempty"`
}

// Eraser is a connector that takes part in data-subject requests.
type Eraser interface {
	// Discover finds every record of the subject, following links: contact
	// → personas → posts → cases, and persona → contact.
	Discover(ctx context.Context, q DiscoverQuery) (Discovered, error)
	// Export returns the records' fields, by object, for an access request.
	Export(ctx context.Context, records map[string][]string) (map[string][]map[string]any, error)
	// Erase applies the mapping's erasure policy to the records: delete,
	// anonymise or redact, and Individual.ShouldForget. Records already
	// gone count as erased; running it twice is harmless.
	Erase(ctx context.Context, records map[string][]string) ([]ErasureResult, error)
}
