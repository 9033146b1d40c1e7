package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/identity"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// KindContact is the identifier kind that ties a subject to its CRM
// contact.
const KindContact = "crm_contact"

// timeZero asks the store for the current time.
var timeZero time.Time

// KeyMerger moves data keys to a subject, so that erasing the subject
// shreds every conversation of it. internal/privacy's Keyring is one.
type KeyMerger interface {
	Merge(ctx context.Context, keyIDs []string, subjectID string) error
}

// Identity matches social handles to CRM contacts from the details
// customers send in private messages, and applies review decisions.
type Identity struct {
	CRM     crm.Connector
	Store   store.Store
	Sealer  Sealer
	Hasher  Hasher
	Keys    KeyMerger
	Gate    *BudgetGate
	Region  string
	NoMatch identity.NoMatchPolicy
	Metrics *metrics.Metrics
	Log     *zap.Logger
}

// MatchInput is a batch's inbound messages with text.
type MatchInput struct {
	ConversationID string                `json:"conversation_id"`
	Events         []schemas.Event       `json:"events"`
	State          crm.ConversationState `json:"state"`
}

// MatchResult says what matching did. It carries no personal data.
type MatchResult struct {
	// ContactID is the contact the conversation is linked to now, if any.
	ContactID string `json:"contact_id,omitempty"`
	// SubjectID is the conversation's data subject after linking.
	SubjectID string `json:"subject_id,omitempty"`
	// ReviewID is set when the match went to the review queue.
	ReviewID string `json:"review_id,omitempty"`
	// Rule is the rule that decided.
	Rule string `json:"rule,omitempty"`
	// PublicDetails is true when a public post carried contact details:
	// they are not used, and the agent should move to DM.
	PublicDetails bool `json:"public_details,omitempty"`
}

// ReviewCandidates is what a reviewer sees of a review, stored encrypted
// under the conversation's key.
type ReviewCandidates struct {
	Details  identity.Details `json:"details"`
	Matches  []identity.Match `json:"matches"`
	Contacts []crm.Contact    `json:"contacts"`
	Reasons  []string         `json:"reasons,omitempty"`
	Persona  string           `json:"persona"`
	Message  string           `json:"message_id"`
}

// Match extracts details from the batch's private inbound messages, finds
// candidate contacts and applies the match rules: an unambiguous match is
// linked, doubt goes to the review queue, and details in public posts only
// flag the conversation.
func (a *Identity) Match(ctx context.Context, in MatchInput) (MatchResult, error) {
	defer keepAlive(ctx)()
	var res MatchResult
	var details identity.Details
	var evidence *schemas.Event
	for i, e := range in.Events {
		if e.Direction != schemas.Inbound || e.Kind == schemas.KindStatus {
			continue
		}
		d := identity.Extract(e.Text, identity.Options{DefaultRegion: a.Region})
		if d.Empty() {
			continue
		}
		if e.Visibility == schemas.Public {
			res.PublicDetails = true
			a.Metrics.PublicDetails.Inc()
			continue
		}
		details = mergeDetails(details, d)
		evidence = &in.Events[i]
	}
	if evidence == nil || (len(details.Emails) == 0 && len(details.Phones) == 0 && len(details.Addresses) == 0) {
		return res, nil
	}
	personaKey := string(evidence.Channel) + ":" + evidence.Author.PlatformUserID
	personaHash := a.Hasher.Hash(store.KindHandle, personaKey)
	ev := identity.Evidence{Details: details, NoMatch: a.NoMatch, DefaultRegion: a.Region}
	if l, err := a.Store.LinkByPersona(ctx, string(evidence.Channel), personaHash); err == nil {
		ev.ExistingContactID = l.CRMContactID
	} else if !errors.Is(err, store.ErrNotFound) {
		return res, err
	}
	contacts, err := a.candidates(ctx, details)
	if err != nil {
		return res, classify(err)
	}
	dec := identity.Decide(ev, identity.Candidates{Contacts: contacts})
	res.Rule = dec.Rule
	switch dec.Action {
	case identity.Link:
		err = a.link(ctx, in.ConversationID, &in.State, *evidence, details, dec.ContactID, dec.Rule, "automatic")
		res.ContactID, res.SubjectID = dec.ContactID, in.State.SubjectID
	case identity.Create:
		var id string
		if err = a.Gate.guard(ctx, func(ctx context.Context) error {
			var err error
			id, err = a.CRM.CreateContact(ctx, identity.ContactFromDetails(details))
			return err
		}); err != nil {
			return res, classify(err)
		}
		err = a.link(ctx, in.ConversationID, &in.State, *evidence, details, id, dec.Rule, "automatic")
		res.ContactID, res.SubjectID = id, in.State.SubjectID
	case identity.Review:
		res.ReviewID, err = a.review(ctx, in.ConversationID, *evidence, details, dec, contacts)
	case identity.None:
		res.ContactID = dec.ContactID
	}
	return res, err
}

