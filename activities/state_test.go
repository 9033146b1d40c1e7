package activities_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
	"github.com/webcaresync/webcaresync/schemas"
)

// caseCRM opens a case for every batch that brings no case, as the
// connector does, and remembers the posts for reply-to links; it records
// the state each batch brought.
type caseCRM struct {
	echoCRM
	cases  int
	states []crm.ConversationState
	refuse *crm.Error
}

func (c *caseCRM) Sync(_ context.Context, b crm.SyncBatch) (crm.SyncResult, error) {
	if c.refuse != nil {
		return crm.SyncResult{}, c.refuse
	}
	c.states = append(c.states, b.State)
	st := b.State
	if st.CaseID == "" {
		c.cases++
		st.CaseID = fmt.Sprintf("case-%d", c.cases)
	}
	posts := map[string]string{}
	for k, v := range st.PostIDs {
		posts[k] = v
	}
	res := crm.SyncResult{Calls: 1}
	for _, e := range b.Events {
		posts[e.PlatformMessageID] = "post-" + e.PlatformMessageID
		res.Written = append(res.Written, e.PlatformMessageID)
	}
	st.PostIDs = posts
	res.State = st
	return res, nil
}

// erasedSealer opens nothing: the data key was destroyed by an erasure.
type erasedSealer struct{ sealer }

func (erasedSealer) Open(context.Context, string, []byte) ([]byte, error) {
	return nil, fmt.Errorf("open: %w", privacy.ErrErased)
}

// A batch that brings no state (the first batch of a new run, after the
// previous run went idle) continues the state the last batch stored,
// sealed under the conversation's key: the same case and reply-to links,
// no second case.
func TestSyncBatchContinuesStoredState(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		st := b.Open(t, store.Options{})
		c := &caseCRM{}
		a := newSync(st, &keys{})
		a.CRM = c
		first, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m1", "anna", schemas.Inbound)}})
		if err != nil {
			t.Fatal(err)
		}
		if first.State.CaseID != "case-1" {
			t.Fatalf("first batch state = %+v", first.State)
		}
		stored, err := st.(store.ConversationStates).GetConversationState(ctx, "conv-1")
		if err != nil {
			t.Fatalf("the state after a batch is not stored: %v", err)
		}
		if stored.KeyID != "conv-1" || !bytes.HasPrefix(stored.Sealed, []byte("sealed:conv-1:")) {
			t.Fatalf("stored state is not sealed under the conversation's key: key %q", stored.KeyID)
		}

		// A new run: the workflow's state is empty.
		second, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m2", "anna", schemas.Inbound)}})
		if err != nil {
			t.Fatal(err)
		}
		got := c.states[1]
		if got.CaseID != "case-1" || got.PostIDs["m1"] != "post-m1" || got.SubjectID != first.State.SubjectID || len(got.Participants) != 1 {
			t.Fatalf("the new run's first batch brought state %+v, want the stored one (case-1, post of m1, subject %s)", got, first.State.SubjectID)
		}
		if c.cases != 1 || second.State.CaseID != "case-1" {
			t.Fatalf("the new run opened %d cases, state %+v: want the first case kept", c.cases, second.State)
		}

		// A batch that brings a state uses it as is.
		_, err = a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m3", "anna", schemas.Inbound)},
			State: crm.ConversationState{CaseID: "case-9", SubjectID: first.State.SubjectID, Participants: first.State.Participants}})
		if err != nil {
			t.Fatal(err)
		}
		if c.states[2].CaseID != "case-9" {
			t.Fatalf("a batch with a state got %+v", c.states[2])
		}

		// After an erasure destroyed the key, a new run starts afresh.
		a.Sealer = erasedSealer{}
		if _, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m4", "anna", schemas.Inbound)}}); err != nil {
			t.Fatalf("a stored state whose key was destroyed: %v, want a fresh start", err)
		}
		if c.states[3].CaseID != "" {
			t.Fatalf("a state under a destroyed key was used: %+v", c.states[3])
		}
	})
}

