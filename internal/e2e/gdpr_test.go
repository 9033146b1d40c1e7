package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/temporalserver"
	"github.com/webcaresync/webcaresync/schemas"
)

// api calls the /v1 API with a token.
func api(t *testing.T, s *stack, token, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+s.HTTPAddr+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// sanne is the demo customer who wrote on X and WhatsApp.
var sanne = map[string]any{
	"email": "sanne.devries@example.nl", "phone": "06-12345678",
	"handles": []map[string]string{{"provider": "x", "id": samples.SanneXID}, {"provider": "whatsapp", "id": samples.SanneWaID}},
}

// syncSanne seeds the demo contacts and posts Sanne's X and WhatsApp
// conversations, and waits until both personas are linked to her contact.
func syncSanne(t *testing.T, s *stack) string {
	t.Helper()
	var contact string
	for _, c := range samples.Customers() {
		f := map[string]any{"FirstName": c.FirstName, "LastName": c.LastName, "Email": c.Email, "MailingPostalCode": c.Postcode}
		if c.Phone != "" {
			f["Phone"] = c.Phone
		}
		if c.Mobile != "" {
			f["MobilePhone"] = c.Mobile
		}
		id, err := s.Sandbox.Seed("Contact", f)
		if err != nil {
			t.Fatal(err)
		}
		if c.FirstName == "Sanne" {
			contact = id
		}
	}
	for _, c := range samples.Conversations()[:2] {
		for _, p := range c.Payloads {
			if code, body, err := s.hooks.Post(context.Background(), p.Channel, p.Body); err != nil || code != 200 {
				t.Fatalf("%d %s %v", code, body, err)
			}
		}
	}
	eventually(t, time.Minute, "both personas linked", func() bool { return countWhere(s, "SocialPersona", "ParentId", contact) == 2 })
	// The store records each link right after the CRM: wait until both
	// conversations are under the contact's one subject.
	eventually(t, time.Minute, "both conversations under Sanne's subject in the store", func() bool {
		return len(contactConversations(s, contact)) == 2
	})
	return contact
}

// contactConversations lists the store's conversations of the one subject
// linked to a CRM contact; none while the contact has no subject or
// several.
func contactConversations(s *stack, contact string) []store.Conversation {
	ctx := context.Background()
	ids, err := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{s.Hasher.Hash("crm_contact", contact)})
	if err != nil || len(ids) != 1 {
		return nil
	}
	convs, err := s.Store.ConversationsBySubject(ctx, ids[0])
	if err != nil {
		return nil
	}
	return convs
}

func openDSR(t *testing.T, s *stack, typ string) string {
	t.Helper()
	var out struct{ ID string }
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr", map[string]any{"type": typ, "identifiers": sanne, "verification": "test"}, &out); code != 202 {
		t.Fatalf("open %s: %d", typ, code)
	}
	return out.ID
}

// eraseWith opens an erasure for identifiers, approves it and waits until
// it completes. It returns the request's ID.
func eraseWith(t *testing.T, s *stack, identifiers map[string]any) string {
	t.Helper()
	var out struct{ ID string }
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr", map[string]any{"type": "erasure", "identifiers": identifiers, "verification": "test"}, &out); code != 202 {
		t.Fatalf("open erasure: %d", code)
	}
	waitStatus(t, s, out.ID, "awaiting_approval", time.Minute)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+out.ID+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	waitStatus(t, s, out.ID, "completed", 2*time.Minute)
	return out.ID
}

type dsrStatus struct {
	Status     string              `json:"status"`
	Escalation string              `json:"escalation"`
	Ledger     []store.LedgerEntry `json:"ledger"`
}