// candidates finds the contacts matching any extracted value.
func (a *Identity) candidates(ctx context.Context, d identity.Details) ([]crm.Contact, error) {
	var queries []crm.ContactQuery
	for _, e := range d.Emails {
		queries = append(queries, crm.ContactQuery{Email: e})
	}
	for _, p := range d.Phones {
		queries = append(queries, crm.ContactQuery{Phone: p})
	}
	for _, ad := range d.Addresses {
		queries = append(queries, crm.ContactQuery{PostalCode: ad.Postcode})
	}
	seen := map[string]bool{}
	var out []crm.Contact
	for _, q := range queries {
		var found []crm.Contact
		err := a.Gate.guard(ctx, func(ctx context.Context) error {
			var err error
			found, err = a.CRM.FindContacts(ctx, q)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, c := range found {
			if !seen[c.ID] {
				seen[c.ID] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// link parents the conversation's customer persona to the contact, sets
// the contact on the conversation's posts, and records the link with its
// evidence in the identity graph.
//
// When the persona is linked to another contact already (a reviewer chose
// a different contact), the persona's conversation is first taken out of
// the old contact's subject, with the identifiers recorded from it, and
// joins the new contact's subject: the two customers are never merged, and
// the revoked link stays with the old contact as the evidence.
func (a *Identity) link(ctx context.Context, conversationID string, st *crm.ConversationState, e schemas.Event, d identity.Details, contactID, rule, approvedBy string) error {
	personaKey := string(e.Channel) + ":" + e.Author.PlatformUserID
	personaHash := a.Hasher.Hash(store.KindHandle, personaKey)
	old, err := a.Store.LinkByPersona(ctx, string(e.Channel), personaHash)
	hasOld := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	relink := hasOld && old.CRMContactID != contactID
	personaID := st.PersonaIDs[personaKey]
	if personaID == "" && hasOld {
		personaID = old.CRMPersonaID
	}
	var personaIDs []string
	if personaID != "" {
		personaIDs = append(personaIDs, personaID)
	}
	if err := a.Gate.guard(ctx, func(ctx context.Context) error {
		return a.CRM.LinkPersonas(ctx, personaIDs, contactID, sortedValues(st.PostIDs))
	}); err != nil {
		return classify(err)
	}
	var subjectID string
	if relink {
		// The new contact's subject, without merging the old one into it.
		if subjectID, err = a.subjectFor(ctx, contactID, ""); err != nil {
			return err
		}
		if err := a.separate(ctx, conversationID, old.SubjectID, subjectID, personaHash); err != nil {
			return err
		}
	} else {
		// The persona's own subject (the one holding its handle) joins the
		// contact's.
		own := st.SubjectID
		if ids, err := a.Store.FindSubjectsByIdentifierHashes(ctx, []string{personaHash}); err != nil {
			return err
		} else if len(ids) > 0 {
			own = ids[0]
		}
		if subjectID, err = a.subjectFor(ctx, contactID, own); err != nil {
			return err
		}
	}
	st.SubjectID = subjectID
	if err := a.Keys.Merge(ctx, []string{conversationID}, subjectID); err != nil {
		return err
	}
	if err := a.Store.SetConversationSubject(ctx, conversationID, subjectID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ids, err := a.identifiers(ctx, subjectID, conversationID, e, d)
	if err != nil {
		return err
	}
	if _, err := a.Store.AddIdentifiers(ctx, ids); err != nil {
		return err
	}
	if hasOld {
		if !relink {
			return nil
		}
		if err := a.revoke(ctx, old, approvedBy); err != nil {
			return err
		}
	}
	_, err = a.Store.AddLink(ctx, store.Link{
		SubjectID:           subjectID,
		Channel:             string(e.Channel),
		PersonaHash:         personaHash,
		CRMPersonaID:        personaID,
		CRMContactID:        contactID,
		Rule:                rule,
		EvidenceMessageHash: a.Hasher.Hash("message", string(e.Channel)+"|"+e.PlatformMessageID),
		ApprovedBy:          approvedBy,
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	a.Metrics.IdentityLinks.WithLabelValues(rule).Inc()
	return nil
}

// separate takes the conversation of a wrongly linked persona out of
// subject from and puts it in subject to: the identifiers recorded from it,
// the persona's handle, the conversations where that handle was first
// seen, their participations, reviews and data keys. It is safe to retry.
func (a *Identity) separate(ctx context.Context, conversationID, from, to, personaHash string) error {
	if from == "" || from == to {
		return nil
	}
	moved, err := a.Store.MoveConversation(ctx, store.ConversationMove{ConversationID: conversationID, From: from, To: to, HandleHashes: []string{personaHash}})
	if err != nil {
		return err
	}
	// A retry finds the conversations moved already; their keys follow
	// them all the same.
	if !slices.Contains(moved, conversationID) {
		if c, err := a.Store.GetConversation(ctx, conversationID); err == nil && c.SubjectID == to {
			moved = append(moved, conversationID)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if len(moved) == 0 {
		return nil
	}
	return a.Keys.Merge(ctx, moved, to)
}

// revoke revokes a link and writes who revoked it to the audit log: the
// link row keeps when, and the audit log who.
func (a *Identity) revoke(ctx context.Context, l store.Link, actor string) error {
	if err := a.Store.RevokeLink(ctx, l.ID, timeZero); err != nil {
		return err
	}
	if actor == "" {
		actor = "unlink-request"
	}
	return a.Store.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: AuditLinkRevoked, Target: l.ID, Outcome: "revoked"})
}

// AuditLinkRevoked is the audit action of a revoked identity link; the
// target is the link's ID.
const AuditLinkRevoked = "identity.link.revoked"

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// subjectFor returns the subject of a CRM contact. The conversation's own
// subject (its persona) becomes the contact's subject on first link, or is
// merged into the contact's existing subject: a customer on X and on
// WhatsApp linked to one contact is one subject, with one set of keys.
// Two conversations that link to the same new contact at the same time
// both claim it; both then see the two claims and merge into the lowest
// subject ID, so they converge on one subject whatever the interleaving.
func (a *Identity) subjectFor(ctx context.Context, contactID, conversationSubject string) (string, error) {
	hash := a.Hasher.Hash(KindContact, contactID)
	ids, err := a.Store.FindSubjectsByIdentifierHashes(ctx, []string{hash})
	if err != nil {
		return "", err
	}
	if len(ids) == 0 {
		subjectID := conversationSubject
		if subjectID == "" {
			s, err := a.Store.CreateSubject(ctx, store.Subject{})
			if err != nil {
				return "", err
			}
			subjectID = s.ID
		}
		if _, err := a.Store.AddIdentifiers(ctx, []store.Identifier{{SubjectID: subjectID, Kind: KindContact, Hash: hash}}); err != nil {
			return "", err
		}
		if ids, err = a.Store.FindSubjectsByIdentifierHashes(ctx, []string{hash}); err != nil {
			return "", err
		}
	}
	winner := ids[0] // sorted: every racer picks the same one
	for _, from := range append(ids[1:], conversationSubject) {
		if from == "" || from == winner {
			continue
		}
		if err := a.Store.MergeSubjects(ctx, from, winner); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return winner, nil
}

// identifiers builds the subject's identifiers: hashed for lookup,
// encrypted under the conversation's key for display.
func (a *Identity) identifiers(ctx context.Context, subjectID, conversationID string, e schemas.Event, d identity.Details) ([]store.Identifier, error) {
	type kv struct{ kind, hashValue, display string }
	var vals []kv
	vals = append(vals, kv{store.KindHandle, string(e.Channel) + ":" + e.Author.PlatformUserID, e.Author.Handle})
	for _, v := range d.Emails {
		vals = append(vals, kv{store.KindEmail, strings.ToLower(v), v})
	}
	for _, v := range d.Phones {
		vals = append(vals, kv{store.KindPhone, v, v})
	}
	for _, v := range d.Addresses {
		vals = append(vals, kv{store.KindPostcode, v.Postcode + " " + v.HouseNumber + v.Addition, v.Postcode})
	}
	for _, v := range d.Names {
		vals = append(vals, kv{store.KindName, strings.ToLower(v), v})
	}
	out := make([]store.Identifier, 0, len(vals))
	for _, v := range vals {
		sealed, err := a.Sealer.Seal(ctx, conversationID, []byte(v.display))
		if err != nil {
			return nil, err
		}
		out = append(out, store.Identifier{
			SubjectID: subjectID, Kind: v.kind, Hash: a.Hasher.Hash(v.kind, v.hashValue),
			Ciphertext: sealed, KeyID: conversationID, SourceConversationID: conversationID,
		})
	}
	return out, nil
}

// review puts a doubtful match in the review queue, with the candidates
// encrypted under the conversation's key.
func (a *Identity) review(ctx context.Context, conversationID string, e schemas.Event, d identity.Details, dec identity.Decision, contacts []crm.Contact) (string, error) {
	raw, err := json.Marshal(ReviewCandidates{
		Details: d, Matches: dec.Matches, Contacts: contacts, Reasons: dec.Reasons,
		Persona: string(e.Channel) + ":" + e.Author.PlatformUserID, Message: e.PlatformMessageID,
	})
	if err != nil {
		return "", err
	}
	sealed, err := a.Sealer.Seal(ctx, conversationID, raw)
	if err != nil {
		return "", err
	}
	// One open review per conversation message: retries of this activity
	// find the same ID.
	id := "rev-" + a.Hasher.Hash("review", conversationID+"|"+e.PlatformMessageID)[:24]
	r, err := a.Store.CreateReview(ctx, store.Review{
		ID: id, ConversationID: conversationID, CandidatesCiphertext: sealed,
		Reason: strings.Join(dec.Reasons, "; "), Rule: dec.Rule,
	})
	if err != nil {
		return "", err
	}
	a.Metrics.IdentityReviews.Inc()
	a.Log.Info("identity match needs review", zap.String("review", r.ID), zap.String("rule", dec.Rule))
	return r.ID, nil
}

// ApplyReviewInput applies a reviewer's decision, or unlinks.
type ApplyReviewInput struct {
	ConversationID string                `json:"conversation_id"`
	State          crm.ConversationState `json:"state"`
	ReviewID       string                `json:"review_id,omitempty"`
	ContactID      string                `json:"contact_id,omitempty"`
	Reject         bool                  `json:"reject,omitempty"`
	Actor          string                `json:"actor,omitempty"`
	Unlink         bool                  `json:"unlink,omitempty"`
}

// ApplyReview links the conversation's persona to the contact a reviewer
// chose, records a rejection, or unlinks the conversation everywhere. It
// returns the conversation's new state and is safe to retry.
func (a *Identity) ApplyReview(ctx context.Context, in ApplyReviewInput) (crm.ConversationState, error) {
	defer keepAlive(ctx)()
	st := in.State
	if in.Unlink {
		return a.unlink(ctx, in)
	}
	r, err := a.Store.GetReview(ctx, in.ReviewID)
	if err != nil {
		return st, fmt.Errorf("cannot read review %s: %w", in.ReviewID, err)
	}
	if in.Reject {
		if _, err := a.Store.ResolveReview(ctx, r.ID, store.ReviewResolution{Status: store.ReviewRejected, ResolvedBy: in.Actor}); err != nil && !errors.Is(err, store.ErrConflict) {
			return st, err
		}
		return st, nil
	}
	raw, err := a.Sealer.Open(ctx, in.ConversationID, r.CandidatesCiphertext)
	if err != nil {
		return st, err
	}
	var c ReviewCandidates
	if err := json.Unmarshal(raw, &c); err != nil {
		return st, err
	}
	channel, userID, _ := strings.Cut(c.Persona, ":")
	e := schemas.Event{Channel: schemas.Channel(channel), PlatformMessageID: c.Message, Author: schemas.Author{PlatformUserID: userID}}
	if err := a.link(ctx, in.ConversationID, &st, e, c.Details, in.ContactID, "review", in.Actor); err != nil {
		return st, err
	}
	if _, err := a.Store.ResolveReview(ctx, r.ID, store.ReviewResolution{Status: store.ReviewResolved, ResolvedBy: in.Actor, ContactID: in.ContactID}); err != nil && !errors.Is(err, store.ErrConflict) {
		return st, err
	}
	st.ContactID = in.ContactID
	return st, nil
}

// unlink removes the conversation's persona links in the CRM (the persona
// is parented to its post again, the posts lose their contact) and revokes
// them in the identity graph. Each unlinked persona's conversation leaves
// the contact's subject for a subject of its own, with the identifiers
// recorded from it, so that a request for the contact no longer finds it
// and a request for the persona's customer does. The revoked link stays
// with the contact as the evidence. It is safe to retry.
func (a *Identity) unlink(ctx context.Context, in ApplyReviewInput) (crm.ConversationState, error) {
	st := in.State
	all, err := a.conversationLinks(ctx, in.ConversationID, st)
	if err != nil {
		return st, err
	}
	convSubject := st.SubjectID
	if c, err := a.Store.GetConversation(ctx, in.ConversationID); err == nil && c.SubjectID != "" {
		convSubject = c.SubjectID
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return st, err
	}
	// Only the conversation's customer is unlinked: in a public thread the
	// other customers' links are theirs. A retry finds the conversation
	// in the subject the first attempt made for it.
	var links []store.Link
	var personaIDs []string
	for _, l := range all {
		if convSubject != "" && l.SubjectID != convSubject && a.unlinkedSubject(l) != convSubject {
			continue
		}
		links = append(links, l)
		id := l.CRMPersonaID
		for key, pid := range st.PersonaIDs {
			if id == "" && a.Hasher.Hash(store.KindHandle, key) == l.PersonaHash {
				id = pid
			}
		}
		if id != "" && !slices.Contains(personaIDs, id) {
			personaIDs = append(personaIDs, id)
		}
	}
	st.ContactID = ""
	if len(links) == 0 {
		return st, nil
	}
	sort.Strings(personaIDs)
	if err := a.Gate.guard(ctx, func(ctx context.Context) error {
		return a.CRM.LinkPersonas(ctx, personaIDs, "", sortedValues(st.PostIDs))
	}); err != nil {
		return st, classify(err)
	}
	for _, l := range links {
		s, err := a.Store.CreateSubject(ctx, store.Subject{ID: a.unlinkedSubject(l)})
		if err != nil {
			return st, err
		}
		if err := a.separate(ctx, in.ConversationID, l.SubjectID, s.ID, l.PersonaHash); err != nil {
			return st, err
		}
		if err := a.revoke(ctx, l, in.Actor); err != nil {
			return st, err
		}
	}
	if c, err := a.Store.GetConversation(ctx, in.ConversationID); err == nil && c.SubjectID != "" {
		st.SubjectID = c.SubjectID
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return st, err
	}
	return st, nil
}

// unlinkedSubject is the ID of the subject an unlinked persona's
// conversation moves to: one per link, named after it, so that a retry
// finds the same one.
func (a *Identity) unlinkedSubject(l store.Link) string {
	return "unlinked-" + a.Hasher.Hash("unlink", l.ID)[:32]
}

// conversationLinks returns the active links of the conversation's
// personas: those in its state, and those whose handles were recorded from
// it (a conversation restarted after it went idle has lost its state).
func (a *Identity) conversationLinks(ctx context.Context, conversationID string, st crm.ConversationState) ([]store.Link, error) {
	type persona struct{ channel, hash string }
	var personas []persona
	for key := range st.PersonaIDs {
		channel, _, _ := strings.Cut(key, ":")
		personas = append(personas, persona{channel, a.Hasher.Hash(store.KindHandle, key)})
	}
	c, err := a.Store.GetConversation(ctx, conversationID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err == nil && c.SubjectID != "" && c.Channel != "" {
		ids, err := a.Store.IdentifiersBySubject(ctx, c.SubjectID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if id.Kind == store.KindHandle && id.SourceConversationID == conversationID {
				personas = append(personas, persona{c.Channel, id.Hash})
			}
		}
	}
	var out []store.Link
	seen := map[string]bool{}
	for _, p := range personas {
		l, err := a.Store.LinkByPersona(ctx, p.channel, p.hash)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !seen[l.ID] {
			seen[l.ID] = true
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func mergeDetails(a, b identity.Details) identity.Details {
	a.Emails = appendNew(a.Emails, b.Emails...)
	a.Phones = appendNew(a.Phones, b.Phones...)
	a.Names = appendNew(a.Names, b.Names...)
	for _, ad := range b.Addresses {
		dup := false
		for _, x := range a.Addresses {
			dup = dup || x == ad
		}
		if !dup {
			a.Addresses = append(a.Addresses, ad)
		}
	}
	return a
}

func appendNew(list []string, vals ...string) []string {
	for _, v := range vals {
		dup := false
		for _, x := range list {
			dup = dup || x == v
		}
		if !dup {
			list = append(list, v)
		}
	}
	return list
}