// A new run takes the contact from the identity graph, where the match or
// review of an earlier run recorded it after the last batch: linked, the
// new batch names the contact; unlinked since, it names none.
func TestNewRunTakesContactFromIdentityGraph(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		st := b.Open(t, store.Options{})
		c := &caseCRM{}
		a := newSync(st, &keys{})
		a.CRM = c
		first, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m1", "anna", schemas.Inbound)}})
		if err != nil {
			t.Fatal(err)
		}
		subject := first.State.SubjectID
		// Identity matching links anna's persona after the batch, as
		// Identity.link records it; the run then ends.
		link, err := st.AddLink(ctx, store.Link{SubjectID: subject, Channel: "x", PersonaHash: hasher{}.Hash(store.KindHandle, "x:anna"),
			CRMContactID: "003000000000001AAA", Rule: "email_exact"})
		if err != nil {
			t.Fatal(err)
		}
		// Another customer's persona linked to another contact under the
		// same subject does not count: it is not this conversation's.
		if _, err := st.AddLink(ctx, store.Link{SubjectID: subject, Channel: "x", PersonaHash: hasher{}.Hash(store.KindHandle, "x:someone-else"),
			CRMContactID: "003000000000009AAA", Rule: "email_exact"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m2", "anna", schemas.Inbound)}}); err != nil {
			t.Fatal(err)
		}
		if got := c.states[1]; got.ContactID != "003000000000001AAA" || got.SubjectID != subject || got.CaseID != "case-1" {
			t.Fatalf("a new run after a link brought %+v, want the linked contact, the subject and the case", got)
		}
		// A review applied before the new run's first batch wins.
		if _, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m3", "anna", schemas.Inbound)},
			State: crm.ConversationState{ContactID: "003000000000002AAA", SubjectID: subject}}); err != nil {
			t.Fatal(err)
		}
		if got := c.states[2]; got.ContactID != "003000000000002AAA" || got.CaseID != "case-1" || got.PostIDs["m2"] == "" {
			t.Fatalf("a new run whose review came first brought %+v, want the review's contact with the stored case and posts", got)
		}
		// Unlinked since: the new run names no contact.
		if err := st.RevokeLink(ctx, link.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m4", "anna", schemas.Inbound)}}); err != nil {
			t.Fatal(err)
		}
		if got := c.states[3]; got.ContactID != "" || got.CaseID != "case-1" {
			t.Fatalf("a new run after an unlink brought %+v, want no contact and the case", got)
		}
	})
}

// A refusal of the whole batch reaches the workflow as a non-retryable
// Permanent error that carries the CRM's code, and nothing is stored.
func TestSyncBatchRefusedAsAWhole(t *testing.T) {
	st := storetest.SQLite(t).Open(t, store.Options{})
	a := newSync(st, &keys{})
	a.CRM = &caseCRM{refuse: &crm.Error{Kind: crm.Permanent, Code: "INVALID_FIELD", Message: "No such column 'Bad__c' on entity 'SocialPost'"}}
	_, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m1", "anna", schemas.Inbound)}})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrPermanent || !appErr.NonRetryable() {
		t.Fatalf("refused batch: %v, want a non-retryable %s error", err, activities.ErrPermanent)
	}
	var code string
	if err := appErr.Details(&code); err != nil || code != "INVALID_FIELD" {
		t.Fatalf("refusal detail = %q, %v; want the CRM's code", code, err)
	}
	if _, err := st.GetConversation(ctx, "conv-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused batch recorded its conversation: %v", err)
	}
}

// ParkBatch parks every event of a batch the CRM kept refusing, sealed and
// with the refusal, a status update apart from its message; parking again
// is harmless.
func TestParkBatch(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		st := b.Open(t, store.Options{})
		a := newSync(st, &keys{})
		status := msg("m1", "anna", schemas.Outbound)
		status.Kind, status.Status, status.Text = schemas.KindStatus, "read", ""
		in := activities.ParkBatchInput{ConversationID: "conv-1", ErrorCode: "NOT_FOUND", Reason: "crm permanent: NOT_FOUND: the requested resource does not exist",
			Events: []schemas.Event{msg("m1", "anna", schemas.Inbound), status, msg("m2", "anna", schemas.Inbound)}}
		for range 2 {
			if err := a.ParkBatch(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		list, err := st.ListParked(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 {
			t.Fatalf("parked %d rows, want the 3 events once each", len(list))
		}
		for _, p := range list {
			if p.ConversationID != "conv-1" || p.KeyID != "conv-1" || p.ErrorCode != "NOT_FOUND" || p.Reason != in.Reason ||
				!bytes.HasPrefix(p.Payload, []byte("sealed:conv-1:")) {
				t.Fatalf("parked row %+v", p)
			}
		}
	})
}
