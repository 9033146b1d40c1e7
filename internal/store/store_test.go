package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

var ctx = context.Background()

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsBadInput(t *testing.T) {
	if _, err := store.Open(ctx, "mysql://x", t.TempDir(), nil); err == nil {
		t.Fatal("Open accepted a mysql URL")
	}
	if _, err := store.Open(ctx, "", "", nil); err == nil {
		t.Fatal("Open accepted an empty data dir")
	}
	_, err := store.Open(ctx, "postgres://nobody:s3cretpw@127.0.0.1:1/none?connect_timeout=2", "", nil)
	if err == nil {
		t.Fatal("Open connected to a closed port")
	}
	if strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestMigrationsRerunHarmlessly(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		want, err := store.SchemaVersion(b.Name)
		must(t, err)
		if want < 1 {
			t.Fatalf("schema version %d", want)
		}
		// Open several stores at once on an empty database: the migration
		// lock must let exactly one of them migrate.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := store.Open(ctx, b.DSN, b.DataDir, nil)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err)
		}
		s := b.Open(t, store.Options{})
		must(t, s.Ping(ctx))
		must(t, s.Close())
		s = b.Open(t, store.Options{})
		must(t, s.Ping(ctx))

		db := b.DB(t)
		var n, top int
		must(t, db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &top))
		if n != want || top != want {
			t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, top, want)
		}
	})
}

func TestNewerSchemaIsRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		must(t, s.Close())
		db := b.DB(t)
		_, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)`)
		must(t, err)
		if _, err := store.Open(ctx, b.DSN, b.DataDir, nil); err == nil || !strings.Contains(err.Error(), "upgrade") {
			t.Fatalf("Open of a newer schema: %v, want an error that says to upgrade", err)
		}
	})
}

func TestDataSurvivesReopen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		fresh, err := s.ClaimEvents(ctx, []string{"k1"})
		must(t, err)
		if !fresh[0] {
			t.Fatal("first claim not fresh")
		}
		must(t, s.SetCheckpoint(ctx, "import:a", 42))
		must(t, s.EnqueueInbox(ctx, []store.InboxItem{{ConversationID: "c1", KeyID: "dk", Payload: []byte("x")}}))
		must(t, s.Close())

		s = b.Open(t, store.Options{})
		fresh, err = s.ClaimEvents(ctx, []string{"k1"})
		must(t, err)
		if fresh[0] {
			t.Fatal("claim survived no reopen")
		}
		off, err := s.GetCheckpoint(ctx, "import:a")
		must(t, err)
		if off != 42 {
			t.Fatalf("checkpoint = %d, want 42", off)
		}
		if n, err := s.InboxDepth(ctx); err != nil || n != 1 {
			t.Fatalf("inbox depth = %d, %v; want 1", n, err)
		}
	})
}

func TestDedupe(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		fresh, err := s.ClaimConversationEvents(ctx, []store.EventClaim{
			{Key: "a", ConversationID: "conv1"}, {Key: "b", ConversationID: "conv1"}, {Key: "a", ConversationID: "conv1"},
		})
		must(t, err)
		if !slices.Equal(fresh, []bool{true, true, false}) {
			t.Fatalf("fresh = %v, want [true true false]", fresh)
		}
		fresh, err = s.ClaimEvents(ctx, []string{"b", "c"})
		must(t, err)
		if !slices.Equal(fresh, []bool{false, true}) {
			t.Fatalf("fresh = %v, want [false true]", fresh)
		}
		must(t, s.ReleaseEvents(ctx, []string{"b"}))
		fresh, err = s.ClaimEvents(ctx, []string{"b"})
		must(t, err)
		if !fresh[0] {
			t.Fatal("released key is not claimable again")
		}
		n, err := s.ForgetEvents(ctx, "conv1")
		must(t, err)
		if n != 1 { // "b" was re-claimed without a conversation
			t.Fatalf("forgot %d events, want 1", n)
		}
		fresh, err = s.ClaimEvents(ctx, []string{"a", "c"})
		must(t, err)
		if !slices.Equal(fresh, []bool{true, false}) {
			t.Fatalf("after forget fresh = %v, want [true false]", fresh)
		}
		if _, err := s.ClaimEvents(ctx, []string{""}); err == nil {
			t.Fatal("empty key accepted")
		}
		if fresh, err := s.ClaimEvents(ctx, nil); err != nil || len(fresh) != 0 {
			t.Fatalf("empty claim = %v, %v", fresh, err)
		}
		// More keys than one statement chunk.
		many := make([]string, 1200)
		for i := range many {
			many[i] = fmt.Sprintf("bulk-%d", i)
		}
		fresh, err = s.ClaimEvents(ctx, many)
		must(t, err)
		for i, f := range fresh {
			if !f {
				t.Fatalf("bulk key %d not fresh", i)
			}
		}
	})
}

func TestClaimEventsConcurrentOneWinnerPerKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		const callers, keys = 16, 200
		all := make([]string, keys)
		for i := range all {
			all[i] = fmt.Sprintf("evt-%03d", i)
		}
		wins := make([]atomic.Int32, keys)
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(c), 7))
				order := r.Perm(keys)
				// Claim in batches of 10, each in a shuffled order.
				for lo := 0; lo < keys; lo += 10 {
					batch := make([]string, 0, 10)
					for _, i := range order[lo : lo+10] {
						batch = append(batch, all[i])
					}
					fresh, err := s.ClaimEvents(ctx, batch)
					if err != nil {
						errs <- err
						return
					}
					for j, f := range fresh {
						if f {
							var idx int
							fmt.Sscanf(batch[j], "evt-%03d", &idx)
							wins[idx].Add(1)
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range wins {
			if n := wins[i].Load(); n != 1 {
				t.Fatalf("key %d won %d times, want exactly 1", i, n)
			}
		}
	})
}

func TestConversations(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "c1", Channel: "x", KeyID: "k1", CreatedAt: t0, LastEventAt: t0}))
		// An older event and empty fields change nothing but what they must.
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "c1", LastEventAt: t0.Add(-time.Hour), CreatedAt: t0.Add(time.Hour)}))
		c, err := s.GetConversation(ctx, "c1")
		must(t, err)
		want := store.Conversation{ID: "c1", Channel: "x", KeyID: "k1", CreatedAt: t0, LastEventAt: t0}
		if c != want {
			t.Fatalf("got %+v, want %+v", c, want)
		}
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "c1", SubjectID: "s1", LastEventAt: t0.Add(time.Minute)}))
		c, err = s.GetConversation(ctx, "c1")
		must(t, err)
		if c.SubjectID != "s1" || !c.LastEventAt.Equal(t0.Add(time.Minute)) || c.Channel != "x" {
			t.Fatalf("after update got %+v", c)
		}
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "c2", Channel: "whatsapp", CreatedAt: t0.Add(time.Second)}))
		must(t, s.SetConversationSubject(ctx, "c2", "s1"))
		if err := s.SetConversationSubject(ctx, "nope", "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("set subject of missing conversation: %v", err)
		}
		list, err := s.ConversationsBySubject(ctx, "s1")
		must(t, err)
		if len(list) != 2 || list[0].ID != "c1" || list[1].ID != "c2" {
			t.Fatalf("by subject = %+v", list)
		}

		// DeleteConversation removes everything keyed by the conversation.
		_, err = s.ClaimConversationEvents(ctx, []store.EventClaim{{Key: "e1", ConversationID: "c2"}, {Key: "e2", ConversationID: "c1"},
			{Key: "e3", ConversationID: "c2"}, {Key: "e4"}})
		must(t, err)
		// The conversations of events, as an erasure finds them from the
		// subject's posts in the CRM.
		convs, err := s.ConversationsOfEvents(ctx, []string{"e3", "e1", "e2", "e4", "unknown"})
		must(t, err)
		if !slices.Equal(convs, []string{"c1", "c2"}) {
			t.Fatalf("conversations of events = %v, want c1 and c2 once each", convs)
		}
		if convs, err := s.ConversationsOfEvents(ctx, nil); err != nil || len(convs) != 0 {
			t.Fatalf("conversations of no events = %v, %v", convs, err)
		}
		must(t, s.Park(ctx, store.ParkedMessage{ID: "p1", ConversationID: "c2"}))
		must(t, s.EnqueueInbox(ctx, []store.InboxItem{{ConversationID: "c2"}}))
		_, err = s.CreateReview(ctx, store.Review{ID: "r1", ConversationID: "c2"})
		must(t, err)
		must(t, s.DeleteConversation(ctx, "c2"))
		must(t, s.DeleteConversation(ctx, "c2"))
		if _, err := s.GetConversation(ctx, "c2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted conversation: %v", err)
		}
		if fresh, _ := s.ClaimEvents(ctx, []string{"e1"}); !fresh[0] {
			t.Fatal("dedupe key of deleted conversation still claimed")
		}
		if n, _ := s.CountParked(ctx); n != 0 {
			t.Fatalf("parked = %d after delete", n)
		}
		if n, _ := s.InboxDepth(ctx); n != 0 {
			t.Fatalf("inbox = %d after delete", n)
		}
		if _, err := s.GetReview(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("review of deleted conversation: %v", err)
		}
	})
}

func TestIdentityGraph(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		subj, err := s.CreateSubject(ctx, store.Subject{})
		must(t, err)
		if subj.ID == "" || subj.CreatedAt.IsZero() {
			t.Fatalf("subject = %+v", subj)
		}
		again, err := s.CreateSubject(ctx, store.Subject{ID: subj.ID, CreatedAt: subj.CreatedAt.Add(time.Hour)})
		must(t, err)
		if again != subj {
			t.Fatalf("idempotent create changed the subject: %+v vs %+v", again, subj)
		}
		if _, err := s.GetSubject(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing subject: %v", err)
		}

		ids := []store.Identifier{
			{SubjectID: subj.ID, Kind: store.KindEmail, Hash: "h-email", Ciphertext: []byte{1, 2}, KeyID: "dk1", SourceConversationID: "c1"},
			{SubjectID: subj.ID, Kind: store.KindPhone, Hash: "h-phone", Ciphertext: []byte{3}, KeyID: "dk1"},
		}
		n, err := s.AddIdentifiers(ctx, ids)
		must(t, err)
		if n != 2 {
			t.Fatalf("added %d, want 2", n)
		}
		n, err = s.AddIdentifiers(ctx, ids)
		must(t, err)
		if n != 0 {
			t.Fatalf("re-adding added %d, want 0", n)
		}
		if _, err := s.AddIdentifiers(ctx, []store.Identifier{{SubjectID: subj.ID, Kind: store.KindEmail}}); err == nil {
			t.Fatal("identifier without hash accepted")
		}
		other, err := s.CreateSubject(ctx, store.Subject{ID: "other"})
		must(t, err)
		_, err = s.AddIdentifiers(ctx, []store.Identifier{{SubjectID: other.ID, Kind: store.KindPhone, Hash: "h-phone"}})
		must(t, err)

		got, err := s.IdentifiersBySubject(ctx, subj.ID)
		must(t, err)
		if len(got) != 2 || !bytes.Equal(got[0].Ciphertext, []byte{1, 2}) && !bytes.Equal(got[1].Ciphertext, []byte{1, 2}) {
			t.Fatalf("identifiers = %+v", got)
		}
		found, err := s.FindSubjectsByIdentifierHashes(ctx, []string{"h-phone", "h-unknown"})
		must(t, err)
		wantFound := []string{"other", subj.ID}
		slices.Sort(wantFound)
		if !slices.Equal(found, wantFound) {
			t.Fatalf("found %v, want %v", found, wantFound)
		}
		byHash, err := s.IdentifiersByHashes(ctx, []string{"h-email"})
		must(t, err)
		if len(byHash) != 1 || byHash[0].Kind != store.KindEmail || byHash[0].SourceConversationID != "c1" {
			t.Fatalf("by hash = %+v", byHash)
		}
		if found, err := s.FindSubjectsByIdentifierHashes(ctx, nil); err != nil || len(found) != 0 {
			t.Fatalf("empty lookup = %v, %v", found, err)
		}

		l, err := s.AddLink(ctx, store.Link{SubjectID: subj.ID, Channel: "x", PersonaHash: "p1", CRMPersonaID: "0SP1",
			CRMContactID: "003A", Rule: "email_exact", EvidenceMessageHash: "m1"})
		must(t, err)
		if l.ID == "" || l.RevokedAt != nil {
			t.Fatalf("link = %+v", l)
		}
		same, err := s.AddLink(ctx, l)
		must(t, err)
		if same.ID != l.ID {
			t.Fatal("re-adding the same link made a new one")
		}
		if _, err := s.AddLink(ctx, store.Link{SubjectID: other.ID, Channel: "x", PersonaHash: "p1"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second active link for a persona: %v, want ErrConflict", err)
		}
		byPersona, err := s.LinkByPersona(ctx, "x", "p1")
		must(t, err)
		if byPersona.ID != l.ID || byPersona.CRMContactID != "003A" || byPersona.Rule != "email_exact" {
			t.Fatalf("by persona = %+v", byPersona)
		}
		revokedAt := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		must(t, s.RevokeLink(ctx, l.ID, revokedAt))
		must(t, s.RevokeLink(ctx, l.ID, revokedAt.Add(time.Hour)))
		if err := s.RevokeLink(ctx, "nope", time.Time{}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke missing link: %v", err)
		}
		if _, err := s.LinkByPersona(ctx, "x", "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked link still active: %v", err)
		}
		l2, err := s.AddLink(ctx, store.Link{SubjectID: other.ID, Channel: "x", PersonaHash: "p1", ApprovedBy: "agent-7"})
		must(t, err)
		links, err := s.LinksBySubject(ctx, subj.ID)
		must(t, err)
		if len(links) != 1 || links[0].RevokedAt == nil || !links[0].RevokedAt.Equal(revokedAt) {
			t.Fatalf("links = %+v", links)
		}
		byPersona, err = s.LinkByPersona(ctx, "x", "p1")
		must(t, err)
		if byPersona.ID != l2.ID || byPersona.ApprovedBy != "agent-7" {
			t.Fatalf("relinked persona = %+v", byPersona)
		}
	})
}

func TestMergeSubjects(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		a, err := s.CreateSubject(ctx, store.Subject{ID: "a"})
		must(t, err)
		into, err := s.CreateSubject(ctx, store.Subject{ID: "b"})
		must(t, err)
		_, err = s.AddIdentifiers(ctx, []store.Identifier{
			{SubjectID: a.ID, Kind: store.KindEmail, Hash: "shared"},
			{SubjectID: a.ID, Kind: store.KindPhone, Hash: "only-a"},
			{SubjectID: into.ID, Kind: store.KindEmail, Hash: "shared"},
		})
		must(t, err)
		_, err = s.AddLink(ctx, store.Link{SubjectID: a.ID, Channel: "whatsapp", PersonaHash: "wa"})
		must(t, err)
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "ca", SubjectID: a.ID}))
		must(t, s.PutDataKey(ctx, store.DataKey{ID: "dka", SubjectID: a.ID, Wrapped: []byte("w"), MasterKeyID: "m1"}))
		_, err = s.CreateReview(ctx, store.Review{ID: "ra", SubjectID: a.ID})
		must(t, err)
		// Both wrote in the thread; only a wrote in the DM.
		_, err = s.AddParticipants(ctx, "thread", []string{a.ID, into.ID})
		must(t, err)
		_, err = s.AddParticipants(ctx, "ca", []string{a.ID})
		must(t, err)

		must(t, s.MergeSubjects(ctx, a.ID, into.ID))
		must(t, s.MergeSubjects(ctx, a.ID, into.ID)) // a re-run after a crash is harmless
		if err := s.MergeSubjects(ctx, into.ID, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("merge into a missing subject: %v", err)
		}
		if _, err := s.GetSubject(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("merged subject still exists: %v", err)
		}
		ids, err := s.IdentifiersBySubject(ctx, into.ID)
		must(t, err)
		if len(ids) != 2 {
			t.Fatalf("merged identifiers = %+v", ids)
		}
		if ids, _ := s.IdentifiersBySubject(ctx, a.ID); len(ids) != 0 {
			t.Fatalf("identifiers left on the old subject: %+v", ids)
		}
		if l, err := s.LinkByPersona(ctx, "whatsapp", "wa"); err != nil || l.SubjectID != into.ID {
			t.Fatalf("link after merge = %+v, %v", l, err)
		}
		if cs, _ := s.ConversationsBySubject(ctx, into.ID); len(cs) != 1 {
			t.Fatalf("conversations after merge = %+v", cs)
		}
		if ks, _ := s.DataKeysBySubject(ctx, into.ID); len(ks) != 1 {
			t.Fatalf("keys after merge = %+v", ks)
		}
		if r, _ := s.GetReview(ctx, "ra"); r.SubjectID != into.ID {
			t.Fatalf("review after merge = %+v", r)
		}
		if cs, err := s.ConversationsByParticipant(ctx, into.ID); err != nil || !slices.Equal(sorted(cs), []string{"ca", "thread"}) {
			t.Fatalf("participations after merge = %v, %v; want ca and thread once each", cs, err)
		}
		if cs, _ := s.ConversationsByParticipant(ctx, a.ID); len(cs) != 0 {
			t.Fatalf("participations left on the old subject: %v", cs)
		}
	})
}

func sorted(v []string) []string {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}

func TestParticipants(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		c := newClock()
		s := b.Open(t, store.Options{Now: c.Now})
		for _, id := range []string{"first", "second"} {
			_, err := s.CreateSubject(ctx, store.Subject{ID: id})
			must(t, err)
		}
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "thread", Channel: "x", SubjectID: "first"}))
		// A subject that does not exist (merged away or purged) is refused,
		// and nothing of the call is written.
		if _, err := s.AddParticipants(ctx, "thread", []string{"first", "gone"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("participation of a missing subject: %v, want ErrNotFound", err)
		}
		if got, _ := s.ConversationsByParticipant(ctx, "first"); len(got) != 0 {
			t.Fatalf("a refused call wrote %v", got)
		}
		n, err := s.AddParticipants(ctx, "thread", []string{"first", "second", "first", ""})
		must(t, err)
		if n != 2 {
			t.Fatalf("added %d participants, want 2 (duplicates and empty IDs skipped)", n)
		}
		n, err = s.AddParticipants(ctx, "thread", []string{"second"})
		must(t, err)
		if n != 0 {
			t.Fatalf("re-adding a participant added %d, want 0", n)
		}
		if _, err := s.AddParticipants(ctx, "", []string{"first"}); err == nil {
			t.Fatal("a participant without a conversation was accepted")
		}
		if n, err := s.AddParticipants(ctx, "thread", nil); err != nil || n != 0 {
			t.Fatalf("adding nobody = %d, %v", n, err)
		}
		// A conversation the store has no row for (yet) is still listed:
		// an erasure must not depend on the order of writes.
		c.Advance(time.Minute)
		_, err = s.AddParticipants(ctx, "dm-unrecorded", []string{"second"})
		must(t, err)
		got, err := s.ConversationsByParticipant(ctx, "second")
		must(t, err)
		if !slices.Equal(got, []string{"thread", "dm-unrecorded"}) {
			t.Fatalf("conversations of the second customer = %v, want thread then dm-unrecorded", got)
		}
		if got, _ := s.ConversationsByParticipant(ctx, "nobody"); len(got) != 0 {
			t.Fatalf("conversations of an unknown subject = %v", got)
		}
		// The thread's own subject is the first author only.
		if cs, _ := s.ConversationsBySubject(ctx, "second"); len(cs) != 0 {
			t.Fatalf("the second customer owns %v", cs)
		}

		// Deleting the conversation deletes every participant's row of it,
		// and no other.
		must(t, s.DeleteConversation(ctx, "thread"))
		for _, subj := range []string{"first", "second"} {
			got, err := s.ConversationsByParticipant(ctx, subj)
			must(t, err)
			if slices.Contains(got, "thread") {
				t.Fatalf("%s still participates in the deleted thread", subj)
			}
		}
		if got, _ := s.ConversationsByParticipant(ctx, "second"); !slices.Equal(got, []string{"dm-unrecorded"}) {
			t.Fatalf("after deleting the thread the second customer has %v, want dm-unrecorded", got)
		}
	})
}

// TestParticipantsRaceMerge adds a participation while the subject is
// merged into another: the row ends up on the surviving subject, or the
// add is refused, never on the merged-away subject.
func TestParticipantsRaceMerge(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		for i := range 30 {
			from, into, conv := fmt.Sprintf("from-%d", i), fmt.Sprintf("into-%d", i), fmt.Sprintf("thread-%d", i)
			for _, id := range []string{from, into} {
				_, err := s.CreateSubject(ctx, store.Subject{ID: id})
				must(t, err)
			}
			var wg sync.WaitGroup
			var addErr, mergeErr error
			wg.Add(2)
			go func() { defer wg.Done(); _, addErr = s.AddParticipants(ctx, conv, []string{from}) }()
			go func() { defer wg.Done(); mergeErr = s.MergeSubjects(ctx, from, into) }()
			wg.Wait()
			must(t, mergeErr)
			if addErr != nil && !errors.Is(addErr, store.ErrNotFound) {
				t.Fatal(addErr)
			}
			if got, _ := s.ConversationsByParticipant(ctx, from); len(got) != 0 {
				t.Fatalf("round %d: the merged-away subject still participates in %v", i, got)
			}
			got, _ := s.ConversationsByParticipant(ctx, into)
			if addErr == nil && !slices.Equal(got, []string{conv}) {
				t.Fatalf("round %d: the add succeeded but the surviving subject participates in %v", i, got)
			}
		}
	})
}

func TestPurgeSubjectLeavesOnlyLedgerAndAudit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		const subj = "subject-to-forget-7f3a"
		const conv = "conv-of-subject-7f3a"
		_, err := s.CreateSubject(ctx, store.Subject{ID: subj})
		must(t, err)
		_, err = s.CreateSubject(ctx, store.Subject{ID: "bystander"})
		must(t, err)
		_, err = s.AddIdentifiers(ctx, []store.Identifier{
			{SubjectID: subj, Kind: store.KindEmail, Hash: "he", Ciphertext: []byte("ct"), KeyID: "dk-s", SourceConversationID: conv},
			{SubjectID: "bystander", Kind: store.KindEmail, Hash: "hb"},
		})
		must(t, err)
		_, err = s.AddLink(ctx, store.Link{SubjectID: subj, Channel: "x", PersonaHash: "px"})
		must(t, err)
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: conv, SubjectID: subj, Channel: "x", KeyID: "dk-s"}))
		must(t, s.UpsertConversation(ctx, store.Conversation{ID: "conv-bystander", SubjectID: "bystander"}))
		_, err = s.ClaimConversationEvents(ctx, []store.EventClaim{{Key: "ev1", ConversationID: conv}, {Key: "ev2", ConversationID: "conv-bystander"}})
		must(t, err)
		// Both wrote in each other's public thread.
		_, err = s.AddParticipants(ctx, conv, []string{subj, "bystander"})
		must(t, err)
		_, err = s.AddParticipants(ctx, "conv-bystander", []string{"bystander", subj})
		must(t, err)
		must(t, s.Park(ctx, store.ParkedMessage{ID: "pk", ConversationID: conv, Payload: []byte("enc")}))
		must(t, s.EnqueueInbox(ctx, []store.InboxItem{{ConversationID: conv, KeyID: "dk-s", Payload: []byte("enc")}}))
		_, err = s.CreateReview(ctx, store.Review{ID: "rv", SubjectID: subj, ConversationID: conv})
		must(t, err)
		must(t, s.PutDataKey(ctx, store.DataKey{ID: "dk-s", SubjectID: subj, Wrapped: []byte("wrapped"), MasterKeyID: "m"}))
		_, err = s.CreateDSR(ctx, store.DSR{ID: "dsr1", Type: store.DSRErasure, Status: "executing", SubjectHash: "hs"})
		must(t, err)
		must(t, s.AppendLedger(ctx, store.LedgerEntry{DSRID: "dsr1", System: "store", Action: store.LedgerErased, Detail: subj}))
		must(t, s.AppendAudit(ctx, store.AuditEntry{Actor: "dpo", Action: "dsr.erase", Target: subj}))

		counts, err := s.PurgeSubject(ctx, subj)
		must(t, err)
		want := store.PurgeCounts{"events": 1, "parked": 1, "inbox": 1, "reviews": 1, "conversations": 1,
			"identifiers": 1, "links": 1, "data_keys": 1, "subjects": 1,
			// Both rows of the subject's conversation and the subject's row
			// in the bystander's.
			"participants": 3}
		for k, v := range want {
			if counts[k] != v {
				t.Errorf("purged %s = %d, want %d (all: %v)", k, counts[k], v, counts)
			}
		}
		k, err := s.GetDataKey(ctx, "dk-s")
		must(t, err)
		if k.Wrapped != nil || k.DestroyedAt == nil {
			t.Fatalf("key after purge = %+v, want a tombstone", k)
		}

		// Look underneath the interface: no row outside the ledger and the
		// audit log may still name the subject or its conversation.
		hits := scanAllTables(t, b, []string{subj, conv})
		for _, h := range hits {
			if h.table != "dsr_ledger" && h.table != "audit" {
				t.Errorf("table %s still holds %q", h.table, h.value)
			}
		}
		if len(hits) != 2 {
			t.Errorf("ledger and audit hits = %+v, want the two rows written about the subject", hits)
		}
		// The bystander is untouched.
		if ids, _ := s.IdentifiersBySubject(ctx, "bystander"); len(ids) != 1 {
			t.Fatalf("bystander identifiers = %+v", ids)
		}
		if fresh, _ := s.ClaimEvents(ctx, []string{"ev2"}); fresh[0] {
			t.Fatal("bystander's dedupe key was purged")
		}
		if cs, _ := s.ConversationsByParticipant(ctx, "bystander"); !slices.Equal(cs, []string{"conv-bystander"}) {
			t.Fatalf("bystander's participations after the purge = %v, want only their own conversation", cs)
		}
	})
}

type hit struct{ table, value string }

// scanAllTables reads every row of every table and reports which table
// holds any of the needles, byte for byte.
func scanAllTables(t *testing.T, b storetest.Backend, needles []string) []hit {
	t.Helper()
	db := b.DB(t)
	listQuery := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if b.Name == store.BackendPostgres {
		listQuery = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	rows, err := db.QueryContext(ctx, listQuery)
	must(t, err)
	var tables []string
	for rows.Next() {
		var name string
		must(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	must(t, rows.Err())
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("found only tables %v", tables)
	}
	var hits []hit
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM `+table)
		must(t, err)
		cols, err := rows.Columns()
		must(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			must(t, rows.Scan(ptrs...))
			for _, v := range vals {
				text := fmt.Sprint(v)
				if bs, ok := v.([]byte); ok {
					text = string(bs)
				}
				for _, n := range needles {
					if strings.Contains(text, n) {
						hits = append(hits, hit{table, n})
					}
				}
			}
		}
		must(t, rows.Err())
		rows.Close()
	}
	return hits
}

