package salesforce

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

type testEnv struct {
	sb   *sfsandbox.Sandbox
	srv  *httptest.Server
	conn *Connector
	reg  *prometheus.Registry
	// before, if set, runs before the sandbox handles each request.
	before atomic.Pointer[func(*http.Request)]
	// intercept, if set, may answer a request instead of the sandbox; it
	// returns true when it did.
	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
}

type envOpts struct {
	mapping   *mappings.Mapping
	sandbox   func(*sfsandbox.Options)
	config    func(*Config)
	notUnique bool
}

func newEnv(t *testing.T, o envOpts) *testEnv {
	t.Helper()
	m := o.mapping
	if m == nil {
		m = mappings.Default()
	}
	var cfs []sfsandbox.CustomField
	for _, cf := range m.CustomFields() {
		cfs = append(cfs, sfsandbox.CustomField{Object: cf.Object, Name: cf.Name, Type: cf.Type, Length: cf.Length, ExternalID: cf.ExternalID, Unique: cf.Unique && !o.notUnique})
	}
	opts := sfsandbox.Options{ClientID: "cid", ClientSecret: "secret", CustomFields: cfs, Wipe: true}
	if o.sandbox != nil {
		o.sandbox(&opts)
	}
	sb, err := sfsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	e := &testEnv{sb: sb, reg: prometheus.NewRegistry()}
	h := sb.Handler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := e.before.Load(); f != nil {
			(*f)(r)
		}
		if f := e.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	cfg := Config{LoginURL: e.srv.URL, ClientID: "cid", ClientSecret: "secret"}
	if o.config != nil {
		o.config(&cfg)
	}
	e.conn, err = New(cfg, m, e.reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func msg(id, reply string, dir schemas.Direction, text string, at int) schemas.Event {
	e := schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:7:42",
		Direction: dir, Visibility: schemas.Private, PlatformMessageID: id, ReplyToID: reply,
		Author: schemas.Author{PlatformUserID: "42", Handle: "jan", DisplayName: "Jan Jansen"},
		Text:   text, OccurredAt: t0.Add(time.Duration(at) * time.Minute),
		Brand: schemas.BrandAccount{ID: "7", Handle: "acme"},
	}
	if dir == schemas.Outbound {
		e.Author = schemas.Author{PlatformUserID: "7", Handle: "acme"}
		e.AgentID = "MK"
	}
	return e
}

func conversation() []schemas.Event {
	return []schemas.Event{
		msg("m1", "", schemas.Inbound, "Mijn internet doet het niet", 0),
		msg("m2", "m1", schemas.Outbound, "Vervelend! Kun je je postcode sturen?", 1),
		msg("m3", "m2", schemas.Inbound, "1234 AB 12", 2),
	}
}

func byField(recs []map[string]any, field string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range recs {
		if v, ok := r[field].(string); ok {
			out[v] = r
		}
	}
	return out
}

func TestSyncConversationEndToEnd(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: conversation()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 3 || len(res.Parked) != 0 {
		t.Fatalf("written %v parked %v", res.Written, res.Parked)
	}
	if res.Calls != 3 {
		t.Errorf("calls = %d, want 3 (composite, posts upsert, reply-to update)", res.Calls)
	}
	personas := e.sb.Records("SocialPersona")
	posts := byField(e.sb.Records("SocialPost"), "ExternalPostId")
	cases := e.sb.Records("Case")
	if len(personas) != 1 || len(posts) != 3 || len(cases) != 1 {
		t.Fatalf("personas %d posts %d cases %d, want 1 3 1", len(personas), len(posts), len(cases))
	}
	persona, cs := personas[0], cases[0]
	if persona["Provider"] != "Twitter" || persona["Name"] != "jan" || persona["ParentId"] != posts["m1"]["Id"] {
		t.Errorf("persona = %v", persona)
	}
	if res.State.CaseID != cs["Id"] || res.State.PersonaIDs["x:42"] != persona["Id"] {
		t.Errorf("state = %+v", res.State)
	}
	for id, p := range posts {
		if p["ParentId"] != cs["Id"] {
			t.Errorf("post %s ParentId = %v, want the case", id, p["ParentId"])
		}
	}
	if posts["m1"]["PersonaId"] != persona["Id"] || posts["m3"]["PersonaId"] != persona["Id"] {
		t.Error("inbound posts are not linked to the persona")
	}
	if posts["m2"]["PersonaId"] != nil || posts["m2"]["IsOutbound"] != true {
		t.Errorf("outbound post = %v", posts["m2"])
	}
	if posts["m2"]["ReplyToId"] != posts["m1"]["Id"] || posts["m3"]["ReplyToId"] != posts["m2"]["Id"] {
		t.Error("reply-to chain is not linked")
	}
	if posts["m1"]["MessageType"] != "Direct" || cs["Subject"] == "" || cs["Origin"] != "Twitter" {
		t.Errorf("post %v case %v", posts["m1"], cs)
	}

	// Running the same input again, with and without the state, writes no
	// duplicates.
	for _, st := range []crm.ConversationState{res.State, {}} {
		again, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "conv-1", Events: conversation(), State: st})
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Written) != 3 || again.State.CaseID != cs["Id"] {
			t.Errorf("re-sync: written %v case %s", again.Written, again.State.CaseID)
		}
	}
	if n := [3]int{len(e.sb.Records("SocialPersona")), len(e.sb.Records("SocialPost")), len(e.sb.Records("Case"))}; n != [3]int{1, 3, 1} {
		t.Errorf("after re-sync personas, posts, cases = %v, want 1 3 1", n)
	}

	// A later batch with a status event changes the post, adds no post.
	st := crm.SyncBatch{ConversationID: "conv-1", State: res.State, Events: []schemas.Event{
		{Kind: schemas.KindStatus, Channel: schemas.ChannelX, PlatformMessageID: "m2", Status: "failed", Direction: schemas.Outbound},
		msg("m4", "m3", schemas.Outbound, "Dank je!", 3),
	}}
	res2, err := e.conn.Sync(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	posts = byField(e.sb.Records("SocialPost"), "ExternalPostId")
	if len(posts) != 4 || posts["m2"]["Status"] != "Failed" || posts["m2"]["StatusMessage"] != "failed" {
		t.Errorf("after status: %d posts, m2 = %v", len(posts), posts["m2"])
	}
	if posts["m4"]["ReplyToId"] != posts["m3"]["Id"] {
		t.Error("reply to a post of an earlier batch is not linked")
	}
	if res2.Calls > 3 {
		t.Errorf("calls = %d", res2.Calls)
	}
}

