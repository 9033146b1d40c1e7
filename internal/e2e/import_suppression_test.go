package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

// crmObjects are the sandbox objects an import could write to.
var crmObjects = []string{"Contact", "SocialPersona", "SocialPost", "Case", "Task", "Individual"}

// crmCounts counts every record of each object, live and in the Recycle
// Bin.
func crmCounts(s *stack) map[string]int {
	n := map[string]int{}
	for _, obj := range crmObjects {
		n[obj] = len(s.Sandbox.AllRecords(obj))
	}
	return n
}

// TestImportAfterErasureBringsNothingBack syncs Sanne's X and WhatsApp
// conversations, erases her, and then imports an old export of them: her
// messages, the brand's replies to her (authored by the brand, one of
// which names her), WhatsApp status updates and a brand reply the export
// has that the webhooks never sent. Nothing of it reaches Temporal, the
// store or the CRM; another customer's line in the same file does.
func TestImportAfterErasureBringsNothingBack(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	ctx := context.Background()
	contact := syncSanne(t, s)

	// The old export: every event of her two conversations, as the
	// webhooks delivered them.
	var export []schemas.Event
	for _, c := range samples.Conversations()[:2] {
		for _, p := range c.Payloads {
			export = append(export, parsePayload(p)...)
		}
	}
	extra := schemas.Event{Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:" + samples.XBrandID + ":" + samples.SanneXID,
		Direction: schemas.Outbound, Visibility: schemas.Private, PlatformMessageID: "1790000000000000199",
		Author: schemas.Author{PlatformUserID: samples.XBrandID, Handle: samples.XBrandHandle}, Text: "Hoi Sanne, is je pakket inmiddels binnen? ^MK",
		OccurredAt: time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC), Brand: schemas.BrandAccount{ID: samples.XBrandID, Handle: samples.XBrandHandle}, AgentID: "MK"}
	export = append(export, extra)
	var inbound, outbound int
	convIDs := map[string]bool{}
	for _, e := range export {
		convIDs[s.Ingestor.ConversationID(e)] = true
		if e.Direction == schemas.Inbound {
			inbound++
		} else {
			outbound++
		}
	}
	if inbound == 0 || outbound == 0 || len(convIDs) != 2 {
		t.Fatalf("the export has %d inbound and %d outbound events in %d conversations; want both directions in Sanne's 2", inbound, outbound, len(convIDs))
	}
	for _, c := range contactConversations(s, contact) {
		if !convIDs[c.ID] {
			t.Fatalf("Sanne's conversation %s in the store is not one the export's events go to (%v)", c.ID, convIDs)
		}
	}

	id := openDSR(t, s, "erasure")
	waitStatus(t, s, id, "awaiting_approval", time.Minute)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	waitStatus(t, s, id, "completed", 2*time.Minute)
	if left := sanneLeft(s, contact); len(left) > 0 {
		t.Fatalf("the erasure left in the CRM: %v", left)
	}
	before := crmCounts(s)

	// Another customer's line, which must still come in, goes last.
	other := schemas.Event{Kind: schemas.KindMessage, Channel: schemas.ChannelLivechat, ConversationKey: "livechat:after-erasure:1",
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: "lc-after-erasure-1",
		Author: schemas.Author{PlatformUserID: "visitor-after-erasure"}, Text: "Is de winkel zondag open?",
		OccurredAt: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC), Brand: schemas.BrandAccount{ID: "webshop"}}
	path := filepath.Join(t.TempDir(), "old-export.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, e := range append(slices.Clone(export), other) {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := ingest.ImportJSONL(ctx, s.Ingestor, s.Store, path, nil)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if res.Suppressed != len(export) || res.Accepted != 1 {
		t.Errorf("import: %+v; want Sanne's %d events (%d inbound, %d the brand's) suppressed and the other customer's accepted",
			res, len(export), inbound, outbound)
	}

	// Temporal: a signal would have started the conversation again before
	// the import returned.
	for c := range convIDs {
		_, err := s.Client.DescribeWorkflowExecution(ctx, c, "")
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			t.Errorf("the import started Sanne's erased conversation %s in Temporal again: %v", c, err)
		}
	}
	// The store: no conversation, no dedupe claim, no subject.
	for c := range convIDs {
		if _, err := s.Store.GetConversation(ctx, c); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("conversation %s is back in the store: %v", c, err)
		}
	}
	keys := make([]string, 0, len(export))
	for _, e := range export {
		keys = append(keys, s.Hasher.Hash("event", workflows.DedupeKey(e)))
	}
	if claimed, err := s.Store.EventConversations(ctx, keys); err != nil || len(claimed) != 0 {
		t.Errorf("the import claimed %d of Sanne's events in the store (%v)", len(claimed), err)
	}
	hashes := []string{s.Hasher.Hash(store.KindEmail, "sanne.devries@example.nl"), s.Hasher.Hash(store.KindPhone, "+31612345678"),
		s.Hasher.Hash(store.KindHandle, "x:"+samples.SanneXID), s.Hasher.Hash(store.KindHandle, "whatsapp:"+samples.SanneWaID)}
	if subjects, _ := s.Store.FindSubjectsByIdentifierHashes(ctx, hashes); len(subjects) != 0 {
		t.Errorf("the import made Sanne a subject again: %v", subjects)
	}

	// The CRM: once the other customer's post is in, nothing of Sanne's
	// is, and no object holds more records than the other customer's.
	eventually(t, time.Minute, "the other customer's post in the CRM", func() bool {
		return countWhere(s, "SocialPost", "Content", other.Text) == 1
	})
	if left := sanneLeft(s, contact, extra.Text, "NL-48213"); len(left) > 0 {
		t.Errorf("the import brought back into the CRM: %v", left)
	}
	after := crmCounts(s)
	for _, obj := range crmObjects {
		// The other customer's conversation adds a post, a persona and a
		// case at most.
		if grew := after[obj] - before[obj]; grew > 1 || (grew > 0 && obj != "SocialPost" && obj != "SocialPersona" && obj != "Case") {
			t.Errorf("%s: %d records after the import, %d before; want only the other customer's", obj, after[obj], before[obj])
		}
	}
}