func TestReviews(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		r1, err := s.CreateReview(ctx, store.Review{ConversationID: "c1", SubjectID: "s1", CandidatesCiphertext: []byte{9, 9},
			Reason: "phone matches 2 contacts", Rule: "phone_exact"})
		must(t, err)
		if r1.ID == "" || r1.Status != store.ReviewOpen || r1.ResolvedAt != nil {
			t.Fatalf("created = %+v", r1)
		}
		again, err := s.CreateReview(ctx, store.Review{ID: r1.ID, Reason: "other"})
		must(t, err)
		if again.Reason != r1.Reason {
			t.Fatal("idempotent create overwrote the review")
		}
		r2, err := s.CreateReview(ctx, store.Review{ID: "r2", CreatedAt: r1.CreatedAt.Add(time.Second)})
		must(t, err)
		if _, err := s.CreateReview(ctx, store.Review{Status: "maybe"}); err == nil {
			t.Fatal("invalid status accepted")
		}

		res, err := s.ResolveReview(ctx, r1.ID, store.ReviewResolution{Status: store.ReviewResolved, ResolvedBy: "agent-1", ContactID: "003B"})
		must(t, err)
		if res.Status != store.ReviewResolved || res.ResolvedBy != "agent-1" || res.ResolvedContactID != "003B" || res.ResolvedAt == nil {
			t.Fatalf("resolved = %+v", res)
		}
		if _, err := s.ResolveReview(ctx, r1.ID, store.ReviewResolution{Status: store.ReviewRejected}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("resolving twice: %v, want ErrConflict", err)
		}
		if _, err := s.ResolveReview(ctx, "nope", store.ReviewResolution{Status: store.ReviewRejected}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("resolving a missing review: %v, want ErrNotFound", err)
		}
		if _, err := s.ResolveReview(ctx, r2.ID, store.ReviewResolution{Status: store.ReviewOpen}); err == nil {
			t.Fatal("resolving to open accepted")
		}
		open, err := s.ListReviews(ctx, store.ReviewOpen)
		must(t, err)
		if len(open) != 1 || open[0].ID != r2.ID {
			t.Fatalf("open reviews = %+v", open)
		}
		all, err := s.ListReviews(ctx, "")
		must(t, err)
		if len(all) != 2 || all[0].ID != r1.ID || !bytes.Equal(all[0].CandidatesCiphertext, []byte{9, 9}) {
			t.Fatalf("all reviews = %+v", all)
		}
		got, err := s.GetReview(ctx, r1.ID)
		must(t, err)
		if got.Status != store.ReviewResolved {
			t.Fatalf("get = %+v", got)
		}
	})
}