func TestSync200MessagesTakesAtMostThreeCalls(t *testing.T) {
	e := newEnv(t, envOpts{})
	var events []schemas.Event
	prev := ""
	for i := 0; i < 200; i++ {
		dir := schemas.Inbound
		if i%2 == 1 {
			dir = schemas.Outbound
		}
		id := fmt.Sprintf("m%03d", i)
		events = append(events, msg(id, prev, dir, fmt.Sprintf("bericht %d", i), i))
		prev = id
	}
	ctx := context.Background()
	if err := e.conn.Probe(ctx); err != nil { // log in first
		t.Fatal(err)
	}
	before := e.sb.TotalCalls()
	res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "conv-200", Events: events})
	if err != nil {
		t.Fatal(err)
	}
	used := e.sb.TotalCalls() - before
	t.Logf("200 messages: %d API calls, %.3f calls per message", used, float64(used)/200)
	if used > 3 || int64(res.Calls) != used {
		t.Errorf("sandbox saw %d calls, result says %d; want the same and at most 3", used, res.Calls)
	}
	if len(res.Written) != 200 || len(e.sb.Records("SocialPost")) != 200 {
		t.Errorf("written %d, posts %d", len(res.Written), len(e.sb.Records("SocialPost")))
	}
	// 201 messages take two chunks.
	events = append(events, msg("m200", prev, schemas.Inbound, "nog een", 201))
	res, err = e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "conv-200", Events: events, State: res.State})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.sb.Records("SocialPost")) != 201 || res.Calls > 6 {
		t.Errorf("posts %d calls %d", len(e.sb.Records("SocialPost")), res.Calls)
	}
}

