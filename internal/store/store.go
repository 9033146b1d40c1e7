// Package store is webcaresync's own durable store: the identity graph,
// webhook dedupe, the review queue, per-subject data keys, the erasure
// suppression list, DSRs with their ledger, the audit log, parked messages,
// import checkpoints and the durable webhook inbox.
//
// It has two backends behind one interface: SQLite (the default, a file in
// the data dir) and PostgreSQL (when the DSN starts with postgres://). Both
// run the same versioned migrations at open and pass the same test suite.
//
// The store holds bytes and hashes only. Cryptography happens in the caller:
// identifiers arrive as keyed hashes (for lookup) and ciphertext (for
// display), and the store never logs values.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors returned by the store. Test them with errors.Is.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means the write conflicts with the current state, for
	// example resolving a review that is no longer open, or linking a persona
	// that already has an active link.
	ErrConflict = errors.New("store: conflict with current state")
)

// Store is webcaresync's own store. It is safe for concurrent use.
type Store interface {
	Dedupe
	Conversations
	IdentityGraph
	Reviews
	Keys
	Suppression
	DSRs
	Audit
	Parked
	Checkpoints
	Inbox
	ConversationStates
	Relinker

	// Backend names the backend: "sqlite" or "postgres".
	Backend() string
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close stops the inbox committer and closes the database. Calls that
	// are waiting for a group commit get an error.
	Close() error
}

// Dedupe records which inbound events were already accepted, keyed by an
// opaque key (a keyed hash of channel and platform message ID).
type Dedupe interface {
	// ClaimEvents inserts the keys that were not there yet and reports, per
	// key, whether this call claimed it. Among concurrent callers exactly one
	// wins each key. A key repeated within one call is fresh at most once.
	ClaimEvents(ctx context.Context, keys []string) (fresh []bool, err error)
	// ClaimConversationEvents is ClaimEvents that also records the
	// conversation each key belongs to, so that ForgetEvents can erase them.
	ClaimConversationEvents(ctx context.Context, claims []EventClaim) (fresh []bool, err error)
	// ReleaseEvents removes claims, for when the durable write that followed
	// the claim failed and the platform's retry must be accepted.
	ReleaseEvents(ctx context.Context, keys []string) error
	// ForgetEvents removes every claim of a conversation and returns how
	// many were removed.
	ForgetEvents(ctx context.Context, conversationID string) (int, error)
	// ConversationsOfEvents returns the distinct, sorted conversation IDs
	// recorded with any of the keys; claims without a conversation are
	// left out.
	ConversationsOfEvents(ctx context.Context, keys []string) ([]string, error)
	// EventConversations returns, per claimed key, the conversation
	// recorded with its claim (one query per 500 keys), so that the ingest
	// can place a reply in the conversation of the message it answers. Keys not claimed, or claimed without a
	// conversation, are absent from the map.
	EventConversations(ctx context.Context, keys []string) (map[string]string, error)
}

// EventClaim is one dedupe key and the conversation it belongs to.
type EventClaim struct {
	// Key is the opaque dedupe key.
	Key string
	// ConversationID is the opaque conversation ID. It may be empty.
	ConversationID string
}

// Conversations records each conversation and the subject it belongs to.
type Conversations interface {
	// UpsertConversation creates the conversation or updates it. On update,
	// CreatedAt is kept, LastEventAt only moves forward, and Channel,
	// SubjectID and KeyID are only overwritten when they are not empty.
	// A zero CreatedAt or LastEventAt means now.
	UpsertConversation(ctx context.Context, c Conversation) error
	// GetConversation returns one conversation or ErrNotFound.
	GetConversation(ctx context.Context, id string) (Conversation, error)
	// ConversationsBySubject lists a subject's conversations, oldest first.
	ConversationsBySubject(ctx context.Context, subjectID string) ([]Conversation, error)
	// SetConversationSubject assigns a conversation to a subject, or returns
	// ErrNotFound.
	SetConversationSubject(ctx context.Context, conversationID, subjectID string) error
	// DeleteConversation removes a conversation and everything keyed by it:
	// dedupe claims, parked messages, inbox items, reviews and
	// participants. It is not an error when the conversation does not
	// exist.
	DeleteConversation(ctx context.Context, id string) error
	// AddParticipants records that the subjects wrote in the conversation,
	// so that an erasure of any of them finds it (a public thread holds
	// several customers; the conversation's SubjectID is only the first).
	// It is idempotent and returns how many pairs were new. When a subject
	// does not exist (merged into another or purged meanwhile) it writes
	// nothing and returns ErrNotFound: look the subjects up again.
	AddParticipants(ctx context.Context, conversationID string, subjectIDs []string) (int, error)
	// ConversationsByParticipant lists the IDs of the conversations the
	// subject wrote in, oldest participation first. A conversation appears
	// even when it was never recorded with UpsertConversation.
	ConversationsByParticipant(ctx context.Context, subjectID string) ([]string, error)
}