func TestConcurrentResolveHasOneWinner(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		r, err := s.CreateReview(ctx, store.Review{})
		must(t, err)
		var ok, conflict atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.ResolveReview(ctx, r.ID, store.ReviewResolution{Status: store.ReviewResolved, ResolvedBy: fmt.Sprint(i)})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflict.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || conflict.Load() != 7 {
			t.Fatalf("%d resolved, %d conflicts; want 1 and 7", ok.Load(), conflict.Load())
		}
	})
}

func TestKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		k1 := store.DataKey{ID: "k1", SubjectID: "s1", Wrapped: []byte("wrapped-1"), MasterKeyID: "m1",
			CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		must(t, s.PutDataKey(ctx, k1))
		must(t, s.PutDataKey(ctx, store.DataKey{ID: "k1", SubjectID: "evil", Wrapped: []byte("other"), MasterKeyID: "m9"}))
		got, err := s.GetDataKey(ctx, "k1")
		must(t, err)
		if got.SubjectID != "s1" || string(got.Wrapped) != "wrapped-1" || got.MasterKeyID != "m1" || !got.CreatedAt.Equal(k1.CreatedAt) || got.DestroyedAt != nil {
			t.Fatalf("key overwritten or mangled: %+v", got)
		}
		if _, err := s.GetDataKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing key: %v", err)
		}
		if err := s.PutDataKey(ctx, store.DataKey{ID: "k0"}); err == nil {
			t.Fatal("key without wrapped bytes accepted")
		}
		must(t, s.PutDataKey(ctx, store.DataKey{ID: "k2", Wrapped: []byte("wrapped-2"), MasterKeyID: "m1"}))
		must(t, s.PutDataKey(ctx, store.DataKey{ID: "k3", Wrapped: []byte("wrapped-3"), MasterKeyID: "m2"}))
		must(t, s.AssignDataKeys(ctx, []string{"k2", "k3"}, "s1"))
		if err := s.AssignDataKeys(ctx, []string{"k2", "ghost"}, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("assign with a missing key: %v", err)
		}
		keys, err := s.DataKeysBySubject(ctx, "s1")
		must(t, err)
		if len(keys) != 3 || keys[0].ID != "k1" {
			t.Fatalf("keys by subject = %+v", keys)
		}

		byMaster, err := s.DataKeysByMaster(ctx, "m1", 1)
		must(t, err)
		if len(byMaster) != 1 || byMaster[0].ID != "k1" {
			t.Fatalf("by master (limit 1) = %+v", byMaster)
		}
		must(t, s.RewrapDataKey(ctx, "k1", []byte("rewrapped-1"), "m2"))
		byMaster, err = s.DataKeysByMaster(ctx, "m1", 10)
		must(t, err)
		if len(byMaster) != 1 || byMaster[0].ID != "k2" {
			t.Fatalf("by master after rewrap = %+v", byMaster)
		}
		if err := s.RewrapDataKey(ctx, "nope", []byte("x"), "m2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rewrap missing: %v", err)
		}

		n, err := s.DestroyDataKeys(ctx, "s1")
		must(t, err)
		if n != 3 {
			t.Fatalf("destroyed %d, want 3", n)
		}
		n, err = s.DestroyDataKeys(ctx, "s1")
		must(t, err)
		if n != 0 {
			t.Fatalf("destroying again destroyed %d, want 0", n)
		}
		for _, id := range []string{"k1", "k2", "k3"} {
			k, err := s.GetDataKey(ctx, id)
			must(t, err)
			if k.Wrapped != nil || k.DestroyedAt == nil || k.SubjectID != "s1" {
				t.Fatalf("key %s after destroy = %+v, want a tombstone", id, k)
			}
		}
		// The wrapped bytes are gone from the database, not only hidden.
		var nonNull int
		must(t, b.DB(t).QueryRowContext(ctx, `SELECT COUNT(*) FROM data_keys WHERE wrapped IS NOT NULL`).Scan(&nonNull))
		if nonNull != 0 {
			t.Fatalf("%d wrapped keys remain in the table", nonNull)
		}
		if err := s.RewrapDataKey(ctx, "k2", []byte("resurrect"), "m3"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("rewrap of a destroyed key: %v, want ErrConflict", err)
		}
		if ks, _ := s.DataKeysByMaster(ctx, "m2", 0); len(ks) != 0 {
			t.Fatalf("destroyed keys offered for rotation: %+v", ks)
		}
		must(t, s.PutDataKey(ctx, store.DataKey{ID: "k2", Wrapped: []byte("again"), MasterKeyID: "m1"}))
		if k, _ := s.GetDataKey(ctx, "k2"); k.Wrapped != nil {
			t.Fatal("PutDataKey brought a destroyed key back")
		}
	})
}