func waitStatus(t *testing.T, s *stack, id, want string, timeout time.Duration) dsrStatus {
	t.Helper()
	var st dsrStatus
	deadline := time.Now().Add(timeout)
	for {
		st = dsrStatus{}
		api(t, s, s.Secrets.AdminToken, "GET", "/v1/dsr/"+id, nil, &st)
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			var last []string
			for _, e := range st.Ledger {
				last = append(last, e.System+" "+e.Action+" "+e.Detail)
			}
			var pending []string
			if d, err := s.Client.DescribeWorkflowExecution(context.Background(), id, ""); err == nil {
				for _, p := range d.GetPendingActivities() {
					pending = append(pending, fmt.Sprintf("%s attempt %d state %s last failure %q next %v",
						p.GetActivityType().GetName(), p.GetAttempt(), p.GetState(), p.GetLastFailure().GetMessage(), p.GetNextAttemptScheduleTime().AsTime()))
				}
			}
			t.Logf("logs:\n%s", s.logs.String())
			t.Fatalf("request %s is %s (escalation %q), not %s, after %s; pending %v; ledger: %v", id, st.Status, st.Escalation, want, timeout, pending, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sanneLeft lists what the CRM still holds of Sanne, in live records and
// in the Recycle Bin (deleted records stay readable and restorable there
// until purged, so an erasure must leave nothing there either).
func sanneLeft(s *stack, contact string, texts ...string) []string {
	var left []string
	for _, obj := range []string{"Contact", "SocialPersona", "SocialPost", "Case", "Task", "Individual"} {
		for _, r := range s.Sandbox.AllRecords(obj) {
			where := obj
			if r["IsDeleted"] == true {
				where += " (Recycle Bin)"
			}
			delete(r, "attributes")
			if obj == "Contact" && r["IsDeleted"] != true {
				delete(r, "Id") // an anonymised contact keeps its own id
			}
			raw, _ := json.Marshal(r)
			for _, hit := range containsAny(string(raw), append([]string{contact, "sanne", "Sanne", samples.SanneXID, samples.SanneWaID, "sannedv"}, texts...)...) {
				left = append(left, where+": "+hit)
			}
		}
	}
	return left
}

// TestErasureLeavesNothingAndAMessageInBetweenIsErasedToo erases Sanne,
// who wrote on X and WhatsApp, after a new message arrived between the
// discovery and the deletion: the CRM, the store and Temporal keep nothing
// of her but the hashed ledger, and the evidence report lists each system.
func TestErasureLeavesNothingAndAMessageInBetweenIsErasedToo(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	contact := syncSanne(t, s)
	ctx := context.Background()
	convs := contactConversations(s, contact)
	if len(convs) != 2 {
		t.Fatalf("Sanne's conversations in the store: %d, want 2", len(convs))
	}
	id := openDSR(t, s, "erasure")
	waitStatus(t, s, id, "awaiting_approval", time.Minute)
	// Sanne writes again while the request waits for approval.
	late := "Nog één vraag: kan ik de bezorging ook naar mijn werk laten sturen?"
	ev := schemas.Event{Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:" + samples.XBrandID + ":" + samples.SanneXID,
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: "1790000000000000999",
		Author: schemas.Author{PlatformUserID: samples.SanneXID, Handle: "sannedv"}, Text: late, OccurredAt: time.Now().UTC(), Brand: schemas.BrandAccount{ID: samples.XBrandID}}
	body, _ := json.Marshal(map[string]any{"events": []schemas.Event{ev}})
	if code, b, err := s.hooks.Post(ctx, "generic", body); err != nil || code != 200 {
		t.Fatalf("late message: %d %s %v", code, b, err)
	}
	eventually(t, time.Minute, "the late message in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", late) == 1 })
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	st := waitStatus(t, s, id, "completed", 2*time.Minute)
	if left := sanneLeft(s, contact, late); len(left) > 0 {
		t.Errorf("the CRM still holds: %v", left)
	}
	// The store: no subject, no identifiers, no conversations.
	for _, c := range convs {
		if _, err := s.Store.GetConversation(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("conversation %s is still in the store: %v", c.ID, err)
		}
		_, err := s.Client.DescribeWorkflowExecution(ctx, c.ID, "")
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			t.Errorf("conversation execution %s is still in Temporal after the erasure completed: %v", c.ID, err)
		}
	}
	hashes := []string{s.Hasher.Hash(store.KindEmail, "sanne.devries@example.nl"), s.Hasher.Hash(store.KindPhone, "+31612345678"), s.Hasher.Hash(store.KindHandle, "x:"+samples.SanneXID)}
	if subjects, _ := s.Store.FindSubjectsByIdentifierHashes(ctx, hashes); len(subjects) != 0 {
		t.Errorf("subjects %v still hold Sanne's identifiers", subjects)
	}
	if hit, _ := s.Store.AnySuppressed(ctx, hashes[:1]); !hit {
		t.Error("Sanne's e-mail hash is not on the suppression list")
	}
	systems := map[string]bool{}
	for _, e := range st.Ledger {
		if e.Action != store.LedgerFound {
			systems[e.System] = true
		}
		for _, pii := range []string{"sanne", "Sanne", "+3161234", samples.SanneXID} {
			if strings.Contains(e.Detail+e.Policy, pii) {
				t.Errorf("the ledger names Sanne: %q", e.Detail)
			}
		}
	}
	for _, sys := range []string{"salesforce", "webcaresync-store", "temporal", "encryption-keys", "x", "whatsapp"} {
		if !systems[sys] {
			t.Errorf("the ledger has no outcome for %s (has %v)", sys, systems)
		}
	}
	var report map[string]any
	if code := api(t, s, s.Secrets.AdminToken, "GET", "/v1/dsr/"+id+"/report", nil, &report); code != 200 || report["notifications"] == nil {
		t.Errorf("evidence report: %d %v", code, report)
	}
}