// Conversation is one conversation on one channel. Its ID is opaque.
type Conversation struct {
	ID          string
	Channel     string
	SubjectID   string
	KeyID       string
	CreatedAt   time.Time
	LastEventAt time.Time
}

// IdentityGraph holds subjects, their hashed and encrypted identifiers, and
// their links to CRM records and personas.
type IdentityGraph interface {
	// CreateSubject stores a subject. An empty ID gets a random UUID and a
	// zero CreatedAt means now. It is idempotent on ID and returns the
	// stored subject.
	CreateSubject(ctx context.Context, s Subject) (Subject, error)
	// GetSubject returns one subject or ErrNotFound.
	GetSubject(ctx context.Context, id string) (Subject, error)
	// FindSubjectsByIdentifierHashes returns the distinct, sorted IDs of the
	// subjects that hold any of the hashes.
	FindSubjectsByIdentifierHashes(ctx context.Context, hashes []string) ([]string, error)
	// IdentifiersByHashes returns the identifiers whose hash is among hashes.
	IdentifiersByHashes(ctx context.Context, hashes []string) ([]Identifier, error)
	// AddIdentifiers stores identifiers, skipping those already present for
	// the same subject, kind and hash, and returns how many were new.
	AddIdentifiers(ctx context.Context, ids []Identifier) (int, error)
	// IdentifiersBySubject lists a subject's identifiers, oldest first.
	IdentifiersBySubject(ctx context.Context, subjectID string) ([]Identifier, error)
	// AddLink stores a link. An empty ID gets a random UUID and a zero
	// CreatedAt means now. Storing the same ID twice is harmless. It returns
	// ErrConflict when another active link exists for the same channel and
	// persona hash.
	AddLink(ctx context.Context, l Link) (Link, error)
	// LinksBySubject lists a subject's links, revoked ones included, oldest
	// first.
	LinksBySubject(ctx context.Context, subjectID string) ([]Link, error)
	// LinkByPersona returns the active link of a persona or ErrNotFound.
	LinkByPersona(ctx context.Context, channel, personaHash string) (Link, error)
	// RevokeLink marks a link revoked at the given time (zero means now).
	// Revoking a revoked link keeps the first time. A missing link is
	// ErrNotFound.
	RevokeLink(ctx context.Context, id string, at time.Time) error
	// MergeSubjects moves everything of subject from (identifiers, links,
	// conversations, participations, data keys and reviews) to subject
	// into and deletes subject from.
	MergeSubjects(ctx context.Context, from, into string) error
	// PurgeSubject deletes everything about a subject except DSR ledger and
	// audit rows: identifiers, links, reviews, participations,
	// conversations with their dedupe claims, parked messages, inbox items
	// and participants, and the subject. Its data keys are destroyed and
	// kept as tombstones that no longer name the subject. It returns the
	// number of rows affected per table.
	PurgeSubject(ctx context.Context, subjectID string) (PurgeCounts, error)
}

// PurgeCounts maps a table name to the number of rows deleted (or, for
// data_keys, destroyed) in it.
type PurgeCounts map[string]int

// Subject is a data subject: one person as far as webcaresync knows.
type Subject struct {
	ID        string
	CreatedAt time.Time
}

// Identifier kinds.
const (
	KindEmail    = "email"
	KindPhone    = "phone"
	KindHandle   = "handle"
	KindPostcode = "postcode"
	KindName     = "name"
)