func TestSuppression(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		if hit, err := s.AnySuppressed(ctx, []string{"a"}); err != nil || hit {
			t.Fatalf("empty list: %v, %v", hit, err)
		}
		must(t, s.AddSuppressed(ctx, []string{"a", "b", "a", ""}, "dsr1"))
		must(t, s.AddSuppressed(ctx, []string{"b"}, "dsr2"))
		for _, tc := range []struct {
			hashes []string
			want   bool
		}{{[]string{"x", "b"}, true}, {[]string{"a"}, true}, {[]string{"x", "y"}, false}, {nil, false}} {
			got, err := s.AnySuppressed(ctx, tc.hashes)
			must(t, err)
			if got != tc.want {
				t.Errorf("AnySuppressed(%v) = %v, want %v", tc.hashes, got, tc.want)
			}
		}
	})
}

func TestDSRsAndLedger(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		clk := newClock()
		s := b.Open(t, store.Options{Now: clk.Now})
		recv := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		d, err := s.CreateDSR(ctx, store.DSR{ID: "d1", Type: store.DSRErasure, Status: "discovering", SubjectHash: "sh",
			ReceivedAt: recv, Deadline: recv.AddDate(0, 1, 0), ReportJSON: []byte(`{"a":1}`)})
		must(t, err)
		if !d.CreatedAt.Equal(clk.Now()) || !d.UpdatedAt.Equal(clk.Now()) || !d.Deadline.Equal(recv.AddDate(0, 1, 0)) {
			t.Fatalf("created = %+v", d)
		}
		if _, err := s.CreateDSR(ctx, store.DSR{ID: "d1", Type: store.DSRAccess}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate DSR: %v", err)
		}
		if _, err := s.CreateDSR(ctx, store.DSR{Type: "delete-everything"}); err == nil {
			t.Fatal("bad type accepted")
		}
		_, err = s.CreateDSR(ctx, store.DSR{ID: "d2", Type: store.DSRAccess, Status: "done", SubjectHash: "other", ReceivedAt: recv.Add(time.Hour)})
		must(t, err)

		// Optimistic update: the stale copy loses.
		stale := d
		d.Status, d.Extended, d.ExtensionReason = "awaiting_approval", true, "complex request"
		approved := recv.Add(2 * time.Hour)
		d.ApprovedAt, d.ApprovedBy = &approved, "dpo"
		upd, err := s.UpdateDSR(ctx, d)
		must(t, err)
		if !upd.UpdatedAt.After(d.UpdatedAt) || upd.Status != "awaiting_approval" || !upd.Extended || upd.ApprovedAt == nil || !upd.ApprovedAt.Equal(approved) {
			t.Fatalf("updated = %+v", upd)
		}
		stale.Status = "lost-update"
		if _, err := s.UpdateDSR(ctx, stale); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale update: %v, want ErrConflict", err)
		}
		plain := upd
		plain.UpdatedAt, plain.Status = time.Time{}, "executing"
		upd2, err := s.UpdateDSR(ctx, plain)
		must(t, err)
		if upd2.Status != "executing" || !upd2.UpdatedAt.After(upd.UpdatedAt) || !upd2.CreatedAt.Equal(d.CreatedAt) {
			t.Fatalf("plain update = %+v", upd2)
		}
		if _, err := s.UpdateDSR(ctx, store.DSR{ID: "missing", Type: store.DSRAccess}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		got, err := s.GetDSR(ctx, "d1")
		must(t, err)
		if string(got.ReportJSON) != `{"a":1}` || got.VerifiedBy != "" || got.Status != "executing" {
			t.Fatalf("get = %+v", got)
		}
		if _, err := s.GetDSR(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		list, err := s.ListDSRs(ctx, store.DSRFilter{})
		must(t, err)
		if len(list) != 2 || list[0].ID != "d1" {
			t.Fatalf("list = %+v", list)
		}
		list, err = s.ListDSRs(ctx, store.DSRFilter{Type: store.DSRAccess, SubjectHash: "other", Status: "done", Limit: 5})
		must(t, err)
		if len(list) != 1 || list[0].ID != "d2" {
			t.Fatalf("filtered list = %+v", list)
		}

		must(t, s.AppendLedger(ctx, store.LedgerEntry{ID: "d1/crm/erase", DSRID: "d1", System: "salesforce", Action: store.LedgerErased, Count: 3, Policy: "delete"}))
		must(t, s.AppendLedger(ctx, store.LedgerEntry{ID: "d1/crm/erase", DSRID: "d1", System: "salesforce", Action: store.LedgerErased, Count: 3}))
		must(t, s.AppendLedger(ctx, store.LedgerEntry{DSRID: "d1", System: "x", Action: store.LedgerNotPossible, Detail: "inbound DM"}))
		must(t, s.AppendLedger(ctx, store.LedgerEntry{DSRID: "d1", System: "x", Action: store.LedgerNotPossible, Detail: "inbound DM"}))
		if err := s.AppendLedger(ctx, store.LedgerEntry{DSRID: "d1"}); err == nil {
			t.Fatal("ledger entry without system and action accepted")
		}
		ledger, err := s.LedgerByDSR(ctx, "d1")
		must(t, err)
		if len(ledger) != 3 || ledger[0].ID != "d1/crm/erase" || ledger[0].Count != 3 || ledger[0].Policy != "delete" || ledger[1].ID != "" || ledger[1].Seq <= ledger[0].Seq {
			t.Fatalf("ledger = %+v", ledger)
		}
		assertAppendOnly(t, b, "dsr_ledger", "detail")
	})
}