func TestSessionExpiresMidBatch(t *testing.T) {
	e := newEnv(t, envOpts{})
	var tokens atomic.Int32
	var once sync.Once
	hook := func(r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			tokens.Add(1)
		}
		// Expire the session right before the posts are upserted: after the
		// batch's first call succeeded.
		if strings.Contains(r.URL.Path, "/composite/sobjects/SocialPost/") {
			once.Do(e.sb.ExpireSessions)
		}
	}
	e.before.Store(&hook)
	res, err := e.conn.Sync(context.Background(), crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if err != nil {
		t.Fatal(err)
	}
	if tokens.Load() != 2 {
		t.Errorf("token requests = %d, want 2 (login and one refresh)", tokens.Load())
	}
	if len(res.Written) != 3 || len(e.sb.Records("SocialPost")) != 3 {
		t.Errorf("written %v, posts %d", res.Written, len(e.sb.Records("SocialPost")))
	}
	if v := value(e.conn.client.metrics.refreshes); v != 1 {
		t.Errorf("refresh metric = %v", v)
	}
}

func TestConcurrentRefreshIsShared(t *testing.T) {
	e := newEnv(t, envOpts{})
	var tokens atomic.Int32
	hook := func(r *http.Request) {
		if r.URL.Path == "/services/oauth2/token" {
			tokens.Add(1)
		}
	}
	e.before.Store(&hook)
	ctx := context.Background()
	if err := e.conn.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	e.sb.ExpireSessions()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.conn.Probe(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// One login, then at most one refresh per generation: a goroutine that
	// saw the old session after the refresh reuses the new one.
	if n := tokens.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

func TestBudgetExhaustedPausesAndResumes(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	if err := e.conn.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	e.sb.ExhaustBudget()
	_, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if crm.KindOf(err) != crm.BudgetExhausted {
		t.Fatalf("err = %v, want budget exhausted", err)
	}
	if crm.KindOf(e.conn.Probe(ctx)) != crm.BudgetExhausted {
		t.Error("probe does not report the exhausted budget")
	}
	if v := value(e.conn.client.metrics.budgetExhausted); v != 1 {
		t.Errorf("budget exhausted gauge = %v, want 1", v)
	}
	if used, max := value(e.conn.client.metrics.apiUsed), value(e.conn.client.metrics.apiMax); max == 0 || used < max {
		t.Errorf("api usage gauges %v/%v do not show the exhausted budget", used, max)
	}
	e.sb.ResetBudget()
	if err := e.conn.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if err != nil || len(res.Written) != 3 {
		t.Fatalf("after reset: %v %v", res.Written, err)
	}
	if len(e.sb.Records("SocialPost")) != 3 || value(e.conn.client.metrics.budgetExhausted) != 0 {
		t.Error("resume did not write every message once or left the gauge raised")
	}
}

func TestOutageAndServerErrorsAreTransient(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	if err := e.conn.Probe(ctx); err != nil { // log in before the outage
		t.Fatal(err)
	}
	e.sb.Outage(time.Hour)
	_, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if crm.KindOf(err) != crm.Transient {
		t.Fatalf("outage: %v", err)
	}
	var ce *crm.Error
	if !asCRM(err, &ce) || ce.RetryAfter <= 0 {
		t.Errorf("outage error has no Retry-After: %+v", ce)
	}
	e.sb.Outage(0)
	if err := e.conn.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	e.sb.SetFailureRate(1)
	_, err = e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if crm.KindOf(err) != crm.Transient || !strings.Contains(err.Error(), "UNKNOWN_EXCEPTION") {
		t.Fatalf("5xx: %v", err)
	}
	e.sb.SetFailureRate(0)
	if _, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()}); err != nil {
		t.Fatal(err)
	}
}

func asCRM(err error, target **crm.Error) bool {
	ce, ok := err.(*crm.Error)
	if ok {
		*target = ce
	}
	return ok
}