// Identifier is one detail of a subject: a keyed hash for lookup and the
// ciphertext for display, encrypted under the data key KeyID.
type Identifier struct {
	SubjectID            string
	Kind                 string
	Hash                 string
	Ciphertext           []byte
	KeyID                string
	SourceConversationID string
	CreatedAt            time.Time
}

// Link ties a subject's persona on a channel to CRM records, with the
// evidence for it: the rule, the message hash and who approved it.
type Link struct {
	ID                  string
	SubjectID           string
	Channel             string
	PersonaHash         string
	CRMPersonaID        string
	CRMContactID        string
	Rule                string
	EvidenceMessageHash string
	ApprovedBy          string
	CreatedAt           time.Time
	RevokedAt           *time.Time
}

// Reviews is the identity-match review queue.
type Reviews interface {
	// CreateReview stores a review. An empty ID gets a random UUID, an empty
	// Status means open and a zero CreatedAt means now. It is idempotent on
	// ID and returns the stored review.
	CreateReview(ctx context.Context, r Review) (Review, error)
	// GetReview returns one review or ErrNotFound.
	GetReview(ctx context.Context, id string) (Review, error)
	// ListReviews lists reviews with the status, oldest first; an empty
	// status lists all.
	ListReviews(ctx context.Context, status string) ([]Review, error)
	// ResolveReview resolves or rejects an open review and returns it. It
	// returns ErrNotFound for a missing review and ErrConflict when the
	// review is not open.
	ResolveReview(ctx context.Context, id string, res ReviewResolution) (Review, error)
}

// Review statuses.
const (
	ReviewOpen     = "open"
	ReviewResolved = "resolved"
	ReviewRejected = "rejected"
)

// Review is a match the matcher would not make on its own. Reason carries no
// PII; the candidates are encrypted.
type Review struct {
	ID                   string
	ConversationID       string
	SubjectID            string
	Status               string
	CandidatesCiphertext []byte
	Reason               string
	Rule                 string
	CreatedAt            time.Time
	ResolvedAt           *time.Time
	ResolvedBy           string
	ResolvedContactID    string
}

// ReviewResolution is an agent's decision on a review.
type ReviewResolution struct {
	// Status is ReviewResolved or ReviewRejected.
	Status string
	// ResolvedBy names the agent.
	ResolvedBy string
	// ContactID is the chosen CRM contact; empty when rejected.
	ContactID string
	// At is the time of the decision; zero means now.
	At time.Time
}

// Keys stores per-subject data keys, wrapped by a master key.
type Keys interface {
	// PutDataKey stores a data key. It is idempotent on ID and never
	// overwrites an existing key.
	PutDataKey(ctx context.Context, k DataKey) error
	// GetDataKey returns a data key or ErrNotFound. A destroyed key comes
	// back with Wrapped nil and DestroyedAt set.
	GetDataKey(ctx context.Context, id string) (DataKey, error)
	// DataKeysBySubject lists a subject's data keys, oldest first.
	DataKeysBySubject(ctx context.Context, subjectID string) ([]DataKey, error)
	// AssignDataKeys makes the keys belong to the subject.
	AssignDataKeys(ctx context.Context, keyIDs []string, subjectID string) error
	// DestroyDataKeys overwrites the wrapped bytes of every key of the
	// subject with NULL, keeping a tombstone row, and returns how many keys
	// were destroyed by this call.
	DestroyDataKeys(ctx context.Context, subjectID string) (int, error)
	// DataKeysByMaster lists up to limit live keys wrapped by the master key,
	// for rotation.
	DataKeysByMaster(ctx context.Context, masterKeyID string, limit int) ([]DataKey, error)
	// RewrapDataKey replaces a live key's wrapped bytes and master key ID.
	// It returns ErrNotFound for a missing key and ErrConflict for a
	// destroyed one, which is never brought back.
	RewrapDataKey(ctx context.Context, id string, wrapped []byte, masterKeyID string) error
}

// DataKey is a data key wrapped by the master key MasterKeyID.
type DataKey struct {
	ID          string
	SubjectID   string
	Wrapped     []byte
	MasterKeyID string
	CreatedAt   time.Time
	DestroyedAt *time.Time
}