func TestAuditIsAppendOnly(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		clk := newClock()
		s := b.Open(t, store.Options{Now: clk.Now})
		must(t, s.AppendAudit(ctx, store.AuditEntry{Actor: "token:ops", Action: "dsr.create", Target: "d1", Outcome: "ok", RemoteAddr: "127.0.0.1"}))
		clk.Advance(time.Minute)
		mid := clk.Now()
		must(t, s.AppendAudit(ctx, store.AuditEntry{Actor: "token:ops", Action: "dsr.approve", Target: "d1", Outcome: "ok"}))
		clk.Advance(time.Minute)
		must(t, s.AppendAudit(ctx, store.AuditEntry{Actor: "token:dpo", Action: "dsr.report", Target: "d1", Outcome: "denied"}))
		if err := s.AppendAudit(ctx, store.AuditEntry{}); err == nil {
			t.Fatal("audit entry without action accepted")
		}
		all, err := s.ListAudit(ctx, time.Time{}, 0)
		must(t, err)
		if len(all) != 3 || all[0].Action != "dsr.create" || all[0].RemoteAddr != "127.0.0.1" || all[2].Outcome != "denied" {
			t.Fatalf("audit = %+v", all)
		}
		since, err := s.ListAudit(ctx, mid, 1)
		must(t, err)
		if len(since) != 1 || since[0].Action != "dsr.approve" || !since[0].At.Equal(mid) {
			t.Fatalf("since = %+v", since)
		}
		assertAppendOnly(t, b, "audit", "outcome")
		after, err := s.ListAudit(ctx, time.Time{}, 0)
		must(t, err)
		if !slices.Equal(all, after) {
			t.Fatalf("audit changed: %+v", after)
		}
	})
}