// TestErasureSurvivesAWorkerKillAndASalesforceOutage kills the worker in
// the middle of an erasure, while Salesforce is down: after a new worker
// starts and Salesforce is back, the erasure finishes, nothing is deleted
// twice and the ledger is complete.
func TestErasureSurvivesAWorkerKillAndASalesforceOutage(t *testing.T) {
	t.Parallel()
	tdir := t.TempDir()
	addr, port := freeAddr(t)
	srv, err := temporalserver.Start(context.Background(), temporalserver.Options{DataDir: tdir, FrontendPort: port, SearchAttributes: searchAttributes()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	data := t.TempDir()
	parts := externalParts
	a := start(t, stackOptions{dataDir: data, temporalAddr: addr, parts: &parts})
	contact := syncSanne(t, a)
	id := openDSR(t, a, "erasure")
	waitStatus(t, a, id, "awaiting_approval", time.Minute)
	// Salesforce answers 503 with Retry-After for the rest of the outage;
	// Temporal honours it, so the next attempt comes after the outage.
	a.Sandbox.Outage(20 * time.Second)
	if code := api(t, a, a.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	eventually(t, time.Minute, "the erasure to pass approval", func() bool {
		var st struct{ Status string }
		api(t, a, a.Secrets.AdminToken, "GET", "/v1/dsr/"+id, nil, &st)
		return st.Status == "discovering" || st.Status == "erasing"
	})
	time.Sleep(3 * time.Second) // a few failed attempts against the outage
	a.Close()                   // the worker dies mid-erasure

	b := start(t, stackOptions{dataDir: data, temporalAddr: addr, parts: &parts})
	st := waitStatus(t, b, id, "completed", 3*time.Minute)
	if left := sanneLeft(b, contact); len(left) > 0 {
		t.Errorf("the CRM still holds: %v", left)
	}
	seen := map[string]int{}
	for _, e := range st.Ledger {
		if e.Action == store.LedgerFound {
			continue
		}
		seen[fmt.Sprintf("%s|%s|%s", e.System, e.Action, e.Detail)]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("ledger row %q written %d times", k, n)
		}
	}
	if len(seen) < 5 {
		t.Errorf("the ledger is incomplete: %v", seen)
	}
}

// TestAPIAuthScopesAndAudit checks 401 without a token, 403 with the
// wrong scope, and that every call is in the audit log.
func TestAPIAuthScopesAndAudit(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	s.Tokens.Add("auditor", "reader-secret", "dsr:read")
	if code := api(t, s, "", "POST", "/v1/dsr", map[string]any{"type": "access", "identifiers": sanne}, nil); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code := api(t, s, "wrong", "GET", "/v1/reviews", nil, nil); code != 401 {
		t.Errorf("bad token: %d, want 401", code)
	}
	if code := api(t, s, "reader-secret", "POST", "/v1/dsr", map[string]any{"type": "access", "identifiers": sanne}, nil); code != 403 {
		t.Errorf("wrong scope: %d, want 403", code)
	}
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr", map[string]any{"type": "forget-me", "identifiers": sanne}, nil); code != 400 {
		t.Errorf("bad type: %d, want 400", code)
	}
	if code := api(t, s, "reader-secret", "GET", "/v1/dsr/dsr-unknown", nil, nil); code != 404 {
		t.Errorf("unknown request: %d, want 404", code)
	}
	entries, err := s.Store.ListAudit(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"anonymous dsr.open 401", "anonymous review.list 401", "auditor dsr.open 403", "admin dsr.open 400", "auditor dsr.status 404"}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Outcome)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audit log %v, want %v", got, want)
	}
}
