package store_test

import (
	"maps"
	"strconv"
	"testing"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

// TestEventConversations looks claims up key by key, as the ingest does
// to place a reply in the conversation of the message it answers.
func TestEventConversations(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		_, err := s.ClaimConversationEvents(ctx, []store.EventClaim{{Key: "e1", ConversationID: "c1"},
			{Key: "e2", ConversationID: "c2"}, {Key: "e3", ConversationID: "c1"}, {Key: "e4"}})
		must(t, err)
		got, err := s.EventConversations(ctx, []string{"e3", "e1", "e2", "e4", "unknown", "e1", ""})
		must(t, err)
		want := map[string]string{"e1": "c1", "e2": "c2", "e3": "c1"}
		if !maps.Equal(got, want) {
			t.Fatalf("event conversations = %v, want %v (claims without a conversation and unknown keys left out)", got, want)
		}
		if got, err := s.EventConversations(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("event conversations of no keys = %v, %v", got, err)
		}
		// More keys than one IN list holds.
		var claims []store.EventClaim
		var keys []string
		for i := range 1200 {
			k := "bulk" + strconv.Itoa(i)
			claims = append(claims, store.EventClaim{Key: k, ConversationID: "c3"})
			keys = append(keys, k)
		}
		_, err = s.ClaimConversationEvents(ctx, claims)
		must(t, err)
		got, err = s.EventConversations(ctx, keys)
		must(t, err)
		if len(got) != len(keys) {
			t.Fatalf("event conversations of %d claimed keys found %d", len(keys), len(got))
		}
		// A forgotten conversation's claims are not found any more.
		if _, err := s.ForgetEvents(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		got, err = s.EventConversations(ctx, []string{"e1", "e2"})
		must(t, err)
		if !maps.Equal(got, map[string]string{"e2": "c2"}) {
			t.Fatalf("after forgetting c1: event conversations = %v, want only e2", got)
		}
	})
}