// Suppression is the erasure suppression list of identifier hashes.
type Suppression interface {
	// AddSuppressed adds hashes to the list on behalf of a DSR. It is
	// idempotent.
	AddSuppressed(ctx context.Context, hashes []string, dsrID string) error
	// AnySuppressed reports whether any of the hashes is on the list.
	AnySuppressed(ctx context.Context, hashes []string) (bool, error)
}

// DSRs stores data-subject requests and their append-only ledger.
type DSRs interface {
	// CreateDSR stores a DSR. Zero CreatedAt and UpdatedAt mean now. It
	// returns ErrConflict when the ID exists.
	CreateDSR(ctx context.Context, d DSR) (DSR, error)
	// GetDSR returns one DSR or ErrNotFound.
	GetDSR(ctx context.Context, id string) (DSR, error)
	// ListDSRs lists DSRs matching the filter, oldest received first.
	ListDSRs(ctx context.Context, f DSRFilter) ([]DSR, error)
	// UpdateDSR writes every field of d except ID and CreatedAt and returns
	// the stored DSR with a new UpdatedAt. When d.UpdatedAt is not zero the
	// update is optimistic: it returns ErrConflict if the stored UpdatedAt
	// differs (someone else updated it since it was read). A zero UpdatedAt
	// updates unconditionally. A missing DSR is ErrNotFound.
	UpdateDSR(ctx context.Context, d DSR) (DSR, error)
	// AppendLedger appends an entry to a DSR's ledger. A zero At means now.
	// When e.ID is not empty it is an idempotency key: an entry with the
	// same ID is appended only once.
	AppendLedger(ctx context.Context, e LedgerEntry) error
	// LedgerByDSR lists a DSR's ledger in append order.
	LedgerByDSR(ctx context.Context, dsrID string) ([]LedgerEntry, error)
}

// DSR types.
const (
	DSRAccess  = "access"
	DSRErasure = "erasure"
)

// DSR is a data-subject request. The subject appears only as a keyed hash.
type DSR struct {
	ID                 string
	Type               string
	Status             string
	SubjectHash        string
	ReceivedAt         time.Time
	Deadline           time.Time
	Extended           bool
	ExtensionReason    string
	VerifiedBy         string
	VerificationMethod string
	ApprovedBy         string
	ApprovedAt         *time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
	ReportJSON         []byte
}

// DSRFilter selects DSRs; empty fields match everything.
type DSRFilter struct {
	Status      string
	Type        string
	SubjectHash string
	// Limit caps the result; 0 means no cap.
	Limit int
}

// Ledger actions.
const (
	LedgerFound       = "found"
	LedgerErased      = "erased"
	LedgerAnonymised  = "anonymised"
	LedgerRetained    = "retained"
	LedgerNotPossible = "not_possible"
	LedgerFailed      = "failed"
)

// LedgerEntry records what one system did for a DSR.
type LedgerEntry struct {
	// Seq is the append order, set by the store.
	Seq int64
	// ID is an optional idempotency key.
	ID     string
	DSRID  string
	System string
	Action string
	Count  int
	Detail string
	Policy string
	At     time.Time
}

// Audit is the append-only audit log. It has no update or delete method,
// and the database rejects updates and deletes with a trigger.
type Audit interface {
	// AppendAudit appends an entry. A zero At means now.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit lists up to limit entries at or after since, in append
	// order. A limit of 0 means no cap.
	ListAudit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error)
}

// AuditEntry records who did what, when, to what, and how it went.
type AuditEntry struct {
	// Seq is the append order, set by the store.
	Seq        int64
	At         time.Time
	Actor      string
	Action     string
	Target     string
	Outcome    string
	RemoteAddr string
}

