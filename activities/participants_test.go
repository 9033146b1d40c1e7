package activities_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/mocks"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

var ctx = context.Background()

// echoCRM writes every event and hands the state back unchanged, as a
// connector does with the fields it does not own.
type echoCRM struct{}

func (echoCRM) Sync(_ context.Context, b crm.SyncBatch) (crm.SyncResult, error) {
	res := crm.SyncResult{State: b.State, Calls: 1}
	for _, e := range b.Events {
		res.Written = append(res.Written, e.PlatformMessageID)
	}
	return res, nil
}
func (echoCRM) FindContacts(context.Context, crm.ContactQuery) ([]crm.Contact, error) {
	return nil, nil
}
func (echoCRM) CreateContact(context.Context, crm.Contact) (string, error)     { return "", nil }
func (echoCRM) LinkPersonas(context.Context, []string, string, []string) error { return nil }
func (echoCRM) Probe(context.Context) error                                    { return nil }

// sealer marks sealed bytes; hasher makes readable "hashes". Neither is
// cryptography: the tests look at which calls are made.
type sealer struct{}

func (sealer) Seal(_ context.Context, keyID string, p []byte) ([]byte, error) {
	return append([]byte("sealed:"+keyID+":"), p...), nil
}
func (sealer) Open(_ context.Context, keyID string, c []byte) ([]byte, error) {
	return c[len("sealed:"+keyID+":"):], nil
}

type hasher struct{}

func (hasher) Hash(kind, value string) string { return "h(" + kind + "|" + value + ")" }

// keys records which subject each key name was merged into, and which
// subjects were destroyed.
type keys struct {
	sealer
	mu        sync.Mutex
	owner     map[string]string
	destroyed []string
}

func (k *keys) Merge(_ context.Context, names []string, subjectID string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.owner == nil {
		k.owner = map[string]string{}
	}
	for _, n := range names {
		k.owner[n] = subjectID
	}
	return nil
}

func (k *keys) Destroy(_ context.Context, subjectID string) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for name, s := range k.owner {
		if s == subjectID {
			delete(k.owner, name)
			n++
		}
	}
	k.destroyed = append(k.destroyed, subjectID)
	return n, nil
}

// countingStore counts identifier lookups: the store round trips a batch
// makes for its customers.
type countingStore struct {
	store.Store
	lookups atomic.Int64
}

func (s *countingStore) IdentifiersByHashes(ctx context.Context, hashes []string) ([]store.Identifier, error) {
	s.lookups.Add(1)
	return s.Store.IdentifiersByHashes(ctx, hashes)
}

func (s *countingStore) FindSubjectsByIdentifierHashes(ctx context.Context, hashes []string) ([]string, error) {
	s.lookups.Add(1)
	return s.Store.FindSubjectsByIdentifierHashes(ctx, hashes)
}

func newSync(st store.Store, k *keys) *activities.Sync {
	return &activities.Sync{
		CRM: echoCRM{}, Store: st, Sealer: sealer{}, Hasher: hasher{}, Keys: k,
		Gate: activities.NewBudgetGate(), Metrics: metrics.New(prometheus.NewRegistry()), Log: zap.NewNop(),
	}
}

