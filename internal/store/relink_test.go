package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

// TestMoveConversationSeparatesAWronglyMergedCustomer builds what a wrong
// link leaves: customer P's conversations and identifiers merged into
// contact A's subject. Moving P's DM out takes P's identifiers, P's
// conversations (also the one where P's handle was first seen), their
// participations and reviews to the other subject, and leaves A's own
// data and the revoked link's evidence with A.
func TestMoveConversationSeparatesAWronglyMergedCustomer(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		a, err := s.CreateSubject(ctx, store.Subject{})
		must(t, err)
		fresh, err := s.CreateSubject(ctx, store.Subject{})
		must(t, err)
		_, err = s.AddIdentifiers(ctx, []store.Identifier{
			{SubjectID: a.ID, Kind: "crm_contact", Hash: "h-contact-a"},
			{SubjectID: a.ID, Kind: store.KindHandle, Hash: "h-handle-a", SourceConversationID: "conv-a"},
			{SubjectID: a.ID, Kind: store.KindEmail, Hash: "h-email-a", SourceConversationID: "conv-a"},
			// P's handle was first seen in a public tweet, P's email came in the DM.
			{SubjectID: a.ID, Kind: store.KindHandle, Hash: "h-handle-p", SourceConversationID: "conv-p-tweet"},
			{SubjectID: a.ID, Kind: store.KindEmail, Hash: "h-email-p", SourceConversationID: "conv-p-dm"},
			{SubjectID: a.ID, Kind: store.KindPhone, Hash: "h-phone-p", SourceConversationID: "conv-p-dm"},
		})
		must(t, err)
		// The fresh subject already holds P's phone: it is not duplicated.
		_, err = s.AddIdentifiers(ctx, []store.Identifier{{SubjectID: fresh.ID, Kind: store.KindPhone, Hash: "h-phone-p", SourceConversationID: "conv-p-dm"}})
		must(t, err)
		for _, c := range []string{"conv-a", "conv-p-tweet", "conv-p-dm"} {
			must(t, s.UpsertConversation(ctx, store.Conversation{ID: c, Channel: "x", SubjectID: a.ID, KeyID: c}))
			_, err := s.AddParticipants(ctx, c, []string{a.ID})
			must(t, err)
		}
		_, err = s.CreateReview(ctx, store.Review{ID: "rev-p", ConversationID: "conv-p-dm", SubjectID: a.ID, Rule: "review"})
		must(t, err)
		l, err := s.AddLink(ctx, store.Link{SubjectID: a.ID, Channel: "x", PersonaHash: "h-handle-p", CRMContactID: "003A", Rule: "review", ApprovedBy: "agent"})
		must(t, err)
		must(t, s.RevokeLink(ctx, l.ID, time.Time{}))

		r, ok := s.(store.Relinker)
		if !ok {
			t.Fatalf("the %s store does not implement store.Relinker", b.Name)
		}
		moved, err := r.MoveConversation(ctx, store.ConversationMove{ConversationID: "conv-p-dm", From: a.ID, To: fresh.ID, HandleHashes: []string{"h-handle-p"}})
		must(t, err)
		if want := []string{"conv-p-dm", "conv-p-tweet"}; !slices.Equal(moved, want) {
			t.Fatalf("moved %v, want %v", moved, want)
		}

		hashes := func(subject string) []string {
			ids, err := s.IdentifiersBySubject(ctx, subject)
			must(t, err)
			var out []string
			for _, id := range ids {
				out = append(out, id.Hash)
			}
			slices.Sort(out)
			return out
		}
		if got, want := hashes(a.ID), []string{"h-contact-a", "h-email-a", "h-handle-a"}; !slices.Equal(got, want) {
			t.Errorf("A keeps identifiers %v, want %v", got, want)
		}
		if got, want := hashes(fresh.ID), []string{"h-email-p", "h-handle-p", "h-phone-p"}; !slices.Equal(got, want) {
			t.Errorf("the fresh subject holds %v, want %v", got, want)
		}
		found, err := s.FindSubjectsByIdentifierHashes(ctx, []string{"h-email-p", "h-handle-p"})
		must(t, err)
		if !slices.Equal(found, []string{fresh.ID}) {
			t.Errorf("P's identifiers lead to %v, want only the fresh subject", found)
		}
		convs := func(subject string) []string {
			cs, err := s.ConversationsBySubject(ctx, subject)
			must(t, err)
			var out []string
			for _, c := range cs {
				out = append(out, c.ID)
			}
			slices.Sort(out)
			return out
		}
		if got := convs(a.ID); !slices.Equal(got, []string{"conv-a"}) {
			t.Errorf("A's conversations %v, want [conv-a]", got)
		}
		if got := convs(fresh.ID); !slices.Equal(got, []string{"conv-p-dm", "conv-p-tweet"}) {
			t.Errorf("the fresh subject's conversations %v", got)
		}
		joined, err := s.ConversationsByParticipant(ctx, a.ID)
		must(t, err)
		if !slices.Equal(joined, []string{"conv-a"}) {
			t.Errorf("A participates in %v, want [conv-a]", joined)
		}
		joined, err = s.ConversationsByParticipant(ctx, fresh.ID)
		must(t, err)
		slices.Sort(joined)
		if !slices.Equal(joined, []string{"conv-p-dm", "conv-p-tweet"}) {
			t.Errorf("the fresh subject participates in %v", joined)
		}
		rv, err := s.GetReview(ctx, "rev-p")
		must(t, err)
		if rv.SubjectID != fresh.ID {
			t.Errorf("the review's subject is %s, want the fresh subject", rv.SubjectID)
		}
		// The revoked link stays with A as the evidence of the correction.
		links, err := s.LinksBySubject(ctx, a.ID)
		must(t, err)
		if len(links) != 1 || links[0].RevokedAt == nil || links[0].ApprovedBy != "agent" {
			t.Errorf("A's links after the move: %+v", links)
		}

		// Again: nothing left to move, no error.
		moved, err = r.MoveConversation(ctx, store.ConversationMove{ConversationID: "conv-p-dm", From: a.ID, To: fresh.ID, HandleHashes: []string{"h-handle-p"}})
		must(t, err)
		if len(moved) != 0 {
			t.Errorf("a second move moved %v", moved)
		}
		if _, err := r.MoveConversation(ctx, store.ConversationMove{ConversationID: "conv-a", From: a.ID, To: "no-such-subject"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("move to a missing subject: %v, want ErrNotFound", err)
		}
		if got := convs(a.ID); !slices.Equal(got, []string{"conv-a"}) {
			t.Errorf("a refused move changed A's conversations: %v", got)
		}
		if _, err := r.MoveConversation(ctx, store.ConversationMove{ConversationID: "conv-a", From: a.ID}); err == nil {
			t.Error("a move without a target subject was accepted")
		}
	})
}