func TestConcurrencyCap(t *testing.T) {
	e := newEnv(t, envOpts{sandbox: func(o *sfsandbox.Options) { o.ConcurrencyCap = 1 }})
	ctx := context.Background()
	if err := e.conn.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	// Hold the only slot with a slow call, then make a second one.
	e.sb.SetLatency(time.Minute)
	slowCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	before := e.sb.TotalCalls()
	go func() {
		defer close(done)
		_ = e.conn.Probe(slowCtx)
	}()
	for e.sb.TotalCalls() == before {
		time.Sleep(time.Millisecond)
	}
	_, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	cancel()
	<-done
	if crm.KindOf(err) != crm.Concurrency {
		t.Fatalf("err = %v, want concurrency", err)
	}
}

func TestValidationErrorParksOnlyThatEvent(t *testing.T) {
	// A mapping mistake: messages containing "duif" get a MessageType that
	// is not in the restricted picklist.
	m := duifMapping(t)
	e := newEnv(t, envOpts{mapping: m})
	events := conversation()
	events[2].Text = "ik stuur een duif"
	res, err := e.conn.Sync(context.Background(), crm.SyncBatch{ConversationID: "c", Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parked) != 1 || res.Parked[0].PlatformMessageID != "m3" || res.Parked[0].ErrorCode != "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" {
		t.Fatalf("parked = %+v", res.Parked)
	}
	p := res.Parked[0]
	if strings.Contains(p.Message, "Pigeon") || strings.Contains(p.Message, "duif") || len(p.Fields) != 1 || p.Fields[0] != "MessageType" {
		t.Errorf("parked reason leaks a value or lacks the field: %+v", p)
	}
	if len(res.Written) != 2 || len(e.sb.Records("SocialPost")) != 2 {
		t.Errorf("written %v", res.Written)
	}
	// After the mapping is fixed, the parked event replays.
	fixed, err := New(Config{LoginURL: e.srv.URL, ClientID: "cid", ClientSecret: "secret"}, mappings.Default(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = fixed.Sync(context.Background(), crm.SyncBatch{ConversationID: "c", Events: events[2:], State: res.State})
	if err != nil || len(res.Written) != 1 || len(res.Parked) != 0 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	posts := byField(e.sb.Records("SocialPost"), "ExternalPostId")
	if len(posts) != 3 || posts["m3"]["ReplyToId"] != posts["m2"]["Id"] {
		t.Errorf("after replay: %d posts, m3 = %v", len(posts), posts["m3"])
	}
}

func TestUpsertMatchingSeveralRecords(t *testing.T) {
	e := newEnv(t, envOpts{notUnique: true})
	ext := caseExternalID("c", "m1")
	for i := 0; i < 2; i++ {
		if _, err := e.sb.Seed("Case", map[string]any{"Subject": "dup", "webcaresync_Id__c": ext}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	_, err := e.conn.Client().Upsert(ctx, "Case", "webcaresync_Id__c", ext, Record{"Subject": "secret subject"})
	var ce *crm.Error
	if !asCRM(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "MULTIPLE_RECORDS" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(ce.Message, "Case") || !strings.Contains(ce.Message, "webcaresync_Id__c") || strings.Contains(ce.Message, ext) || strings.Contains(ce.Message, "secret") {
		t.Errorf("message = %q: want object and field only", ce.Message)
	}
	// In a Sync the case's 300 parks the opening message; the posts are
	// still written.
	res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parked) != 1 || res.Parked[0].ErrorCode != "MULTIPLE_RECORDS" || len(res.Written) != 2 {
		t.Errorf("parked %+v written %v", res.Parked, res.Written)
	}
	// Created (201) and updated (200) are told apart.
	r1, err := e.conn.Client().Upsert(ctx, "Case", "webcaresync_Id__c", "ca-new", Record{"Subject": "a"})
	if err != nil || !r1.Created || r1.ID == "" {
		t.Fatalf("first upsert: %+v %v", r1, err)
	}
	r2, err := e.conn.Client().Upsert(ctx, "Case", "webcaresync_Id__c", "ca-new", Record{"Subject": "b"})
	if err != nil || r2.Created || r2.ID != r1.ID {
		t.Fatalf("second upsert: %+v %v", r2, err)
	}
}

func TestFindContactsPagesAndEscapes(t *testing.T) {
	e := newEnv(t, envOpts{})
	for i := 0; i < 2100; i++ {
		if _, err := e.sb.Seed("Contact", map[string]any{"LastName": fmt.Sprintf("Jansen%d", i), "MailingPostalCode": "1234 AB"}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := e.sb.Seed("Contact", map[string]any{"LastName": "O'Brien", "Email": "o'brien@example.com", "MobilePhone": "+31612345678"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := e.conn.FindContacts(ctx, crm.ContactQuery{PostalCode: "1234ab"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2100 {
		t.Errorf("postcode query returned %d contacts, want 2100 (paged)", len(got))
	}
	got, err = e.conn.FindContacts(ctx, crm.ContactQuery{Email: "o'brien@example.com"})
	if err != nil || len(got) != 1 || got[0].ID != id || got[0].Mobile != "+31612345678" {
		t.Fatalf("email query: %+v %v", got, err)
	}
	got, err = e.conn.FindContacts(ctx, crm.ContactQuery{Phone: "+31612345678"})
	if err != nil || len(got) != 1 {
		t.Fatalf("phone query: %+v %v", got, err)
	}
	got, err = e.conn.FindContacts(ctx, crm.ContactQuery{Email: `x' OR LastName != '`})
	if err != nil || len(got) != 0 {
		t.Fatalf("injection attempt: %d contacts, %v", len(got), err)
	}
}

func TestCreateContactAndLink(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if err != nil {
		t.Fatal(err)
	}
	ct := crm.Contact{LastName: "Jansen", Email: "Jan@Example.nl", Phone: "06-12345678"}
	id, err := e.conn.CreateContact(ctx, ct)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.conn.CreateContact(ctx, ct)
	if err != nil || again != id || len(e.sb.Records("Contact")) != 1 {
		t.Fatalf("second create: %s %v, %d contacts", again, err, len(e.sb.Records("Contact")))
	}
	c := e.sb.Records("Contact")[0]
	if c["Phone"] != "+31612345678" || c["Email"] != "jan@example.nl" {
		t.Errorf("contact = %v", c)
	}
	var postIDs []string
	for _, v := range res.State.PostIDs {
		postIDs = append(postIDs, v)
	}
	personaID := res.State.PersonaIDs["x:42"]
	if err := e.conn.LinkPersonas(ctx, []string{personaID}, id, postIDs); err != nil {
		t.Fatal(err)
	}
	if p := e.sb.Records("SocialPersona")[0]; p["ParentId"] != id {
		t.Errorf("persona parent = %v", p["ParentId"])
	}
	for _, p := range e.sb.Records("SocialPost") {
		if p["WhoId"] != id {
			t.Errorf("post WhoId = %v", p["WhoId"])
		}
	}
	// A later batch of a linked conversation sets WhoId itself.
	st := res.State
	st.ContactID = id
	res, err = e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", State: st, Events: []schemas.Event{msg("m9", "", schemas.Inbound, "hoi", 9)}})
	if err != nil {
		t.Fatal(err)
	}
	if p := byField(e.sb.Records("SocialPost"), "ExternalPostId")["m9"]; p["WhoId"] != id {
		t.Errorf("new post WhoId = %v", p["WhoId"])
	}
	// Unlinking clears WhoId and parents the persona to a post again.
	if err := e.conn.LinkPersonas(ctx, []string{personaID}, "", postIDs); err != nil {
		t.Fatal(err)
	}
	if p := e.sb.Records("SocialPersona")[0]; p["ParentId"] != postIDs[0] {
		t.Errorf("unlinked persona parent = %v", p["ParentId"])
	}
}

func TestCaseReopenOrNew(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: conversation()})
	if err != nil {
		t.Fatal(err)
	}
	caseID := res.State.CaseID
	closeCase := func() {
		if err := e.conn.Client().Update(ctx, "Case", caseID, Record{"Status": "Closed"}); err != nil {
			t.Fatal(err)
		}
	}
	closeCase()
	// The customer writes again two days after closing: reopened.
	later := msg("m5", "", schemas.Inbound, "Het doet het weer niet", 0)
	later.OccurredAt = time.Now().Add(48 * time.Hour)
	res, err = e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", State: res.State, Events: []schemas.Event{later}})
	if err != nil {
		t.Fatal(err)
	}
	cases := e.sb.Records("Case")
	if len(cases) != 1 || cases[0]["Status"] != "New" || res.State.CaseID != caseID {
		t.Fatalf("reopen: %d cases, status %v", len(cases), cases[0]["Status"])
	}
	closeCase()
	// Ten days after closing: a new case.
	much := msg("m6", "", schemas.Inbound, "Alweer!", 0)
	much.OccurredAt = time.Now().Add(10 * 24 * time.Hour)
	res, err = e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", State: res.State, Events: []schemas.Event{much}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.sb.Records("Case")) != 2 || res.State.CaseID == caseID || res.State.CaseID == "" {
		t.Fatalf("new case: %d cases, state %s", len(e.sb.Records("Case")), res.State.CaseID)
	}
	if p := byField(e.sb.Records("SocialPost"), "ExternalPostId")["m6"]; p["ParentId"] != res.State.CaseID {
		t.Errorf("post of the new case has parent %v", p["ParentId"])
	}
}

func TestJWTBearerFlow(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webcaresync"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	e := newEnv(t, envOpts{
		sandbox: func(o *sfsandbox.Options) { o.JWTCertificatePEM = certPEM; o.Username = "integration@acme.example" },
		config: func(c *Config) {
			c.ClientSecret, c.PrivateKeyPEM, c.Username = "", keyPEM, "integration@acme.example"
		},
	})
	if err := e.conn.Probe(context.Background()); err != nil {
		t.Fatalf("JWT bearer login: %v", err)
	}
	// A key the org does not know is refused, permanently.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})
	bad, err := New(Config{LoginURL: e.srv.URL, ClientID: "cid", Username: "integration@acme.example", PrivateKeyPEM: otherPEM}, mappings.Default(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Probe(context.Background())
	if crm.KindOf(err) != crm.Permanent || !strings.Contains(err.Error(), "invalid_grant") || strings.Contains(err.Error(), "integration@") {
		t.Errorf("wrong key: %v", err)
	}
}

func TestClientCredentialsRefused(t *testing.T) {
	e := newEnv(t, envOpts{config: func(c *Config) { c.ClientSecret = "wrong" }})
	err := e.conn.Probe(context.Background())
	if crm.KindOf(err) != crm.Permanent {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestHeadersAndVersion(t *testing.T) {
	e := newEnv(t, envOpts{config: func(c *Config) { c.APIVersion = "60.0"; c.AutoAssign = true }})
	var seen []http.Header
	var paths []string
	var mu sync.Mutex
	hook := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Clone())
		paths = append(paths, r.URL.Path)
	}
	e.before.Store(&hook)
	if _, err := e.conn.Sync(context.Background(), crm.SyncBatch{ConversationID: "c", Events: conversation()}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, h := range seen {
		if h.Get("Sforce-Call-Options") != "client=webcaresync" {
			t.Errorf("%s lacks Sforce-Call-Options", paths[i])
		}
		if strings.HasPrefix(paths[i], "/services/data/") && (h.Get("Sforce-Auto-Assign") != "TRUE" || !strings.HasPrefix(paths[i], "/services/data/v60.0/")) {
			t.Errorf("%s: auto-assign %q", paths[i], h.Get("Sforce-Auto-Assign"))
		}
	}
}

func TestMappingAgainstSandboxDescribe(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := mappings.Default()
	if errs := m.ValidateAgainstDescribe(context.Background(), e.conn.Client().Describe); len(errs) != 0 {
		t.Errorf("default mapping vs sandbox describe:\n%v", errs)
	}
}

// value reads a gauge or counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