// Parked holds messages that could not be delivered and wait for an
// operator.
type Parked interface {
	// Park stores a parked message, replacing one with the same ID. A zero
	// ParkedAt means now.
	Park(ctx context.Context, m ParkedMessage) error
	// ListParked lists up to limit parked messages, oldest first. A limit of
	// 0 means no cap.
	ListParked(ctx context.Context, limit int) ([]ParkedMessage, error)
	// GetParked returns one parked message or ErrNotFound.
	GetParked(ctx context.Context, id string) (ParkedMessage, error)
	// DeleteParked removes a parked message; a missing one is ErrNotFound.
	DeleteParked(ctx context.Context, id string) error
	// CountParked returns how many messages are parked.
	CountParked(ctx context.Context) (int, error)
}

// ParkedMessage is an encrypted message that failed with ErrorCode. Reason
// and Fields carry no PII.
type ParkedMessage struct {
	ID                  string
	ConversationID      string
	PlatformMessageHash string
	Payload             []byte
	KeyID               string
	ErrorCode           string
	Reason              string
	Fields              []string
	ParkedAt            time.Time
}

// Checkpoints stores named offsets for resumable imports.
type Checkpoints interface {
	// GetCheckpoint returns the stored offset, or 0 when none is stored.
	GetCheckpoint(ctx context.Context, name string) (int64, error)
	// SetCheckpoint stores the offset.
	SetCheckpoint(ctx context.Context, name string, offset int64) error
}

// Inbox is a durable webhook inbox. The HTTP edge enqueues and acknowledges
// once the write is durable; a relay claims items in order, signals
// Temporal and acknowledges them.
type Inbox interface {
	// EnqueueInbox durably appends the items in one transaction. Concurrent
	// callers are combined into one group commit; each call returns after
	// the commit that holds its items. If ctx ends first the call returns
	// ctx.Err() and the items may or may not be stored, so the caller
	// must not acknowledge them.
	EnqueueInbox(ctx context.Context, items []InboxItem) error
	// ClaimEnqueueInbox claims the dedupe keys of the entries and appends
	// the item of every entry whose keys it all claimed, in one
	// transaction (group-committed with concurrent EnqueueInbox and
	// ClaimEnqueueInbox callers), so that an entry's events are either
	// claimed and in the inbox, or neither. An entry that loses any key
	// (claimed before, or by an earlier entry of the same commit) gives
	// back the keys it won and its item is not written. The result holds,
	// per entry and claim, ClaimEnqueued, ClaimDuplicate (an earlier claim
	// whose event is durable holds the key) or ClaimRetry (the key is free
	// again: call once more with the events still to enqueue). If ctx
	// ends first the call returns ctx.Err() and the entries may or may not
	// be stored, but never half.
	ClaimEnqueueInbox(ctx context.Context, entries []InboxEntry) ([][]ClaimOutcome, error)
	// ClaimInbox leases up to limit items that are not leased, oldest first.
	// A leased item is offered again once its lease (Options.InboxLease)
	// expires without AckInbox.
	ClaimInbox(ctx context.Context, limit int) ([]InboxItem, error)
	// AckInbox deletes delivered items.
	AckInbox(ctx context.Context, seqs []int64) error
	// ReleaseInbox ends the lease of items that could not be delivered, so
	// that the next claim offers them again.
	ReleaseInbox(ctx context.Context, seqs []int64) error
	// InboxDepth returns how many items are in the inbox, leased or not.
	InboxDepth(ctx context.Context) (int, error)
}

// InboxEntry is one inbox item and the dedupe claims of the events it
// carries.
type InboxEntry struct {
	Claims []EventClaim
	Item   InboxItem
}

// ClaimOutcome says what ClaimEnqueueInbox did with one claim.
type ClaimOutcome uint8

const (
	// ClaimEnqueued means the key is claimed and its entry's item is in
	// the inbox.
	ClaimEnqueued ClaimOutcome = iota + 1
	// ClaimDuplicate means an earlier claim holds the key and its event is
	// durable: drop the event as a repeat.
	ClaimDuplicate
	// ClaimRetry means the key was not claimed because another key of its
	// entry was a duplicate: enqueue the event again without the
	// duplicates.
	ClaimRetry
)

// InboxItem is one encrypted inbound event waiting to be signalled.
type InboxItem struct {
	// Seq is the inbox order, set by the store.
	Seq            int64
	ConversationID string
	KeyID          string
	Payload        []byte
	// EnqueuedAt is set by the store.
	EnqueuedAt time.Time
}
