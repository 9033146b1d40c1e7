package activities_test

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/mocks"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/activities/crm/salesforce"
	"github.com/webcaresync/webcaresync/internal/identity"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// relinkEnv is the identity activities against the Salesforce sandbox and a
// real store, with the DSR discovery that a privacy officer runs.
type relinkEnv struct {
	sb   *sfsandbox.Sandbox
	st   store.Store
	keys *keys
	sync *activities.Sync
	id   *activities.Identity
	dsr  *activities.DSR
	dsrs int
}

// sandboxCRM starts a Salesforce sandbox on loopback, with the default
// mapping's custom fields and the client secret "secret", and returns it
// with a Salesforce connector that logs in with clientSecret.
func sandboxCRM(t *testing.T, clientSecret string) (*sfsandbox.Sandbox, *salesforce.Connector) {
	t.Helper()
	m := mappings.Default()
	var cfs []sfsandbox.CustomField
	for _, cf := range m.CustomFields() {
		cfs = append(cfs, sfsandbox.CustomField{Object: cf.Object, Name: cf.Name, Type: cf.Type, Length: cf.Length, ExternalID: cf.ExternalID, Unique: cf.Unique})
	}
	sb, err := sfsandbox.New(sfsandbox.Options{ClientID: "cid", ClientSecret: "secret", CustomFields: cfs, Wipe: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	conn, err := salesforce.New(salesforce.Config{LoginURL: srv.URL, ClientID: "cid", ClientSecret: clientSecret}, m, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return sb, conn
}

func newRelinkEnv(t *testing.T, b storetest.Backend) *relinkEnv {
	t.Helper()
	sb, conn := sandboxCRM(t, "secret")
	st := b.Open(t, store.Options{})
	k := &keys{}
	met := metrics.New(prometheus.NewRegistry())
	gate := activities.NewBudgetGate()
	tc := &mocks.Client{}
	tc.On("DescribeWorkflowExecution", mock.Anything, mock.Anything, "").Return(nil, serviceerror.NewNotFound("no execution"))
	return &relinkEnv{
		sb: sb, st: st, keys: k,
		sync: &activities.Sync{CRM: conn, Store: st, Sealer: sealer{}, Hasher: hasher{}, Keys: k, Gate: gate, Metrics: met, Log: zap.NewNop()},
		id: &activities.Identity{CRM: conn, Store: st, Sealer: sealer{}, Hasher: hasher{}, Keys: k, Gate: gate, Region: "NL",
			NoMatch: identity.LeaveUnlinked, Metrics: met, Log: zap.NewNop()},
		dsr: &activities.DSR{CRM: conn, Store: st, Keys: k, Hasher: hasher{}, Temporal: tc, Namespace: "default", Region: "NL", Metrics: met, Log: zap.NewNop()},
	}
}

// relinkConv plays a conversation workflow: it keeps the state across
// batches as the workflow does.
type relinkConv struct {
	id     string
	userID string
	st     crm.ConversationState
	n      int
}

// send syncs one inbound DM and runs identity matching on it.
func (e *relinkEnv) send(t *testing.T, c *relinkConv, text string) activities.MatchResult {
	t.Helper()
	c.n++
	ev := schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:7:" + c.userID,
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: fmt.Sprintf("%s-%d", c.userID, c.n),
		Author: schemas.Author{PlatformUserID: c.userID, Handle: "user" + c.userID}, Text: text,
		OccurredAt: time.Date(2026, 3, 2, 9, c.n, 0, 0, time.UTC), Brand: schemas.BrandAccount{ID: "7", Handle: "acme"},
	}
	res, err := e.sync.SyncBatch(ctx, crm.SyncBatch{ConversationID: c.id, Events: []schemas.Event{ev}, State: c.st})
	if err != nil {
		t.Fatal(err)
	}
	c.st = res.State
	m, err := e.id.Match(ctx, activities.MatchInput{ConversationID: c.id, Events: []schemas.Event{ev}, State: c.st})
	if err != nil {
		t.Fatal(err)
	}
	if m.ContactID != "" {
		c.st.ContactID = m.ContactID
	}
	if m.SubjectID != "" {
		c.st.SubjectID = m.SubjectID
	}
	return m
}

// apply applies a review decision or an unlink as the workflow does.
func (e *relinkEnv) apply(t *testing.T, c *relinkConv, in activities.ApplyReviewInput) {
	t.Helper()
	in.ConversationID, in.State = c.id, c.st
	out, err := e.id.ApplyReview(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	c.st = out
}

// discover runs a DSR discovery and returns the conversations and CRM
// contacts it finds.
func (e *relinkEnv) discover(t *testing.T, ids activities.SubjectIdentifiers) (convs, contacts []string) {
	t.Helper()
	e.dsrs++
	id := fmt.Sprintf("dsr-%d", e.dsrs)
	if _, err := e.st.CreateDSR(ctx, store.DSR{ID: id, Type: store.DSRAccess, Status: "discovering"}); err != nil {
		t.Fatal(err)
	}
	fp, err := e.dsr.Discover(ctx, activities.DiscoverInput{DSRID: id, Pass: "initial", Identifiers: ids})
	if err != nil {
		t.Fatal(err)
	}
	return fp.ConversationIDs, fp.CRM["Contact"]
}

// record returns the sandbox record of object with the id.
func (e *relinkEnv) record(t *testing.T, object, id string) map[string]any {
	t.Helper()
	for _, r := range e.sb.Records(object) {
		if r["Id"] == id {
			return r
		}
	}
	t.Fatalf("no %s %s in the sandbox", object, id)
	return nil
}

// TestRelinkAndUnlinkSeparateTheCustomers links Bram's DM wrongly to
// Anna's contact through a review, corrects it to Bram's own contact in a
// second review, and finally unlinks it. After each correction a
// discovery for Anna finds only Anna's conversation and one for Bram only
// Bram's, in the store and in the CRM.
func TestRelinkAndUnlinkSeparateTheCustomers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		e := newRelinkEnv(t, b)
		// A household: Anna and Bram share a landline.
		anna, err := e.sb.Seed("Contact", map[string]any{"FirstName": "Anna", "LastName": "Smit", "Email": "anna@example.nl", "Phone": "+31301234567"})
		if err != nil {
			t.Fatal(err)
		}
		bram, err := e.sb.Seed("Contact", map[string]any{"FirstName": "Bram", "LastName": "Smit", "Email": "bram@example.nl", "Phone": "+31301234567"})
		if err != nil {
			t.Fatal(err)
		}
		annaIDs := activities.SubjectIdentifiers{Email: "anna@example.nl", Handles: []activities.SubjectHandle{{Provider: "x", ID: "101"}}}
		bramIDs := activities.SubjectIdentifiers{Email: "bram@example.nl", Handles: []activities.SubjectHandle{{Provider: "x", ID: "202"}}}

		annaConv := &relinkConv{id: "conv-anna", userID: "101"}
		if m := e.send(t, annaConv, "Hoi, mijn e-mailadres is anna@example.nl"); m.ContactID != anna {
			t.Fatalf("Anna's DM linked to %q (rule %s), want her contact", m.ContactID, m.Rule)
		}
		bramConv := &relinkConv{id: "conv-bram", userID: "202"}
		m := e.send(t, bramConv, "Bel me maar op 030-1234567")
		if m.ReviewID == "" {
			t.Fatalf("the shared phone did not go to review: %+v", m)
		}
		// The agent picks the wrong household member.
		e.apply(t, bramConv, activities.ApplyReviewInput{ReviewID: m.ReviewID, ContactID: anna, Actor: "agent-1"})
		convs, _ := e.discover(t, annaIDs)
		if !slices.Equal(convs, []string{"conv-anna", "conv-bram"}) {
			t.Fatalf("after the wrong link Anna's discovery finds %v; the fixture should merge them", convs)
		}

		// Bram sends his email: the handle is linked to Anna, so it goes to
		// review, and the agent chooses Bram.
		m = e.send(t, bramConv, "Sorry, het ging om mijn account: bram@example.nl")
		if m.ReviewID == "" {
			t.Fatalf("conflicting evidence did not go to review: %+v", m)
		}
		e.apply(t, bramConv, activities.ApplyReviewInput{ReviewID: m.ReviewID, ContactID: bram, Actor: "agent-2"})

		bramPersona := bramConv.st.PersonaIDs["x:202"]
		if got := e.record(t, "SocialPersona", bramPersona)["ParentId"]; got != bram {
			t.Errorf("after the relink Bram's persona has ParentId %v, want Bram's contact", got)
		}
		for _, post := range bramConv.st.PostIDs {
			if got := e.record(t, "SocialPost", post)["WhoId"]; got != bram {
				t.Errorf("after the relink Bram's post %s has WhoId %v, want Bram's contact", post, got)
			}
		}
		convs, contacts := e.discover(t, annaIDs)
		if !slices.Equal(convs, []string{"conv-anna"}) || !slices.Equal(contacts, []string{anna}) {
			t.Errorf("after the relink Anna's discovery finds conversations %v contacts %v, want only hers", convs, contacts)
		}
		convs, contacts = e.discover(t, bramIDs)
		if !slices.Equal(convs, []string{"conv-bram"}) || !slices.Equal(contacts, []string{bram}) {
			t.Errorf("after the relink Bram's discovery finds conversations %v contacts %v, want only his", convs, contacts)
		}
		c, err := e.st.GetConversation(ctx, "conv-bram")
		if err != nil {
			t.Fatal(err)
		}
		if e.keys.owner["conv-bram"] != c.SubjectID || e.keys.owner["conv-anna"] == c.SubjectID {
			t.Errorf("Bram's data key belongs to %s, his conversation to %s, Anna's key to %s", e.keys.owner["conv-bram"], c.SubjectID, e.keys.owner["conv-anna"])
		}
		// The wrong link is kept, revoked, as evidence; the audit log names
		// who corrected it.
		annaSubject := subjectOf(t, e.st, "101")
		links, err := e.st.LinksBySubject(ctx, annaSubject)
		if err != nil {
			t.Fatal(err)
		}
		var revoked []store.Link
		for _, l := range links {
			if l.RevokedAt != nil {
				revoked = append(revoked, l)
			}
		}
		if len(revoked) != 1 || revoked[0].ApprovedBy != "agent-1" || revoked[0].CRMContactID != anna {
			t.Errorf("Anna's revoked links: %+v, want the wrong link approved by agent-1", revoked)
		} else {
			audit, err := e.st.ListAudit(ctx, time.Time{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(audit, func(a store.AuditEntry) bool {
				return a.Action == activities.AuditLinkRevoked && a.Target == revoked[0].ID && a.Actor == "agent-2"
			}) {
				t.Errorf("the audit log does not say that agent-2 revoked link %s: %+v", revoked[0].ID, audit)
			}
		}

		// Now Bram's link is unlinked altogether.
		e.apply(t, bramConv, activities.ApplyReviewInput{Unlink: true})
		if bramConv.st.ContactID != "" {
			t.Errorf("the state still names contact %s after unlinking", bramConv.st.ContactID)
		}
		if got := e.record(t, "SocialPersona", bramPersona)["ParentId"]; got == bram || got == anna || got == nil {
			t.Errorf("after unlinking Bram's persona has ParentId %v, want one of his posts", got)
		}
		for _, post := range bramConv.st.PostIDs {
			if got := e.record(t, "SocialPost", post)["WhoId"]; got != nil {
				t.Errorf("after unlinking Bram's post %s has WhoId %v", post, got)
			}
		}
		convs, _ = e.discover(t, annaIDs)
		if !slices.Equal(convs, []string{"conv-anna"}) {
			t.Errorf("after unlinking Anna's discovery finds %v", convs)
		}
		// The DM that carries Bram's email is still found by it, but the
		// contact's subject no longer holds it.
		convs, _ = e.discover(t, bramIDs)
		if !slices.Equal(convs, []string{"conv-bram"}) {
			t.Errorf("after unlinking Bram's discovery finds %v, want his conversation", convs)
		}
		contactSubjects, err := e.st.FindSubjectsByIdentifierHashes(ctx, []string{hasher{}.Hash(activities.KindContact, bram)})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range contactSubjects {
			if cs, _ := e.st.ConversationsBySubject(ctx, s); len(cs) != 0 {
				t.Errorf("after unlinking Bram's contact's subject still holds %d conversations", len(cs))
			}
		}
		convs, _ = e.discover(t, activities.SubjectIdentifiers{Handles: []activities.SubjectHandle{{Provider: "x", ID: "202"}}})
		if !slices.Equal(convs, []string{"conv-bram"}) {
			t.Errorf("after unlinking a discovery for Bram's handle finds %v, want his conversation", convs)
		}
		bramSubject := subjectOf(t, e.st, "202")
		if bramSubject == annaSubject || e.keys.owner["conv-bram"] != bramSubject {
			t.Errorf("after unlinking Bram's handle is in %s (Anna's %s), his key in %s", bramSubject, annaSubject, e.keys.owner["conv-bram"])
		}
		if _, err := e.st.LinkByPersona(ctx, "x", hasher{}.Hash(store.KindHandle, "x:202")); err == nil {
			t.Error("Bram's persona still has an active link after unlinking")
		}
	})
}

// TestUnlinkingAThreadUnlinksOnlyItsCustomer unlinks a public thread that
// Bram started and Anna answered: Bram's link is undone, Anna's link to
// her contact stays, in the CRM and in the identity graph.
func TestUnlinkingAThreadUnlinksOnlyItsCustomer(t *testing.T) {
	e := newRelinkEnv(t, storetest.SQLite(t))
	anna, err := e.sb.Seed("Contact", map[string]any{"FirstName": "Anna", "LastName": "Smit", "Email": "anna@example.nl"})
	if err != nil {
		t.Fatal(err)
	}
	bram, err := e.sb.Seed("Contact", map[string]any{"FirstName": "Bram", "LastName": "Smit", "Email": "bram@example.nl"})
	if err != nil {
		t.Fatal(err)
	}
	thread := &relinkConv{id: "conv-thread", userID: "202"}
	tweet := func(id, userID, text string) schemas.Event {
		return schemas.Event{
			Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:tweet:1", Direction: schemas.Inbound,
			Visibility: schemas.Public, PlatformMessageID: id, Author: schemas.Author{PlatformUserID: userID, Handle: "user" + userID},
			Text: text, OccurredAt: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), Brand: schemas.BrandAccount{ID: "7", Handle: "acme"},
		}
	}
	res, err := e.sync.SyncBatch(ctx, crm.SyncBatch{ConversationID: thread.id, State: thread.st, Events: []schemas.Event{
		tweet("t1", "202", "Mijn pakket is weer niet bezorgd"), tweet("t2", "101", "Bij mij ook niet!"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	thread.st = res.State
	// Both link through their own DMs.
	if m := e.send(t, &relinkConv{id: "conv-anna", userID: "101"}, "anna@example.nl"); m.ContactID != anna {
		t.Fatalf("Anna's DM linked to %q", m.ContactID)
	}
	if m := e.send(t, &relinkConv{id: "conv-bram", userID: "202"}, "bram@example.nl"); m.ContactID != bram {
		t.Fatalf("Bram's DM linked to %q", m.ContactID)
	}
	thread.st.ContactID = bram
	e.apply(t, thread, activities.ApplyReviewInput{Unlink: true, Actor: "agent-3"})

	if _, err := e.st.LinkByPersona(ctx, "x", hasher{}.Hash(store.KindHandle, "x:202")); err == nil {
		t.Error("Bram, the thread's customer, is still linked")
	}
	l, err := e.st.LinkByPersona(ctx, "x", hasher{}.Hash(store.KindHandle, "x:101"))
	if err != nil || l.CRMContactID != anna {
		t.Errorf("Anna's link after unlinking the thread: %+v, %v; want her contact", l, err)
	}
	if got := e.record(t, "SocialPersona", thread.st.PersonaIDs["x:101"])["ParentId"]; got != anna {
		t.Errorf("Anna's persona has ParentId %v after unlinking the thread, want her contact", got)
	}
	if got := e.record(t, "SocialPersona", thread.st.PersonaIDs["x:202"])["ParentId"]; got == bram {
		t.Error("Bram's persona is still parented to his contact")
	}
	convs, _ := e.discover(t, activities.SubjectIdentifiers{Email: "anna@example.nl"})
	if !slices.Contains(convs, "conv-anna") || !slices.Contains(convs, "conv-thread") || slices.Contains(convs, "conv-bram") {
		t.Errorf("Anna's discovery after unlinking the thread finds %v, want her DM and the thread she wrote in", convs)
	}
}
