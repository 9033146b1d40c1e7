package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/privacyscan"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// The two customers of the public thread.
const (
	annaXID    = "2900000000000000611"
	annaScreen = "anna_hoekstra_nl"
	annaName   = "Anna Hoekstra"
	bramXID    = "2900000000000000733"
	bramScreen = "bram_dekker_nl"
	bramName   = "Bram Dekker"
)

// The thread: Anna's tweet, the brand's answer and Bram's two replies,
// all answering Anna's tweet, and the brand's answer to Bram's first
// reply, which X's webhook names as answering that reply only: all in one
// conversation.
var (
	annaTweet   = "@webshop_nl mijn nieuwe koptelefoon kraakt aan de linkerkant, wat nu?"
	brandReply  = "@anna_hoekstra_nl Vervelend! Stuur ons een DM met je ordernummer, dan regelen we een omruiling. ^JV"
	bramFirst   = "@webshop_nl precies hetzelfde probleem met mijn exemplaar uit de Amersfoortse winkel"
	bramSecond  = "@webshop_nl en de oplader van mijn broertje werkt sinds gisteren ook niet meer"
	annaLater   = "@webshop_nl DM is verstuurd, dank jullie voor het snelle antwoord!"
	brandToBram = "@bram_dekker_nl Dat is niet de bedoeling! Stuur ons ook een DM, dan kijken we naar allebei. ^JV"
)

// tweetBody is an X Account Activity webhook with one tweet in reply to
// replyTo ("" for none).
func tweetBody(t *testing.T, id, replyTo, userID, name, screen, text string, at time.Time) []byte {
	t.Helper()
	tw := map[string]any{
		"created_at": at.Format("Mon Jan 02 15:04:05 -0700 2006"), "id": json.Number(id), "id_str": id,
		"text": text, "truncated": false, "in_reply_to_status_id": nil, "in_reply_to_status_id_str": nil,
		"user":     map[string]any{"id": json.Number(userID), "id_str": userID, "name": name, "screen_name": screen},
		"entities": map[string]any{"hashtags": []any{}, "urls": []any{}, "user_mentions": []any{}, "symbols": []any{}},
		"lang":     "nl", "timestamp_ms": strconv.FormatInt(at.UnixMilli(), 10),
	}
	if replyTo != "" {
		tw["in_reply_to_status_id"] = json.Number(replyTo)
		tw["in_reply_to_status_id_str"] = replyTo
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"for_user_id": samples.XBrandID, "tweet_create_events": []any{tw}}); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// postTweet posts one tweet webhook and fails the test unless it is
// accepted.
func postTweet(t *testing.T, s *stack, body []byte) {
	t.Helper()
	if code, b, err := s.hooks.Post(context.Background(), "x", body); err != nil || code != 200 {
		t.Fatalf("X webhook: %d %s %v", code, b, err)
	}
}

// bramLeft lists what the sandbox CRM still holds of Bram, by object,
// the Recycle Bin included.
func bramLeft(s *stack) []string {
	var left []string
	for _, obj := range []string{"Contact", "SocialPersona", "SocialPost", "Case", "Task"} {
		for _, r := range s.Sandbox.AllRecords(obj) {
			where := obj
			if r["IsDeleted"] == true {
				where += " (Recycle Bin)"
			}
			delete(r, "attributes")
			raw, _ := json.Marshal(r)
			for _, hit := range containsAny(string(raw), bramXID, bramScreen, bramName, bramFirst, bramSecond, brandToBram) {
				left = append(left, where+": "+hit)
			}
		}
	}
	return left
}

