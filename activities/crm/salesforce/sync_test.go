package salesforce

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// duifMapping is the bundled mapping with a mistake: a message containing
// "duif" gets a MessageType that is not in the restricted picklist.
func duifMapping(t *testing.T) *mappings.Mapping {
	t.Helper()
	text, err := os.ReadFile("../../../mappings/salesforce.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(text), `event.visibility == "private"
            ? "Direct"`, `event.visibility == "private"
            ? (event.text.contains("duif") ? "Pigeon" : "Direct")`, 1)
	if broken == string(text) {
		t.Fatal("mapping text changed; update the test")
	}
	path := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := mappings.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// When Salesforce rejects the first post of a new author, only that post
// is parked: the persona is created with the author's next post as its
// parent, and the later posts are written and linked to it.
func TestRejectedFirstPostParksOnlyThatPost(t *testing.T) {
	e := newEnv(t, envOpts{mapping: duifMapping(t)})
	ctx := context.Background()
	events := conversation()
	events[0].Text = "ik stuur een duif"
	events = append(events, msg("m4", "m3", schemas.Inbound, "en nu?", 3))
	res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parked) != 1 || res.Parked[0].PlatformMessageID != "m1" || res.Parked[0].ErrorCode != "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" {
		t.Fatalf("parked = %+v, want m1 alone", res.Parked)
	}
	if strings.Join(res.Written, ",") != "m2,m3,m4" {
		t.Errorf("written = %v, want m2,m3,m4", res.Written)
	}
	personas := e.sb.Records("SocialPersona")
	posts := byField(e.sb.Records("SocialPost"), "ExternalPostId")
	if len(personas) != 1 || len(posts) != 3 {
		t.Fatalf("%d personas, %d posts", len(personas), len(posts))
	}
	persona := personas[0]
	if res.State.PersonaIDs["x:42"] != persona["Id"] {
		t.Errorf("state persona = %q, want %v", res.State.PersonaIDs["x:42"], persona["Id"])
	}
	if persona["ParentId"] != posts["m3"]["Id"] {
		t.Errorf("persona parent = %v, want the post of m3 (%v)", persona["ParentId"], posts["m3"]["Id"])
	}
	for _, id := range []string{"m3", "m4"} {
		if posts[id]["PersonaId"] != persona["Id"] {
			t.Errorf("%s: PersonaId = %v", id, posts[id]["PersonaId"])
		}
	}
	if posts["m4"]["ReplyToId"] != posts["m3"]["Id"] || posts["m3"]["ReplyToId"] != posts["m2"]["Id"] {
		t.Errorf("reply chain: m3 → %v, m4 → %v", posts["m3"]["ReplyToId"], posts["m4"]["ReplyToId"])
	}
	if res.State.CaseID == "" || posts["m3"]["ParentId"] != res.State.CaseID {
		t.Errorf("case %q, post parent %v", res.State.CaseID, posts["m3"]["ParentId"])
	}
	if res.Calls != 4 {
		t.Errorf("calls = %d, want 4 (composite, posts, the persona, updates)", res.Calls)
	}

	// After the mapping is fixed, m1 replays onto the same persona.
	fixed, err := New(Config{LoginURL: e.srv.URL, ClientID: "cid", ClientSecret: "secret"}, mappings.Default(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err = fixed.Sync(ctx, crm.SyncBatch{ConversationID: "c", Events: events[:1], State: res.State})
	if err != nil || len(res.Written) != 1 || len(res.Parked) != 0 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	posts = byField(e.sb.Records("SocialPost"), "ExternalPostId")
	if len(e.sb.Records("SocialPersona")) != 1 || posts["m1"]["PersonaId"] != persona["Id"] {
		t.Errorf("after replay: m1 = %v", posts["m1"])
	}
}

// When every post of a new author is rejected, each is parked with its own
// reason and no persona is written.
func TestAllPostsOfAnAuthorRejected(t *testing.T) {
	e := newEnv(t, envOpts{mapping: duifMapping(t)})
	events := []schemas.Event{
		msg("m1", "", schemas.Inbound, "een duif", 0),
		msg("m2", "", schemas.Inbound, "nog een duif", 1),
	}
	res, err := e.conn.Sync(context.Background(), crm.SyncBatch{ConversationID: "c", Events: events})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parked) != 2 || len(res.Written) != 0 || len(e.sb.Records("SocialPersona")) != 0 || len(e.sb.Records("SocialPost")) != 0 {
		t.Errorf("parked %+v, written %v, %d personas", res.Parked, res.Written, len(e.sb.Records("SocialPersona")))
	}
	for _, p := range res.Parked {
		if p.ErrorCode != "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" {
			t.Errorf("parked %+v", p)
		}
	}
}

// A new case after the reopen window follows the mapping's open_on rule,
// as the first case does.
func TestNewCaseAfterReopenWindowFollowsOpenOn(t *testing.T) {
	m := mappings.Default()
	m.CaseRules.OpenOn = mappings.OpenOnKeywords
	m.CaseRules.Keywords = []string{"storing"}
	e := newEnv(t, envOpts{mapping: m})
	ctx := context.Background()
	sync := func(st crm.ConversationState, events ...schemas.Event) crm.SyncResult {
		t.Helper()
		res, err := e.conn.Sync(ctx, crm.SyncBatch{ConversationID: "c", State: st, Events: events})
		if err != nil || len(res.Parked) != 0 {
			t.Fatalf("sync: %+v %v", res.Parked, err)
		}
		return res
	}
	closeCase := func(id string) {
		t.Helper()
		if err := e.conn.Client().Update(ctx, "Case", id, Record{"Status": "Closed"}); err != nil {
			t.Fatal(err)
		}
	}
	later := func(id, text string, days int) schemas.Event {
		ev := msg(id, "", schemas.Inbound, text, 0)
		ev.OccurredAt = time.Now().Add(time.Duration(days) * 24 * time.Hour)
		return ev
	}
	res := sync(crm.ConversationState{}, msg("m1", "", schemas.Inbound, "Een storing bij mij", 0))
	first := res.State.CaseID
	if first == "" {
		t.Fatal("no case for a message with the keyword")
	}
	closeCase(first)

	// Ten days after closing: the first message that has the keyword opens
	// the new case, not the first message of the batch.
	res = sync(res.State, later("m6", "Bedankt", 10), later("m7", "Alweer een storing", 10))
	cases := byField(e.sb.Records("Case"), "webcaresync_Id__c")
	second := res.State.CaseID
	if len(cases) != 2 || second == "" || second == first || cases[caseExternalID("c", "m7")]["Id"] != second {
		t.Fatalf("new case: %d cases, state %q", len(cases), second)
	}
	closeCase(second)

	// Ten days later a message without the keyword opens no case.
	res = sync(res.State, later("m8", "Bedankt voor de hulp", 20))
	if n := len(e.sb.Records("Case")); n != 2 || res.State.CaseID != "" {
		t.Fatalf("no keyword: %d cases, state %q", n, res.State.CaseID)
	}
	if p := byField(e.sb.Records("SocialPost"), "ExternalPostId")["m8"]; p["ParentId"] != nil {
		t.Errorf("post without a case has parent %v", p["ParentId"])
	}
	// The next message with the keyword opens one.
	res = sync(res.State, later("m9", "Weer storing", 21))
	if n := len(e.sb.Records("Case")); n != 3 || res.State.CaseID == "" {
		t.Fatalf("keyword again: %d cases, state %q", n, res.State.CaseID)
	}
}