// assertAppendOnly tries UPDATE and DELETE (and TRUNCATE on PostgreSQL) on
// a table through a raw connection and checks that the database refused
// them all and left the rows alone.
func assertAppendOnly(t *testing.T, b storetest.Backend, table, column string) {
	t.Helper()
	db := b.DB(t)
	count := func() int {
		var n int
		must(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n))
		return n
	}
	before := count()
	if before == 0 {
		t.Fatalf("%s is empty; the test needs rows", table)
	}
	stmts := []string{
		`UPDATE ` + table + ` SET ` + column + ` = 'tampered'`,
		`DELETE FROM ` + table,
	}
	if b.Name == store.BackendPostgres {
		stmts = append(stmts, `TRUNCATE `+table)
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%q: %v, want an append-only error", st, err)
		}
	}
	if after := count(); after != before {
		t.Fatalf("%s has %d rows, had %d", table, after, before)
	}
	var tampered int
	must(t, db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+column+` = 'tampered'`).Scan(&tampered))
	if tampered != 0 {
		t.Fatalf("%d rows of %s were updated", tampered, table)
	}
}

func TestParked(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		m := store.ParkedMessage{ID: "p1", ConversationID: "c1", PlatformMessageHash: "mh", Payload: []byte{0, 1, 2},
			KeyID: "dk", ErrorCode: "REQUIRED_FIELD_MISSING", Reason: "required field missing", Fields: []string{"LastName"}, ParkedAt: t0}
		must(t, s.Park(ctx, m))
		must(t, s.Park(ctx, store.ParkedMessage{ID: "p2", ParkedAt: t0.Add(time.Second)}))
		got, err := s.GetParked(ctx, "p1")
		must(t, err)
		if got.ErrorCode != m.ErrorCode || !slices.Equal(got.Fields, m.Fields) || !bytes.Equal(got.Payload, m.Payload) || !got.ParkedAt.Equal(t0) {
			t.Fatalf("parked = %+v", got)
		}
		m.Reason, m.Fields = "still failing", []string{"LastName", "Email"}
		must(t, s.Park(ctx, m))
		if n, _ := s.CountParked(ctx); n != 2 {
			t.Fatalf("count = %d, want 2", n)
		}
		list, err := s.ListParked(ctx, 0)
		must(t, err)
		if len(list) != 2 || list[0].ID != "p1" || list[0].Reason != "still failing" || len(list[0].Fields) != 2 || list[1].Fields == nil {
			t.Fatalf("list = %+v", list)
		}
		if list, _ := s.ListParked(ctx, 1); len(list) != 1 {
			t.Fatalf("limited list = %+v", list)
		}
		must(t, s.DeleteParked(ctx, "p1"))
		if err := s.DeleteParked(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete again: %v", err)
		}
		if _, err := s.GetParked(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
	})
}

