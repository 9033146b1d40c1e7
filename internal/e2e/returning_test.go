package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// sanneXDM is a new DM from Sanne in her X conversation with the brand: the
// same conversation key, so the same conversation ID and key name.
func sanneXDM(messageID, text string) schemas.Event {
	return schemas.Event{Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:" + samples.XBrandID + ":" + samples.SanneXID,
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: messageID,
		Author: schemas.Author{PlatformUserID: samples.SanneXID, Handle: "sannedv"}, Text: text, OccurredAt: time.Now().UTC(), Brand: schemas.BrandAccount{ID: samples.XBrandID}}
}

// TestReturningCustomerAfterErasure erases Sanne, then has her write again
// in the same X conversation: the webhook accepts the message (no 503 for
// an erased key), it reaches the CRM under a fresh key generation, and what
// was recorded before the erasure still cannot be decrypted, even with the
// master key.
func TestReturningCustomerAfterErasure(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	ctx := context.Background()
	syncSanne(t, s)
	conv := s.Ingestor.ConversationID(sanneXDM("0", ""))
	var sanneIDs []string
	for _, evs := range sanneConversations(t) {
		sanneIDs = append(sanneIDs, s.Ingestor.ConversationID(evs[0]))
	}
	if !slices.Contains(sanneIDs, conv) {
		t.Fatalf("the new DM's conversation %s is not one of Sanne's demo conversations %v", conv, sanneIDs)
	}

	before := history(ctx, t, s.App, conv)
	encrypted := 0
	for _, p := range before {
		if string(p.GetMetadata()[converter.MetadataEncoding]) == privacy.EncodingEncrypted && string(p.GetMetadata()[privacy.MetadataKeyID]) == conv {
			encrypted++
		}
	}
	if encrypted == 0 {
		t.Fatalf("none of the %d payloads of Sanne's X conversation is encrypted under its key %s", len(before), conv)
	}

	id := openDSR(t, s, "erasure")
	waitStatus(t, s, id, "awaiting_approval", time.Minute)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	waitStatus(t, s, id, "completed", 2*time.Minute)
	if dk, err := s.Store.GetDataKey(ctx, conv); err != nil || dk.DestroyedAt == nil {
		t.Fatalf("the conversation's key after the erasure: destroyed %v, %v", dk.DestroyedAt != nil, err)
	}

	// Sanne writes again in the same conversation.
	text := "Hallo, ik ben het weer: mijn nieuwe bestelling is nog niet aangekomen."
	body, _ := json.Marshal(map[string]any{"events": []schemas.Event{sanneXDM("1790000000000001001", text)}})
	if code, b, err := s.hooks.Post(ctx, "generic", body); err != nil || code != 200 {
		t.Fatalf("a message after the erasure: %d %s %v, want 200", code, b, err)
	}
	eventually(t, time.Minute, "the returning customer's message in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", text) == 1 })

	// The new conversation runs under the next generation of its key.
	gen2 := privacy.GenerationKeyID(conv, 2)
	after := history(ctx, t, s.App, conv)
	newKeys := map[string]int{}
	for _, p := range after {
		newKeys[string(p.GetMetadata()[privacy.MetadataKeyID])]++
	}
	if newKeys[gen2] == 0 || newKeys[conv] != 0 {
		t.Fatalf("the new conversation's payloads are under keys %v, want %s and never the erased %s", newKeys, gen2, conv)
	}
	if dk, err := s.Store.GetDataKey(ctx, gen2); err != nil || dk.DestroyedAt != nil {
		t.Fatalf("the new generation's key: %+v, %v", dk.DestroyedAt, err)
	}

	// A fresh keyring over the store and the master key file: the new
	// payloads decrypt, the ones from before the erasure stay erased.
	mk, err := privacy.LoadMasterKeys(s.Cfg.Secrets.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	kr := privacy.NewKeyring(testKeyStore{s.Store}, mk, nil, privacy.WithCacheTTL(0))
	dc, codec := privacy.NewDataConverter(kr), privacy.NewCodec(kr)
	for _, p := range after {
		var v any
		if err := dc.FromPayload(p, &v); err != nil {
			t.Fatalf("a payload of the new conversation does not decrypt (so the checks below prove nothing): %v", err)
		}
	}
	for _, p := range before {
		if string(p.GetMetadata()[privacy.MetadataKeyID]) != conv {
			continue
		}
		var v any
		if err := dc.FromPayload(p, &v); !errors.Is(err, privacy.ErrErased) {
			t.Errorf("a payload from before the erasure: %v, want an error wrapping privacy.ErrErased", err)
		}
		dec, err := codec.Decode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatalf("the codec endpoint's decode failed instead of marking the payload erased: %v", err)
		}
		var marker privacy.ErasedMarker
		if json.Unmarshal(dec[0].GetData(), &marker) != nil || !marker.Erased || marker.KeyID != conv {
			t.Errorf("a payload from before the erasure decoded to something other than the erased marker for %s", conv)
		}
	}

	// Her handle, sealed in the store for the new conversation, names the
	// new generation and opens under the conversation's key name.
	handle := s.Hasher.Hash(store.KindHandle, "x:"+samples.SanneXID)
	var sealed []store.Identifier
	eventually(t, time.Minute, "Sanne's handle registered for the new conversation", func() bool {
		subjects, err := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{handle})
		if err != nil || len(subjects) != 1 {
			return false
		}
		ids, err := s.Store.IdentifiersBySubject(ctx, subjects[0])
		if err != nil {
			return false
		}
		sealed = sealed[:0]
		for _, id := range ids {
			if id.Hash == handle && len(id.Ciphertext) > 0 {
				sealed = append(sealed, id)
			}
		}
		return len(sealed) > 0
	})
	for _, id := range sealed {
		raw, err := kr.Open(ctx, id.KeyID, id.Ciphertext)
		if err != nil || string(raw) == "" {
			t.Fatalf("the new conversation's sealed handle: %v", err)
		}
		if id.KeyID != conv || !containsBytes(id.Ciphertext, gen2) {
			t.Errorf("the sealed handle is filed under key name %s and does not name generation %s", id.KeyID, gen2)
		}
	}
}

func containsBytes(b []byte, s string) bool { return len(containsAny(string(b), s)) > 0 }
