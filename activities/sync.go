package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// Sealer encrypts data under a subject's data key, so that crypto-shredding
// the key makes the data unreadable. internal/privacy's Keyring is one.
type Sealer interface {
	Seal(ctx context.Context, keyID string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
}

// Hasher derives keyed hashes, so that lookups never need the clear value.
type Hasher interface {
	Hash(kind, value string) string
}

// Sync writes conversations into the CRM.
type Sync struct {
	CRM     crm.Connector
	Store   store.Store
	Sealer  Sealer
	Hasher  Hasher
	Keys    KeyMerger
	Gate    *BudgetGate
	Metrics *metrics.Metrics
	Log     *zap.Logger
}

// SyncBatch writes one ordered batch of a conversation into the CRM. Events
// the CRM rejects permanently are parked, encrypted, with the reason, and
// the rest of the batch is still written.
func (a *Sync) SyncBatch(ctx context.Context, batch crm.SyncBatch) (crm.SyncResult, error) {
	defer keepAlive(ctx)()
	var res crm.SyncResult
	if !knowsRecords(batch.State) {
		// The first batch of a new run of a conversation that was synced
		// before (the previous run went idle or was terminated) continues
		// where it stopped: the same case, personas, reply-to links and
		// contact.
		st, err := a.restoreState(ctx, batch.ConversationID, batch.Events, batch.State)
		if err != nil {
			return res, err
		}
		batch.State = st
	}
	err := a.Gate.guard(ctx, func(ctx context.Context) error {
		var err error
		res, err = a.CRM.Sync(ctx, batch)
		return err
	})
	if err != nil {
		switch crm.KindOf(err) {
		case crm.BudgetExhausted:
			a.Metrics.SyncPaused.Set(1)
		case crm.Permanent:
			return res, a.refused(batch.ConversationID, err)
		}
		return res, classify(err)
	}
	a.Metrics.SyncPaused.Set(0)
	a.Metrics.SyncBatches.Inc()
	a.Metrics.SyncEvents.Add(float64(len(res.Written)))
	a.Metrics.CRMCalls.Add(float64(res.Calls))
	res.State.SubjectID = batch.State.SubjectID
	res.State.Participants = batch.State.Participants
	if err := a.Store.UpsertConversation(ctx, store.Conversation{
		ID: batch.ConversationID, Channel: channelOf(batch.Events), KeyID: batch.ConversationID, LastEventAt: time.Now(),
	}); err != nil {
		return res, err
	}
	if err := a.registerParticipants(ctx, batch.ConversationID, batch.Events, &res.State); err != nil {
		return res, err
	}
	if err := a.park(ctx, batch, res.Parked); err != nil {
		return res, err
	}
	if err := a.saveState(ctx, batch.ConversationID, res.State); err != nil {
		return res, err
	}
	return res, nil
}

// knowsRecords reports whether st knows any CRM record of the
// conversation; a new run's state knows none.
func knowsRecords(st crm.ConversationState) bool {
	return st.CaseID != "" || len(st.PersonaIDs) > 0 || len(st.PostIDs) > 0
}

// restoreState returns the state a new run of the conversation continues
// with: the CRM records of the stored state, and the contact and subject
// as the identity graph has them now (a match, review or unlink of an
// earlier run wrote them there, and merges keep them current); what the
// run's state has already (a review applied before its first batch) wins.
func (a *Sync) restoreState(ctx context.Context, conversationID string, events []schemas.Event, cur crm.ConversationState) (crm.ConversationState, error) {
	st, err := a.loadState(ctx, conversationID)
	if err != nil {
		return cur, err
	}
	if !knowsRecords(st) {
		// Nothing stored: never synced, or an erasure forgot the state
		// before deleting its records, so the contact the identity graph
		// still names may be gone from the CRM too. Start afresh.
		return cur, nil
	}
	conv, err := a.Store.GetConversation(ctx, conversationID)
	if errors.Is(err, store.ErrNotFound) {
		// Never synced, or erased: nothing to continue.
		return cur, nil
	}
	if err != nil {
		return cur, err
	}
	st.ContactID = ""
	if conv.SubjectID != "" {
		st.SubjectID = conv.SubjectID
		if st.ContactID, err = a.linkedContact(ctx, conv.SubjectID, st.PersonaIDs, events); err != nil {
			return cur, err
		}
	}
	if cur.ContactID != "" {
		st.ContactID = cur.ContactID
	}
	if cur.SubjectID != "" {
		st.SubjectID = cur.SubjectID
	}
	if len(cur.Participants) > 0 {
		st.Participants = cur.Participants
	}
	return st, nil
}

// linkedContact returns the CRM contact that one of the conversation's
// personas (those the state knows and the batch's customers) is linked
// to under the conversation's subject, or "" when none is linked (never
// matched, or unlinked since).
func (a *Sync) linkedContact(ctx context.Context, subjectID string, personaIDs map[string]string, events []schemas.Event) (string, error) {
	mine := map[string]bool{}
	for key := range personaIDs {
		mine[a.Hasher.Hash(store.KindHandle, key)] = true
	}
	for _, e := range customers(events) {
		mine[a.Hasher.Hash(store.KindHandle, string(e.Channel)+":"+e.Author.PlatformUserID)] = true
	}
	links, err := a.Store.LinksBySubject(ctx, subjectID)
	if err != nil {
		return "", err
	}
	contact := ""
	for _, l := range links { // oldest first: the latest active link wins
		if l.RevokedAt == nil && mine[l.PersonaHash] && l.CRMContactID != "" {
			contact = l.CRMContactID
		}
	}
	return contact, nil
}

// loadState reads and opens the conversation's stored state. A state that
// is not stored, or whose data key was destroyed by an erasure, is empty.
func (a *Sync) loadState(ctx context.Context, conversationID string) (crm.ConversationState, error) {
	stored, err := a.Store.GetConversationState(ctx, conversationID)
	if errors.Is(err, store.ErrNotFound) {
		return crm.ConversationState{}, nil
	}
	if err != nil {
		return crm.ConversationState{}, err
	}
	raw, err := a.Sealer.Open(ctx, stored.KeyID, stored.Sealed)
	if errors.Is(err, privacy.ErrErased) {
		return crm.ConversationState{}, nil
	}
	if err != nil {
		return crm.ConversationState{}, fmt.Errorf("cannot open the stored state of a conversation: %w", err)
	}
	var st crm.ConversationState
	if err := json.Unmarshal(raw, &st); err != nil {
		return crm.ConversationState{}, fmt.Errorf("the stored state of a conversation does not decode; delete its conversation_states row to start it afresh: %w", err)
	}
	return st, nil
}

// saveState seals the conversation's state under its data key and stores
// it. A conversation that is gone from the store (erased meanwhile) gets
// no state.
func (a *Sync) saveState(ctx context.Context, conversationID string, st crm.ConversationState) error {
	if !knowsRecords(st) {
		return nil
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	sealed, err := a.Sealer.Seal(ctx, conversationID, raw)
	if err != nil {
		return err
	}
	err = a.Store.PutConversationState(ctx, store.ConversationState{ConversationID: conversationID, Sealed: sealed, KeyID: conversationID})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// refused turns a refusal of the whole batch (the CRM's Permanent error
// for the call, not for single records) into the non-retryable error the
// workflow holds the batch on, with the CRM's error code as its detail,
// and logs it: syncing stops for the conversation until the cause is
// fixed, so the operator must see it in the log and in
// webcaresync_crm_refused_total.
func (a *Sync) refused(conversationID string, err error) error {
	var ce *crm.Error
	if !errors.As(err, &ce) {
		return classify(err)
	}
	a.Metrics.CRMRefused.Inc(ce.Code)
	a.Log.Error("the crm refused a whole batch; the conversation holds it and retries. Fix what the error names (credentials, the mapping's objects and fields, duplicate records); a batch still refused after a day is parked",
		zap.String("conversation", conversationID), zap.String("error_code", ce.Code), zap.String("error", ce.Message))
	return temporal.NewNonRetryableApplicationError(ce.Error(), ErrPermanent, nil, ce.Code)
}

// ParkBatchInput is a batch the CRM kept refusing as a whole, with the
// refusal.
type ParkBatchInput struct {
	ConversationID string          `json:"conversation_id"`
	Events         []schemas.Event `json:"events"`
	ErrorCode      string          `json:"error_code"`
	Reason         string          `json:"reason"`
}

// ParkBatch parks every event of a batch that the CRM kept refusing as a
// whole, with the refusal's code and reason, so that the events are listed
// by `webcaresync parked` and replayed after the fix. Parking twice is
// harmless.
func (a *Sync) ParkBatch(ctx context.Context, in ParkBatchInput) error {
	for _, e := range in.Events {
		if err := a.parkEvent(ctx, in.ConversationID, e, crm.Parked{PlatformMessageID: e.PlatformMessageID, ErrorCode: in.ErrorCode, Message: in.Reason}); err != nil {
			return err
		}
	}
	return nil
}

// park stores the events the CRM rejected permanently.
func (a *Sync) park(ctx context.Context, batch crm.SyncBatch, parked []crm.Parked) error {
	if len(parked) == 0 {
		return nil
	}
	byID := make(map[string]schemas.Event, len(batch.Events))
	for _, e := range batch.Events {
		byID[e.PlatformMessageID] = e
	}
	for _, p := range parked {
		e, ok := byID[p.PlatformMessageID]
		if !ok {
			continue
		}
		if err := a.parkEvent(ctx, batch.ConversationID, e, p); err != nil {
			return err
		}
	}
	return nil
}

// parkEvent stores one event, sealed under the conversation's data key,
// with the reason the CRM rejected it. A status update is parked apart
// from the message it updates.
func (a *Sync) parkEvent(ctx context.Context, conversationID string, e schemas.Event, p crm.Parked) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	sealed, err := a.Sealer.Seal(ctx, conversationID, raw)
	if err != nil {
		return err
	}
	hash := a.Hasher.Hash("message", string(e.Channel)+"|"+e.PlatformMessageID)
	id := hash
	if e.Kind == schemas.KindStatus {
		id = a.Hasher.Hash("message", string(e.Channel)+"|"+e.PlatformMessageID+"|s|"+e.Status)
	}
	if err := a.Store.Park(ctx, store.ParkedMessage{
		ID:                  id,
		ConversationID:      conversationID,
		PlatformMessageHash: hash,
		Payload:             sealed,
		KeyID:               conversationID,
		ErrorCode:           p.ErrorCode,
		Reason:              p.Message,
		Fields:              p.Fields,
	}); err != nil {
		return err
	}
	a.Metrics.Parked.Inc()
	a.Log.Warn("crm rejected an event; parked it for replay after the mapping is fixed",
		zap.String("conversation", conversationID), zap.String("error_code", p.ErrorCode), zap.Strings("fields", p.Fields))
	return nil
}

// participantsLimit bounds how many participants a conversation's state
// remembers; a customer who was forgotten costs one store lookup when they
// write again.
const participantsLimit = 256

// maxRegisterAttempts bounds how often registerParticipants looks the
// subjects up again after one was merged away or purged meanwhile.
const maxRegisterAttempts = 5

// customers returns the first inbound message of every customer of the
// batch, in order: the first is the conversation's customer, the others
// wrote in the same public thread.
func customers(events []schemas.Event) []schemas.Event {
	var out []schemas.Event
	seen := map[string]bool{}
	for _, e := range events {
		if e.Direction != schemas.Inbound || e.Kind != schemas.KindMessage || e.Author.PlatformUserID == "" {
			continue
		}
		key := string(e.Channel) + ":" + e.Author.PlatformUserID
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, e)
	}
	return out
}

// newcomer is a customer of a batch who is not registered yet.
type newcomer struct {
	hash  string
	event schemas.Event
}

// registerParticipants makes every customer who wrote in the batch a data
// subject and a participant of the conversation, so that an erasure for
// any of them finds the conversation, also a public thread that another
// customer started. The first customer of a conversation without a
// subject becomes its subject, and the conversation's data key joins
// theirs. Customers the state remembers cost no store call.
func (a *Sync) registerParticipants(ctx context.Context, conversationID string, events []schemas.Event, st *crm.ConversationState) error {
	needOwner := st.SubjectID == ""
	known := make(map[string]bool, len(st.Participants))
	for _, h := range st.Participants {
		known[h] = true
	}
	var fresh []newcomer
	for i, e := range customers(events) {
		h := a.Hasher.Hash(store.KindHandle, string(e.Channel)+":"+e.Author.PlatformUserID)
		// The first customer is looked up while the conversation has no
		// subject, so that it gets one.
		if known[h] && !(needOwner && i == 0) {
			continue
		}
		fresh = append(fresh, newcomer{hash: h, event: e})
	}
	if len(fresh) == 0 {
		return nil
	}
	for attempt := 1; ; attempt++ {
		subjects, err := a.subjectsFor(ctx, conversationID, fresh)
		if err != nil {
			return err
		}
		if needOwner {
			if err := a.Store.SetConversationSubject(ctx, conversationID, subjects[0]); err != nil {
				return err
			}
			if err := a.Keys.Merge(ctx, []string{conversationID}, subjects[0]); err != nil {
				return err
			}
		}
		// Last, because it checks that the subjects still exist: a merge
		// that comes later moves the conversation, its key and the
		// participations along; one that came earlier makes this fail.
		_, err = a.Store.AddParticipants(ctx, conversationID, subjects)
		if err == nil {
			if needOwner {
				st.SubjectID = subjects[0]
			}
			break
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// A subject was merged into another (two conversations of one new
		// customer, or an identity link) or erased meanwhile: look again.
		if attempt == maxRegisterAttempts {
			return errors.New("the subjects of a conversation's customers kept changing while they were registered; the activity retries")
		}
	}
	hashes := make([]string, len(fresh))
	for i, n := range fresh {
		hashes[i] = n.hash
	}
	st.Participants = remember(st.Participants, hashes)
	return nil
}

// remember appends the hashes that are new to list and keeps the most
// recent participantsLimit.
func remember(list, hashes []string) []string {
	out := append([]string(nil), list...)
	for _, h := range hashes {
		if i := slices.Index(out, h); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
		out = append(out, h)
	}
	if len(out) > participantsLimit {
		out = out[len(out)-participantsLimit:]
	}
	return out
}

// subjectsFor returns the subject of each newcomer, in order, with one
// store lookup for all of them. A handle seen before (on this or another
// conversation) is its existing subject; a new one becomes a subject,
// stored hashed (for lookup) and encrypted under the conversation's key
// (for the access export). So a handle that never gets linked to a contact
// can still be found, exported and erased.
func (a *Sync) subjectsFor(ctx context.Context, conversationID string, fresh []newcomer) ([]string, error) {
	hashes := make([]string, len(fresh))
	for i, n := range fresh {
		hashes[i] = n.hash
	}
	ids, err := a.Store.IdentifiersByHashes(ctx, hashes)
	if err != nil {
		return nil, err
	}
	holders := map[string]string{} // hash → lowest subject holding it
	for _, id := range ids {
		if cur, ok := holders[id.Hash]; !ok || id.SubjectID < cur {
			holders[id.Hash] = id.SubjectID
		}
	}
	out := make([]string, len(fresh))
	for i, n := range fresh {
		if sid, ok := holders[n.hash]; ok {
			out[i] = sid
			continue
		}
		sid, err := a.newSubject(ctx, conversationID, n)
		if err != nil {
			return nil, err
		}
		out[i] = sid
	}
	return out, nil
}

// newSubject makes a new customer a data subject. Two conversations that
// register the same new customer at the same time both create a subject;
// both then see the two and merge into the lowest subject ID, so they
// converge on one subject whatever the interleaving (as Identity.subjectFor
// does for contacts).
func (a *Sync) newSubject(ctx context.Context, conversationID string, n newcomer) (string, error) {
	e := n.event
	s, err := a.Store.CreateSubject(ctx, store.Subject{})
	if err != nil {
		return "", err
	}
	display := e.Author.Handle
	if display == "" {
		display = e.Author.DisplayName
	}
	sealed, err := a.Sealer.Seal(ctx, conversationID, []byte(string(e.Channel)+":"+e.Author.PlatformUserID+" "+display))
	if err != nil {
		return "", err
	}
	if _, err := a.Store.AddIdentifiers(ctx, []store.Identifier{{
		SubjectID: s.ID, Kind: store.KindHandle, Hash: n.hash, Ciphertext: sealed,
		KeyID: conversationID, SourceConversationID: conversationID,
	}}); err != nil {
		return "", err
	}
	ids, err := a.Store.FindSubjectsByIdentifierHashes(ctx, []string{n.hash})
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", errors.New("a customer's new subject was erased while it was registered; the activity retries")
	}
	winner := ids[0] // sorted: every racer picks the same one
	for _, from := range ids[1:] {
		if err := a.Store.MergeSubjects(ctx, from, winner); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return winner, nil
}

// ProbeCRM makes one cheap CRM call, through the budget gate.
func (a *Sync) ProbeCRM(ctx context.Context) error {
	return classify(a.Gate.guard(ctx, a.CRM.Probe))
}

func channelOf(events []schemas.Event) string {
	if len(events) == 0 {
		return ""
	}
	return string(events[0].Channel)
}