// TestThreadErasureOfTheSecondCustomer runs a public X thread that
// customer Anna started and customer Bram replied in, with the brand's
// answer to Bram's reply in a later webhook (which names only Bram's
// reply, not Anna's tweet): the whole thread is one conversation and one
// Case. It then erases Bram by his handle: his texts, and the brand's
// answer that names him, are nowhere in the CRM, the store, the Temporal
// database files or the logs, and the thread's recorded payloads no
// longer decrypt; Anna's posts stay in the CRM, and her next message in
// the thread syncs.
func TestThreadErasureOfTheSecondCustomer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// Temporal on disk, so that its database files can be scanned; the
	// durable inbox, as in production.
	s := start(t, stackOptions{dataDir: dir, parts: &app.Parts{
		Embedded: true, EphemeralPorts: true, Sandbox: true, Worker: true, HTTP: true, DevSecrets: true, Inbox: true,
		ConversationIdle: time.Hour,
	}})
	at := time.Now().UTC().Add(-time.Hour)
	const root = "1795000000000000001"
	postTweet(t, s, tweetBody(t, root, "", annaXID, annaName, annaScreen, annaTweet, at))
	postTweet(t, s, tweetBody(t, "1795000000000000002", root, samples.XBrandID, "Webshop Klantenservice", samples.XBrandHandle, brandReply, at.Add(time.Minute)))
	postTweet(t, s, tweetBody(t, "1795000000000000003", root, bramXID, bramName, bramScreen, bramFirst, at.Add(2*time.Minute)))
	postTweet(t, s, tweetBody(t, "1795000000000000004", root, bramXID, bramName, bramScreen, bramSecond, at.Add(3*time.Minute)))
	// The brand answers Bram's first reply. X's webhook for it carries
	// that reply's id as in_reply_to_status_id, not Anna's tweet.
	const toBram = "1795000000000000006"
	toBramBody := tweetBody(t, toBram, "1795000000000000003", samples.XBrandID, "Webshop Klantenservice", samples.XBrandHandle, brandToBram, at.Add(4*time.Minute))
	if own := sampleEventsOf(t, toBramBody)[0].ConversationKey; own != "x:thread:1795000000000000003" {
		t.Fatalf("the brand's answer to Bram parses with conversation key %q; the test needs one that names Bram's reply, not the thread's root", own)
	}
	postTweet(t, s, toBramBody)
	for _, text := range []string{annaTweet, brandReply, bramFirst, bramSecond, brandToBram} {
		eventually(t, time.Minute, "the thread's posts in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", text) == 1 })
	}
	// One Case holds the whole thread, the brand's answer to Bram too.
	caseOf := func(text string) any {
		for _, r := range s.Sandbox.Records("SocialPost") {
			if r["Content"] == text {
				return r["ParentId"]
			}
		}
		return nil
	}
	threadCase := caseOf(annaTweet)
	if threadCase == nil || threadCase == "" {
		t.Fatal("Anna's tweet has no Case")
	}
	eventually(t, time.Minute, "the brand's answer to Bram in the thread's Case", func() bool { return caseOf(brandToBram) == threadCase })
	if n := len(s.Sandbox.Records("Case")); n != 1 {
		t.Errorf("the thread is %d Cases in the CRM, want 1", n)
	}

	// Bram is a subject and a participant of Anna's thread; the thread
	// belongs to Anna.
	conv := s.Ingestor.ConversationID(sampleEventsOf(t, tweetBody(t, root, "", annaXID, annaName, annaScreen, annaTweet, at))[0])
	annaHash := s.Hasher.Hash(store.KindHandle, "x:"+annaXID)
	bramHash := s.Hasher.Hash(store.KindHandle, "x:"+bramXID)
	var anna, bram string
	eventually(t, time.Minute, "both customers registered as participants of the thread", func() bool {
		a, err1 := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{annaHash})
		b, err2 := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{bramHash})
		if err1 != nil || err2 != nil || len(a) != 1 || len(b) != 1 {
			return false
		}
		anna, bram = a[0], b[0]
		cs, err := s.Store.ConversationsByParticipant(ctx, bram)
		return err == nil && slices.Equal(cs, []string{conv})
	})
	if c, err := s.Store.GetConversation(ctx, conv); err != nil || c.SubjectID != anna {
		t.Fatalf("the thread's subject is %q (%v), want Anna's %q", c.SubjectID, err, anna)
	}
	recorded := history(ctx, t, s.App, conv)
	if len(recorded) == 0 {
		t.Fatal("recorded no payloads of the thread")
	}
	// The scan sees the Temporal database: the thread's key id is stored
	// in clear beside its ciphertexts.
	rep, err := privacyscan.Scan(dir, keyIDNeedles([]string{conv}))
	if err != nil {
		t.Fatal(err)
	}
	if rep.CountIn("key-id", "temporal/") == 0 {
		t.Fatalf("the scan finds none of the thread's key ids in the Temporal database: it cannot see payloads\n%s", reportText(rep))
	}

	// Erase Bram, by his handle only.
	eraseWith(t, s, map[string]any{"handles": []map[string]string{{"provider": "x", "id": bramXID}}})

	// The CRM: Bram is gone, Anna's tweet and the brand's answer to her
	// stay.
	if left := bramLeft(s); len(left) > 0 {
		t.Errorf("the CRM still holds Bram's data: %v", left)
	}
	for _, text := range []string{annaTweet, brandReply} {
		if n := countWhere(s, "SocialPost", "Content", text); n != 1 {
			t.Errorf("Anna's thread lost a post in the CRM (%d left)", n)
		}
	}
	if n := countWhere(s, "SocialPersona", "ExternalId", annaXID); n != 1 {
		t.Errorf("Anna's persona: %d in the CRM, want 1", n)
	}
	// The store: Bram's subject and the thread are gone, Anna stays.
	if subjects, _ := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{bramHash}); len(subjects) != 0 {
		t.Errorf("subjects %v still hold Bram's handle", subjects)
	}
	if _, err := s.Store.GetConversation(ctx, conv); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the thread is still in the store: %v", err)
	}
	if _, err := s.Store.GetSubject(ctx, anna); err != nil {
		t.Errorf("Anna's subject is gone: %v", err)
	}
	// Temporal: the thread's execution is deleted, and its recorded
	// payloads do not decrypt, even with the master key.
	var nf *serviceerror.NotFound
	if _, err := s.Client.DescribeWorkflowExecution(ctx, conv, ""); !errors.As(err, &nf) {
		t.Errorf("the thread's execution is still in Temporal: %v", err)
	}
	mk, err := privacy.LoadMasterKeys(s.Cfg.Secrets.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	dc := privacy.NewDataConverter(privacy.NewKeyring(testKeyStore{s.Store}, mk, nil, privacy.WithCacheTTL(0)))
	for _, p := range recorded {
		var v any
		if err := dc.FromPayload(p, &v); !errors.Is(err, privacy.ErrErased) {
			t.Errorf("a recorded payload of the thread decodes after the erasure (%v), want privacy.ErrErased", err)
			break
		}
	}

	// Anna writes again in the thread: it syncs, under a fresh key, as a
	// new conversation run that belongs to her.
	postTweet(t, s, tweetBody(t, "1795000000000000005", root, annaXID, annaName, annaScreen, annaLater, time.Now().UTC()))
	eventually(t, 2*time.Minute, "Anna's next message in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", annaLater) == 1 })
	eventually(t, time.Minute, "the thread back in the store under Anna", func() bool {
		c, err := s.Store.GetConversation(ctx, conv)
		return err == nil && c.SubjectID == anna
	})
	if cs, _ := s.Store.ConversationsByParticipant(ctx, anna); !slices.Equal(cs, []string{conv}) {
		t.Errorf("Anna participates in %v after her next message, want the thread", cs)
	}

	// Nothing of Bram in any file of the data dir (Temporal's and the
	// store's SQLite databases and WALs), the store's PostgreSQL tables or
	// the logs, in any encoding.
	needles := privacyscan.Subject{
		Handles: []string{bramXID, bramScreen}, Names: []string{bramName}, Texts: []string{bramFirst, bramSecond, brandToBram},
	}.Needles()
	rep, err = privacyscan.Scan(dir, needles, append(storeReaders(ctx, t, s.Cfg.DatabaseURL),
		privacyscan.NamedReader{Name: "logs", R: bytes.NewReader(s.logs.Bytes())})...)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total() != 0 {
		t.Errorf("after the erasure Bram's data is still readable:\n%s", reportText(rep))
	}
	if len(rep.Sources) < 3 {
		t.Errorf("the scan read only %d sources", len(rep.Sources))
	}
	t.Logf("scanned %d sources for %d needles after the erasure; %d payloads of the thread recorded before it", len(rep.Sources), len(needles), len(recorded))
}

// sampleEventsOf parses one X webhook body into events.
func sampleEventsOf(t *testing.T, body []byte) []schemas.Event {
	t.Helper()
	return sampleEvents(t, samples.Conversation{Name: "thread", Channel: "x", Payloads: []samples.Payload{{Channel: "x", Body: body}}})
}
