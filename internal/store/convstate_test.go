package store_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

// TestConversationStates stores, replaces and reads a conversation's sealed
// state, refuses one for a conversation that does not exist, survives a
// reopen, and is removed with its conversation by DeleteConversation and by
// the purge of the conversation's subject, while another subject's state
// stays.
func TestConversationStates(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		cs, ok := s.(store.ConversationStates)
		if !ok {
			t.Fatalf("the %s store does not keep conversation states", b.Name)
		}
		if _, err := cs.GetConversationState(ctx, "conv-a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("state of an unknown conversation: %v, want ErrNotFound", err)
		}
		// A conversation that was never recorded (or was erased) gets no state.
		if err := cs.PutConversationState(ctx, store.ConversationState{ConversationID: "conv-a", Sealed: []byte{1}, KeyID: "conv-a"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("state of an unrecorded conversation: %v, want ErrNotFound", err)
		}
		if err := cs.PutConversationState(ctx, store.ConversationState{ConversationID: "conv-a"}); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("empty state: %v, want a usage error", err)
		}

		for _, sub := range []string{"subject-a", "subject-b"} {
			_, err := s.CreateSubject(ctx, store.Subject{ID: sub})
			must(t, err)
		}
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "conv-a", Channel: "x", KeyID: "conv-a", SubjectID: "subject-a"}))
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "conv-a2", Channel: "x", KeyID: "conv-a2", SubjectID: "subject-a"}))
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "conv-b", Channel: "x", KeyID: "conv-b", SubjectID: "subject-b"}))
		for _, id := range []string{"conv-a", "conv-a2", "conv-b"} {
			must(t, cs.PutConversationState(ctx, store.ConversationState{ConversationID: id, Sealed: []byte("v1 " + id), KeyID: id}))
		}
		must(t, cs.PutConversationState(ctx, store.ConversationState{ConversationID: "conv-a", Sealed: []byte{0, 0xff, 2}, KeyID: "conv-a"}))
		got, err := cs.GetConversationState(ctx, "conv-a")
		must(t, err)
		if !bytes.Equal(got.Sealed, []byte{0, 0xff, 2}) || got.KeyID != "conv-a" || got.ConversationID != "conv-a" || got.UpdatedAt.IsZero() {
			t.Fatalf("state after replacing it = %+v, want the second one with its key and time", got)
		}

		// It survives a reopen.
		must(t, s.Close())
		s = b.Open(t, store.Options{})
		cs = s.(store.ConversationStates)
		if got, err := cs.GetConversationState(ctx, "conv-a2"); err != nil || string(got.Sealed) != "v1 conv-a2" {
			t.Fatalf("state after a reopen = %q, %v", got.Sealed, err)
		}

		// Forgetting a state keeps the conversation; forgetting it twice is
		// no error.
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "conv-a3", Channel: "x", KeyID: "conv-a3", SubjectID: "subject-a"}))
		must(t, cs.PutConversationState(ctx, store.ConversationState{ConversationID: "conv-a3", Sealed: []byte("v1"), KeyID: "conv-a3"}))
		must(t, cs.DeleteConversationState(ctx, "conv-a3"))
		must(t, cs.DeleteConversationState(ctx, "conv-a3"))
		if _, err := cs.GetConversationState(ctx, "conv-a3"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a forgotten state: %v, want ErrNotFound", err)
		}
		if _, err := s.GetConversation(ctx, "conv-a3"); err != nil {
			t.Fatalf("forgetting the state deleted the conversation: %v", err)
		}

		// Deleting a conversation deletes its state.
		must(t, s.DeleteConversation(ctx, "conv-a2"))
		if _, err := cs.GetConversationState(ctx, "conv-a2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("state of a deleted conversation: %v, want ErrNotFound", err)
		}
		// An erasure purges its subject's states, and only theirs.
		counts, err := s.PurgeSubject(ctx, "subject-a")
		must(t, err)
		if _, err := cs.GetConversationState(ctx, "conv-a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("state of a purged subject's conversation: %v, want ErrNotFound", err)
		}
		if counts["conversation_states"] != 1 {
			t.Fatalf("purge counts = %v, want conversation_states: 1", counts)
		}
		if got, err := cs.GetConversationState(ctx, "conv-b"); err != nil || string(got.Sealed) != "v1 conv-b" {
			t.Fatalf("another subject's state after the purge = %q, %v", got.Sealed, err)
		}
		// A write that comes after the purge brings nothing back.
		if err := cs.PutConversationState(ctx, store.ConversationState{ConversationID: "conv-a", Sealed: []byte{3}, KeyID: "conv-a"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("state written after the purge: %v, want ErrNotFound", err)
		}
		var n int
		must(t, b.DB(t).QueryRowContext(ctx, `SELECT COUNT(*) FROM conversation_states`).Scan(&n))
		if n != 1 {
			t.Fatalf("conversation_states holds %d rows, want only conv-b's", n)
		}
	})
}