func msg(id, author string, dir schemas.Direction) schemas.Event {
	return schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:tweet:1", Direction: dir,
		Visibility: schemas.Public, PlatformMessageID: id, Author: schemas.Author{PlatformUserID: author, Handle: "@" + author},
		Text: "text " + id, OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func subjectOf(t *testing.T, st store.Store, author string) string {
	t.Helper()
	ids, err := st.FindSubjectsByIdentifierHashes(ctx, []string{hasher{}.Hash(store.KindHandle, "x:"+author)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Fatalf("%s is held by subjects %v, want exactly one", author, ids)
	}
	return ids[0]
}

// TestSyncRegistersEveryCustomerOfAThread syncs a public thread in which
// customer A wrote first and B replied: both become subjects and
// participants, A stays the conversation's subject and owns its key, and
// later batches of known customers make no store lookup.
func TestSyncRegistersEveryCustomerOfAThread(t *testing.T) {
	st := &countingStore{Store: storetest.New(t)}
	k := &keys{}
	a := newSync(st, k)
	const conv = "conv-thread"
	res, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: conv, Events: []schemas.Event{
		msg("1", "anna", schemas.Inbound),
		msg("2", "brand", schemas.Outbound),
		msg("3", "bram", schemas.Inbound),
		msg("4", "anna", schemas.Inbound),
	}})
	if err != nil {
		t.Fatal(err)
	}
	anna, bram := subjectOf(t, st, "anna"), subjectOf(t, st, "bram")
	if anna == bram {
		t.Fatal("two customers became one subject")
	}
	if res.State.SubjectID != anna {
		t.Errorf("the conversation's subject is %q, want the first customer's %q", res.State.SubjectID, anna)
	}
	if c, _ := st.GetConversation(ctx, conv); c.SubjectID != anna {
		t.Errorf("the stored conversation's subject is %q, want %q", c.SubjectID, anna)
	}
	if k.owner[conv] != anna {
		t.Errorf("the conversation's key belongs to %q, want the first customer %q", k.owner[conv], anna)
	}
	for name, sid := range map[string]string{"anna": anna, "bram": bram} {
		got, err := st.ConversationsByParticipant(ctx, sid)
		if err != nil || !slices.Equal(got, []string{conv}) {
			t.Errorf("%s participates in %v (%v), want the thread", name, got, err)
		}
	}
	ids, _ := st.IdentifiersBySubject(ctx, bram)
	if len(ids) != 1 || string(ids[0].Ciphertext) != "sealed:"+conv+":x:bram @bram" || ids[0].KeyID != conv {
		t.Errorf("the second customer's identifier = %+v, want the handle sealed under the conversation's key", ids)
	}
	if len(res.State.Participants) != 2 {
		t.Errorf("the state remembers %d participants, want 2", len(res.State.Participants))
	}

	// The known customers write again: no lookup. A newcomer: one.
	before := st.lookups.Load()
	res, err = a.SyncBatch(ctx, crm.SyncBatch{ConversationID: conv, State: res.State, Events: []schemas.Event{
		msg("5", "bram", schemas.Inbound), msg("6", "anna", schemas.Inbound),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := st.lookups.Load() - before; n != 0 {
		t.Errorf("a batch of known customers made %d store lookups, want 0", n)
	}
	before = st.lookups.Load()
	res, err = a.SyncBatch(ctx, crm.SyncBatch{ConversationID: conv, State: res.State, Events: []schemas.Event{
		msg("7", "cas", schemas.Inbound), msg("8", "anna", schemas.Inbound), msg("9", "cas", schemas.Inbound),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// One lookup for the batch, and one re-query after creating the new
	// subject (the race check).
	if n := st.lookups.Load() - before; n != 2 {
		t.Errorf("a batch with one new customer made %d store lookups, want 2", n)
	}
	cas := subjectOf(t, st, "cas")
	if got, _ := st.ConversationsByParticipant(ctx, cas); !slices.Equal(got, []string{conv}) {
		t.Errorf("the third customer participates in %v", got)
	}
	if res.State.SubjectID != anna || k.owner[conv] != anna {
		t.Errorf("a later customer took the conversation over: subject %q, key owner %q", res.State.SubjectID, k.owner[conv])
	}
}

// TestSyncStateOfAnOlderRunRegistersItsCustomers starts from a state that
// an older version wrote (a subject, no participants): the batch's
// customers become participants without changing the subject.
func TestSyncStateOfAnOlderRunRegistersItsCustomers(t *testing.T) {
	st := storetest.New(t)
	k := &keys{}
	a := newSync(st, k)
	res, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "c1", Events: []schemas.Event{msg("1", "anna", schemas.Inbound)}})
	if err != nil {
		t.Fatal(err)
	}
	old := res.State
	old.Participants = nil
	if _, err := a.SyncBatch(ctx, crm.SyncBatch{ConversationID: "c1", State: old, Events: []schemas.Event{msg("2", "bram", schemas.Inbound)}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ConversationsByParticipant(ctx, subjectOf(t, st, "bram")); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("the customer of a batch after the upgrade participates in %v", got)
	}
	if c, _ := st.GetConversation(ctx, "c1"); c.SubjectID != old.SubjectID {
		t.Errorf("the conversation's subject changed to %q", c.SubjectID)
	}
}

// TestSyncRacingConversationsConvergeOnOneSubject syncs the first message
// of one new customer in several conversations at once: they all end up
// with one subject, and every conversation names it.
func TestSyncRacingConversationsConvergeOnOneSubject(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		st := b.Open(t, store.Options{})
		a := newSync(st, &keys{})
		for round := range 5 {
			author := fmt.Sprintf("newcomer-%d", round)
			const n = 4
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = a.SyncBatch(ctx, crm.SyncBatch{ConversationID: fmt.Sprintf("c%d-%d", round, i),
						Events: []schemas.Event{msg(fmt.Sprintf("m%d-%d", round, i), author, schemas.Inbound)}})
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			sid := subjectOf(t, st, author)
			got, err := st.ConversationsByParticipant(ctx, sid)
			if err != nil || len(got) != n {
				t.Fatalf("round %d: the subject participates in %v (%v), want all %d conversations", round, got, err, n)
			}
			cs, err := st.ConversationsBySubject(ctx, sid)
			if err != nil || len(cs) != n {
				t.Fatalf("round %d: the subject owns %d conversations (%v), want %d", round, len(cs), err, n)
			}
		}
	})
}

// TestErasureOfTheSecondCustomerFindsTheThread erases the customer who
// replied in another customer's public thread: discovery finds the thread,
// the erasure deletes it from the store and shreds its key, and the first
// customer stays a subject.
func TestErasureOfTheSecondCustomerFindsTheThread(t *testing.T) {
	st := storetest.New(t)
	k := &keys{}
	const conv = "conv-thread"
	if _, err := newSync(st, k).SyncBatch(ctx, crm.SyncBatch{ConversationID: conv, Events: []schemas.Event{
		msg("1", "anna", schemas.Inbound), msg("2", "bram", schemas.Inbound),
	}}); err != nil {
		t.Fatal(err)
	}
	anna, bram := subjectOf(t, st, "anna"), subjectOf(t, st, "bram")
	tc := &mocks.Client{}
	tc.On("DescribeWorkflowExecution", mock.Anything, mock.Anything, "").Return(nil, serviceerror.NewNotFound("no execution"))
	d := &activities.DSR{CRM: echoCRM{}, Store: st, Keys: k, Hasher: hasher{}, Temporal: tc, Namespace: "default",
		Region: "NL", Metrics: metrics.New(prometheus.NewRegistry()), Log: zap.NewNop()}
	if _, err := st.CreateDSR(ctx, store.DSR{ID: "dsr-1", Type: store.DSRErasure, Status: "discovering"}); err != nil {
		t.Fatal(err)
	}
	fp, err := d.Discover(ctx, activities.DiscoverInput{DSRID: "dsr-1", Pass: "initial",
		Identifiers: activities.SubjectIdentifiers{Handles: []activities.SubjectHandle{{Provider: "x", ID: "bram"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fp.SubjectIDs, []string{bram}) || !slices.Equal(fp.ConversationIDs, []string{conv}) {
		t.Fatalf("footprint: subjects %v, conversations %v; want the second customer and the thread", fp.SubjectIDs, fp.ConversationIDs)
	}
	in := activities.EraseInput{DSRID: "dsr-1", Footprint: fp}
	if err := d.ShredKeys(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.owner[conv]; ok {
		t.Error("the thread's key survived the erasure")
	}
	if err := d.EraseStore(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetConversation(ctx, conv); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the thread is still in the store: %v", err)
	}
	if _, err := st.GetSubject(ctx, bram); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the erased customer's subject is still in the store: %v", err)
	}
	if _, err := st.GetSubject(ctx, anna); err != nil {
		t.Errorf("the first customer's subject is gone: %v", err)
	}
	if got, _ := st.ConversationsByParticipant(ctx, anna); len(got) != 0 {
		t.Errorf("the first customer still participates in the deleted thread: %v", got)
	}
}

// eraserCRM is echoCRM with a CRM footprint: the subject's posts.
type eraserCRM struct {
	echoCRM
	posts []crm.PlatformPost
}

func (e eraserCRM) Discover(context.Context, crm.DiscoverQuery) (crm.Discovered, error) {
	return crm.Discovered{Records: map[string][]string{"SocialPost": {"0ST000000000001AAA"}}, Posts: e.posts}, nil
}
func (eraserCRM) Export(context.Context, map[string][]string) (map[string][]map[string]any, error) {
	return nil, nil
}
func (eraserCRM) Erase(context.Context, map[string][]string) ([]crm.ErasureResult, error) {
	return nil, nil
}

// TestDiscoveryFindsConversationsOfTheSubjectsPosts finds a thread that was
// synced before its customers were recorded as participants: the CRM's
// posts of the subject lead to it through the ingest's dedupe claims.
func TestDiscoveryFindsConversationsOfTheSubjectsPosts(t *testing.T) {
	st := storetest.New(t)
	reply := msg("1795000000000000003", "bram", schemas.Inbound)
	// The ingest claims each message under the keyed hash of its dedupe
	// key, with its conversation.
	if _, err := st.ClaimConversationEvents(ctx, []store.EventClaim{
		{Key: hasher{}.Hash("event", workflows.DedupeKey(reply)), ConversationID: "conv-old-thread"},
		{Key: hasher{}.Hash("event", workflows.DedupeKey(msg("1795000000000000009", "someone", schemas.Inbound))), ConversationID: "conv-other"},
	}); err != nil {
		t.Fatal(err)
	}
	tc := &mocks.Client{}
	tc.On("DescribeWorkflowExecution", mock.Anything, mock.Anything, "").Return(nil, serviceerror.NewNotFound("no execution"))
	d := &activities.DSR{CRM: eraserCRM{posts: []crm.PlatformPost{{Provider: "x", ExternalPostID: reply.PlatformMessageID, Public: true}}},
		Store: st, Keys: &keys{}, Hasher: hasher{}, Temporal: tc, Namespace: "default", Region: "NL",
		Metrics: metrics.New(prometheus.NewRegistry()), Log: zap.NewNop()}
	fp, err := d.Discover(ctx, activities.DiscoverInput{DSRID: "dsr-2", Pass: "initial",
		Identifiers: activities.SubjectIdentifiers{Handles: []activities.SubjectHandle{{Provider: "x", ID: "bram"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fp.ConversationIDs, []string{"conv-old-thread"}) {
		t.Fatalf("footprint conversations %v, want the thread of the subject's post only", fp.ConversationIDs)
	}
}