func TestCheckpoints(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		off, err := s.GetCheckpoint(ctx, "import:file.jsonl")
		must(t, err)
		if off != 0 {
			t.Fatalf("absent checkpoint = %d", off)
		}
		must(t, s.SetCheckpoint(ctx, "import:file.jsonl", 1<<40))
		must(t, s.SetCheckpoint(ctx, "import:other", 5))
		must(t, s.SetCheckpoint(ctx, "import:file.jsonl", 1<<41))
		off, err = s.GetCheckpoint(ctx, "import:file.jsonl")
		must(t, err)
		if off != 1<<41 {
			t.Fatalf("checkpoint = %d", off)
		}
		if err := s.SetCheckpoint(ctx, "", 1); err == nil {
			t.Fatal("empty name accepted")
		}
	})
}

func TestInbox(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		clk := newClock()
		s := b.Open(t, store.Options{Now: clk.Now, InboxLease: time.Minute})
		must(t, s.EnqueueInbox(ctx, []store.InboxItem{
			{ConversationID: "c1", KeyID: "k1", Payload: []byte("one")},
			{ConversationID: "c1", KeyID: "k1", Payload: []byte("two")},
		}))
		must(t, s.EnqueueInbox(ctx, []store.InboxItem{{ConversationID: "c2", KeyID: "k2", Payload: []byte("three")}}))
		must(t, s.EnqueueInbox(ctx, nil))
		if n, _ := s.InboxDepth(ctx); n != 3 {
			t.Fatalf("depth = %d, want 3", n)
		}
		first, err := s.ClaimInbox(ctx, 2)
		must(t, err)
		if len(first) != 2 || string(first[0].Payload) != "one" || string(first[1].Payload) != "two" || first[0].Seq >= first[1].Seq ||
			first[0].KeyID != "k1" || !first[0].EnqueuedAt.Equal(clk.Now()) {
			t.Fatalf("first claim = %+v", first)
		}
		second, err := s.ClaimInbox(ctx, 10)
		must(t, err)
		if len(second) != 1 || string(second[0].Payload) != "three" {
			t.Fatalf("leased items offered again: %+v", second)
		}
		if none, _ := s.ClaimInbox(ctx, 10); len(none) != 0 {
			t.Fatalf("claim with everything leased = %+v", none)
		}
		must(t, s.AckInbox(ctx, []int64{first[0].Seq}))
		must(t, s.ReleaseInbox(ctx, []int64{second[0].Seq}))
		again, err := s.ClaimInbox(ctx, 10)
		must(t, err)
		if len(again) != 1 || again[0].Seq != second[0].Seq {
			t.Fatalf("released item not offered: %+v", again)
		}
		// Leases expire: a relay that died leaves nothing stuck.
		clk.Advance(time.Minute + time.Second)
		expired, err := s.ClaimInbox(ctx, 10)
		must(t, err)
		if len(expired) != 2 || expired[0].Seq != first[1].Seq || expired[1].Seq != second[0].Seq {
			t.Fatalf("after lease expiry = %+v", expired)
		}
		must(t, s.AckInbox(ctx, []int64{expired[0].Seq, expired[1].Seq}))
		if n, _ := s.InboxDepth(ctx); n != 0 {
			t.Fatalf("depth after ack = %d", n)
		}
		if _, err := s.ClaimInbox(ctx, 0); err == nil {
			t.Fatal("claim with limit 0 accepted")
		}
	})
}

func TestInboxGroupCommitConcurrent(t *testing.T) {
	for _, window := range []time.Duration{0, 2 * time.Millisecond} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, b storetest.Backend) {
				s := b.Open(t, store.Options{GroupCommitWindow: window, GroupCommitMaxItems: 50})
				const callers, calls = 32, 20
				var wg sync.WaitGroup
				errs := make(chan error, callers)
				for c := range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range calls {
							item := store.InboxItem{ConversationID: fmt.Sprintf("c%d", c), Payload: []byte(fmt.Sprintf("%d/%d", c, i))}
							if err := s.EnqueueInbox(ctx, []store.InboxItem{item, item}); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				items, err := s.ClaimInbox(ctx, 10*callers*calls)
				must(t, err)
				if len(items) != 2*callers*calls {
					t.Fatalf("stored %d items, want %d", len(items), 2*callers*calls)
				}
				// Per caller, items keep the order of the calls.
				next := map[string]int{}
				for _, it := range items {
					var c, i int
					fmt.Sscanf(string(it.Payload), "%d/%d", &c, &i)
					key := it.ConversationID
					if i < next[key] {
						t.Fatalf("caller %d: item %d after %d", c, i, next[key])
					}
					next[key] = i
				}
			})
		})
	}
}

func TestEnqueueAfterCloseFails(t *testing.T) {
	b := storetest.SQLite(t)
	s, err := store.Open(ctx, b.DSN, b.DataDir, nil)
	must(t, err)
	must(t, s.Close())
	must(t, s.Close())
	if err := s.EnqueueInbox(ctx, []store.InboxItem{{ConversationID: "c"}}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("enqueue after close: %v, want ErrClosed", err)
	}
}

// TestErrorsCarryNoValues checks that errors carry no stored values.
func TestErrorsCarryNoValues(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := b.Open(t, store.Options{})
		const secret = "jan.jansen@example.nl"
		_, err := s.AddLink(ctx, store.Link{SubjectID: "s", Channel: "x", PersonaHash: secret})
		must(t, err)
		_, err = s.AddLink(ctx, store.Link{SubjectID: "t", Channel: "x", PersonaHash: secret})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("conflict error = %v", err)
		}
		_, err = s.CreateDSR(ctx, store.DSR{ID: secret, Type: store.DSRAccess})
		must(t, err)
		_, err = s.CreateDSR(ctx, store.DSR{ID: secret, Type: store.DSRAccess})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("duplicate DSR error = %v", err)
		}
	})
}