// writeJSONL writes events as a JSONL file and returns its path.
func writeJSONL(t *testing.T, events []schemas.Event) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestImportAfterAThreadErasureKeepsOutOnlyTheErasedCustomer erases Bram,
// who replied in Anna's public X thread, and then imports an old export of
// the thread: Bram's reply and the brand's answer to it (whose
// conversation key names Bram's reply, not Anna's tweet) stay out, while
// Anna's messages, one of which the CRM never had, come in.
func TestImportAfterAThreadErasureKeepsOutOnlyTheErasedCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := start(t, stackOptions{})
	at := time.Now().UTC().Add(-time.Hour)
	const root, toAnna, fromBram, toBram = "1796000000000000001", "1796000000000000002", "1796000000000000003", "1796000000000000004"
	brand := func(id, replyTo, text string, m int) []byte {
		return tweetBody(t, id, replyTo, samples.XBrandID, "Webshop Klantenservice", samples.XBrandHandle, text, at.Add(time.Duration(m)*time.Minute))
	}
	bodies := [][]byte{
		tweetBody(t, root, "", annaXID, annaName, annaScreen, annaTweet, at),
		brand(toAnna, root, brandReply, 1),
		tweetBody(t, fromBram, root, bramXID, bramName, bramScreen, bramFirst, at.Add(2*time.Minute)),
		brand(toBram, fromBram, brandToBram, 3),
	}
	var export []schemas.Event
	for _, b := range bodies {
		postTweet(t, s, b)
		export = append(export, sampleEventsOf(t, b)...)
	}
	if export[3].ConversationKey != "x:thread:"+fromBram {
		t.Fatalf("the brand's answer to Bram has conversation key %q; the test needs one that names Bram's reply", export[3].ConversationKey)
	}
	for _, text := range []string{annaTweet, brandReply, bramFirst, brandToBram} {
		eventually(t, time.Minute, "the thread's posts in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", text) == 1 })
	}
	bramHash := s.Hasher.Hash(store.KindHandle, "x:"+bramXID)
	eventually(t, time.Minute, "Bram registered as a subject", func() bool {
		b, err := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{bramHash})
		return err == nil && len(b) == 1
	})

	eraseWith(t, s, map[string]any{"handles": []map[string]string{{"provider": "x", "id": bramXID}}})
	if left := bramLeft(s); len(left) > 0 {
		t.Fatalf("the erasure left Bram's data in the CRM: %v", left)
	}

	// The export also has a message of Anna's in the thread that the
	// webhooks never delivered.
	missed := sampleEventsOf(t, tweetBody(t, "1796000000000000005", root, annaXID, annaName, annaScreen, annaLater, at.Add(4*time.Minute)))[0]
	res, err := ingest.ImportJSONL(ctx, s.Ingestor, s.Store, writeJSONL(t, append(export, missed)), nil)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if res.Suppressed != 2 || res.Accepted != 3 {
		t.Errorf("import: %+v; want Bram's reply and the brand's answer to it suppressed, Anna's tweet, the answer to her and her missed message accepted", res)
	}
	eventually(t, time.Minute, "Anna's missed message in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", annaLater) == 1 })
	if left := bramLeft(s); len(left) > 0 {
		t.Errorf("the import brought Bram's data back into the CRM: %v", left)
	}
	for _, text := range []string{annaTweet, brandReply} {
		if n := countWhere(s, "SocialPost", "Content", text); n != 1 {
			t.Errorf("Anna's thread has %d posts with one text after the import, want 1", n)
		}
	}
	if subjects, _ := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{bramHash}); len(subjects) != 0 {
		t.Errorf("the import made Bram a subject again: %v", subjects)
	}
	keys := []string{s.Hasher.Hash("event", workflows.DedupeKey(export[2])), s.Hasher.Hash("event", workflows.DedupeKey(export[3]))}
	if claimed, err := s.Store.EventConversations(ctx, keys); err != nil || len(claimed) != 0 {
		t.Errorf("the import claimed %d of Bram's reply and the answer to it (%v)", len(claimed), err)
	}
}
