package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// The data subject of the erasure tests, and what must not survive of her.
const (
	subjEmail   = "sanne.devries@example.nl"
	subjPhone   = "+31612345678"
	subjXID     = "4242"
	subjXHandle = "sanne_x"
	subjWAID    = "31612345678"
	subjIGID    = "ig-77"
	subjIGName  = "sanne.ig"
)

// subjectPII are strings none of the subject's remaining records may hold.
var subjectPII = []string{
	subjEmail, "+31612345678", "06 12345678", "0612345678", subjWAID, subjXHandle, subjIGName, subjIGID,
	"Sanne", "de Vries", "Oudegracht", "3511",
	"Mijn router is stuk", "postcode is 3511", "Hoi Sanne", "WhatsApp van Sanne", "ook kapot",
}

func ev(ch schemas.Channel, vis schemas.Visibility, id, reply string, dir schemas.Direction, user, handle, text string, at int) schemas.Event {
	e := schemas.Event{
		Kind: schemas.KindMessage, Channel: ch, ConversationKey: string(ch) + ":" + user,
		Direction: dir, Visibility: vis, PlatformMessageID: id, ReplyToID: reply,
		Author: schemas.Author{PlatformUserID: user, Handle: handle, DisplayName: "Customer " + user},
		Text:   text, OccurredAt: t0.Add(time.Duration(at) * time.Minute),
		Brand: schemas.BrandAccount{ID: "7", Handle: "acme"},
	}
	if user == subjXID || user == subjWAID || user == subjIGID {
		e.Author.DisplayName = "Sanne de Vries"
	}
	if dir == schemas.Outbound {
		e.Author = schemas.Author{PlatformUserID: "7", Handle: "acme"}
		e.AgentID = "MK"
	}
	return e
}

// footprint is the subject's world in the sandbox, written by the
// connector's own Sync as in production.
type footprint struct {
	contactID, otherContactID, individualID, taskID string
	xCase, waCase, igCase                           string
	xPersona, waPersona, igPersona                  string
	posts                                           map[string]string // platform message id → post id
}

func syncConv(t *testing.T, e *testEnv, conv string, st crm.ConversationState, events ...schemas.Event) crm.SyncResult {
	t.Helper()
	res, err := e.conn.Sync(context.Background(), crm.SyncBatch{ConversationID: conv, Events: events, State: st})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Parked) > 0 {
		t.Fatalf("parked: %+v", res.Parked)
	}
	return res
}

func seedSubject(t *testing.T, e *testEnv) footprint {
	t.Helper()
	ctx := context.Background()
	fp := footprint{posts: map[string]string{}}
	var err error
	fp.individualID, err = e.sb.Seed("Individual", map[string]any{"FirstName": "Sanne", "LastName": "de Vries"})
	if err != nil {
		t.Fatal(err)
	}
	// A hand-entered contact: the mobile number in national form.
	fp.contactID, err = e.sb.Seed("Contact", map[string]any{"FirstName": "Sanne", "LastName": "de Vries", "Email": subjEmail,
		"MobilePhone": "06 12345678", "MailingStreet": "Oudegracht 12", "MailingPostalCode": "3511 AB", "IndividualId": fp.individualID})
	if err != nil {
		t.Fatal(err)
	}
	fp.otherContactID, err = e.sb.Seed("Contact", map[string]any{"FirstName": "Fleur", "LastName": "Maes", "Email": "fleur@example.be", "MobilePhone": "+32470111111"})
	if err != nil {
		t.Fatal(err)
	}
	fp.taskID, err = e.sb.Seed("Task", map[string]any{"Subject": "Bel Sanne terug", "WhoId": fp.contactID})
	if err != nil {
		t.Fatal(err)
	}

	// X DM: found by the handle, linked to the contact later by matching.
	x := syncConv(t, e, "conv-x", crm.ConversationState{},
		ev(schemas.ChannelX, schemas.Private, "x1", "", schemas.Inbound, subjXID, subjXHandle, "Mijn router is stuk", 0),
		ev(schemas.ChannelX, schemas.Private, "x2", "x1", schemas.Outbound, subjXID, "", "Hoi Sanne, wat is je postcode?", 1),
		ev(schemas.ChannelX, schemas.Private, "x3", "x2", schemas.Inbound, subjXID, subjXHandle, "Mijn postcode is 3511 AB", 2),
		// A follow-up of the brand that answers no particular message.
		ev(schemas.ChannelX, schemas.Private, "x4", "", schemas.Outbound, subjXID, "", "Is het gelukt, Sanne?", 3),
	)
	fp.xCase, fp.xPersona = x.State.CaseID, x.State.PersonaIDs["x:"+subjXID]
	for k, v := range x.State.PostIDs {
		fp.posts[k] = v
	}
	// Matching linked the customer's own posts; the brand's posts x2 and
	// x4 are found only through the conversation.
	if err := e.conn.LinkPersonas(ctx, []string{fp.xPersona}, fp.contactID, []string{fp.posts["x1"], fp.posts["x3"]}); err != nil {
		t.Fatal(err)
	}

	// WhatsApp: the contact was known when the conversation started, so
	// the case has ContactId.
	wa := syncConv(t, e, "conv-wa", crm.ConversationState{ContactID: fp.contactID},
		ev(schemas.ChannelWhatsApp, schemas.Private, "w1", "", schemas.Inbound, subjWAID, "", "WhatsApp van Sanne: internet ook kapot", 10),
		ev(schemas.ChannelWhatsApp, schemas.Private, "w2", "w1", schemas.Outbound, subjWAID, "", "Hoi Sanne, we kijken ernaar", 11),
	)
	fp.waCase, fp.waPersona = wa.State.CaseID, wa.State.PersonaIDs["whatsapp:"+subjWAID]
	for k, v := range wa.State.PostIDs {
		fp.posts[k] = v
	}

	// A public Instagram thread that another customer opened: the subject
	// comments too and the brand answers both.
	ig := syncConv(t, e, "conv-ig", crm.ConversationState{},
		ev(schemas.ChannelInstagram, schemas.Public, "i1", "", schemas.Inbound, "ig-fleur", "fleur.maes", "Waar blijft mijn pakket?", 20),
		ev(schemas.ChannelInstagram, schemas.Public, "i2", "", schemas.Inbound, subjIGID, subjIGName, "Bij mij ook kapot", 21),
		ev(schemas.ChannelInstagram, schemas.Public, "i3", "i1", schemas.Outbound, "", "", "@fleur.maes stuur ons een DM", 22),
		ev(schemas.ChannelInstagram, schemas.Public, "i4", "i2", schemas.Outbound, "", "", "@sanne.ig Hoi Sanne, stuur ons een DM", 23),
	)
	fp.igCase, fp.igPersona = ig.State.CaseID, ig.State.PersonaIDs["instagram:"+subjIGID]
	for k, v := range ig.State.PostIDs {
		fp.posts[k] = v
	}

	// Someone else entirely.
	syncConv(t, e, "conv-other", crm.ConversationState{},
		ev(schemas.ChannelX, schemas.Private, "o1", "", schemas.Inbound, "9999", "piet", "Mijn factuur klopt niet", 30),
	)
	return fp
}

func subjectQuery() crm.DiscoverQuery {
	return crm.DiscoverQuery{
		Emails:   []string{subjEmail},
		Phones:   []string{subjPhone},
		Personas: []crm.PersonaRef{{Provider: "x", ExternalID: subjXID}, {Provider: "instagram", ExternalID: subjIGID}},
	}
}

func ids(list ...string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}

func (fp footprint) want() map[string][]string {
	p := fp.posts
	return map[string][]string{
		"Contact":       {fp.contactID},
		"Individual":    {fp.individualID},
		"Task":          {fp.taskID},
		"SocialPersona": ids(fp.xPersona, fp.waPersona, fp.igPersona),
		"SocialPost":    ids(p["x1"], p["x2"], p["x3"], p["x4"], p["w1"], p["w2"], p["i2"], p["i4"]),
		"Case":          ids(fp.xCase, fp.waCase),
	}
}

func TestDiscoverFindsTheWholeFootprint(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	before := e.sb.TotalCalls()
	found, err := e.conn.Discover(context.Background(), subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	calls := e.sb.TotalCalls() - before
	t.Logf("discover took %d calls", calls)
	if calls > 4 {
		t.Errorf("discover took %d calls, want at most 4 (composite rounds)", calls)
	}
	want := fp.want()
	for obj, w := range want {
		if got := found.Records[obj]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %v, want %v", obj, got, w)
		}
	}
	if len(found.Records) != len(want) {
		t.Errorf("objects = %v", found.Records)
	}
	// The shared Instagram thread's case and the other customer's posts
	// are not the subject's.
	for _, id := range found.Records["SocialPost"] {
		if id == fp.posts["i1"] || id == fp.posts["i3"] || id == fp.posts["o1"] {
			t.Errorf("post %s of someone else is in the footprint", id)
		}
	}

	type pp struct {
		provider string
		outbound bool
		public   bool
	}
	posts := map[string]pp{}
	for _, p := range found.Posts {
		posts[p.ExternalPostID] = pp{p.Provider, p.Outbound, p.Public}
	}
	wantPosts := map[string]pp{
		"x1": {"x", false, false}, "x2": {"x", true, false}, "x3": {"x", false, false}, "x4": {"x", true, false},
		"w1": {"whatsapp", false, false}, "w2": {"whatsapp", true, false},
		"i2": {"instagram", false, true}, "i4": {"instagram", true, true},
	}
	if !reflect.DeepEqual(posts, wantPosts) {
		t.Errorf("platform posts = %v, want %v", posts, wantPosts)
	}
}

func TestDiscoverByOneIdentifierFollowsLinks(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	// Only the X handle: persona → contact → everything linked to it.
	found, err := e.conn.Discover(ctx, crm.DiscoverQuery{Personas: []crm.PersonaRef{{Provider: "twitter", ExternalID: subjXID}}})
	if err != nil {
		t.Fatal(err)
	}
	want := fp.want()
	for _, obj := range []string{"Contact", "Individual", "Task", "Case"} {
		if !reflect.DeepEqual(found.Records[obj], want[obj]) {
			t.Errorf("%s = %v, want %v", obj, found.Records[obj], want[obj])
		}
	}
	// The Instagram persona is not linked to the contact, so it is not found.
	if !reflect.DeepEqual(found.Records["SocialPersona"], ids(fp.xPersona, fp.waPersona)) {
		t.Errorf("personas = %v", found.Records["SocialPersona"])
	}
	// Only the phone, in national form: the contact holds it as written by hand.
	found, err = e.conn.Discover(ctx, crm.DiscoverQuery{Phones: []string{"06-12345678"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(found.Records["Contact"], want["Contact"]) || !reflect.DeepEqual(found.Records["Case"], want["Case"]) {
		t.Errorf("by phone: %v", found.Records)
	}
	// Nobody.
	found, err = e.conn.Discover(ctx, crm.DiscoverQuery{Emails: []string{"nobody@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Records) != 0 || len(found.Posts) != 0 {
		t.Errorf("unknown subject found %v", found.Records)
	}
}

func TestDiscoverSharedPhoneIdentifiesNobodyAlone(t *testing.T) {
	e := newEnv(t, envOpts{})
	pieter, err := e.sb.Seed("Contact", map[string]any{"LastName": "Jansen", "Email": "pieter@example.nl", "Phone": "+31301234567"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sb.Seed("Contact", map[string]any{"LastName": "Jansen", "Email": "marieke@example.nl", "Phone": "030 123 4567"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, crm.DiscoverQuery{Phones: []string{"+31301234567"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Records["Contact"]) != 0 {
		t.Errorf("a shared landline alone found %v", found.Records["Contact"])
	}
	found, err = e.conn.Discover(ctx, crm.DiscoverQuery{Emails: []string{"pieter@example.nl"}, Phones: []string{"+31301234567"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(found.Records["Contact"], []string{pieter}) {
		t.Errorf("email and shared phone found %v, want only %s", found.Records["Contact"], pieter)
	}
}

// remaining returns every live record of the sandbox, by object.
func remaining(e *testEnv) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, obj := range []string{"Contact", "SocialPersona", "SocialPost", "Case", "Individual", "Task"} {
		out[obj] = e.sb.AllRecords(obj)
	}
	return out
}

// assertNoSubjectData fails when a record, live or in the Recycle Bin,
// holds personal data of the subject or points to one of her deleted
// records.
func assertNoSubjectData(t *testing.T, e *testEnv, fp footprint) {
	t.Helper()
	gone := []string{fp.contactID, fp.xPersona, fp.waPersona, fp.igPersona}
	for obj, recs := range remaining(e) {
		for _, r := range recs {
			raw, _ := json.Marshal(r)
			s := string(raw)
			for _, pii := range append(append([]string(nil), subjectPII...), gone...) {
				if obj == "Contact" && pii == fp.contactID && r["Id"] == fp.contactID {
					continue // an anonymised contact keeps its own id
				}
				if strings.Contains(s, pii) {
					t.Errorf("%s %v still holds %q", obj, r["Id"], pii)
				}
			}
		}
	}
}

// summary adds up results per object and action, whatever detail says
// how the records went.
func summary(res []crm.ErasureResult) map[string]int {
	out := map[string]int{}
	for _, r := range res {
		out[r.Object+"/"+r.Action] += r.Count
	}
	return out
}

// details lists the details of an object's results with the action.
func details(res []crm.ErasureResult, obj, action string) []string {
	var out []string
	for _, r := range res {
		if r.Object == obj && r.Action == action {
			out = append(out, r.Detail)
		}
	}
	return out
}

// TestEraseLeavesNothingOfTheSubject erases the subject in each way
// Salesforce lets records go: a Bulk API hardDelete job, a delete and
// emptyRecycleBin() (hard_delete off, or auto without the Bulk API Hard
// Delete permission). Each way leaves nothing of her, not even in the
// Recycle Bin, and a second run reports the same counts.
func TestEraseLeavesNothingOfTheSubject(t *testing.T) {
	for _, c := range []struct {
		name      string
		mode      string
		noHard    bool
		maxCalls  int64
		wantHow   string
		forbidHow string
	}{
		// Four hardDelete jobs (create, upload, close, poll; the persona
		// job also reads its failed row) and two updates.
		{name: "hard delete", mode: HardDeleteAuto, maxCalls: 19, wantHow: "hardDelete", forbidHow: "emptyRecycleBin"},
		// Four deletes, two updates and two emptyRecycleBin calls.
		{name: "recycle bin", mode: HardDeleteOff, maxCalls: 8, wantHow: "emptyRecycleBin", forbidHow: "hardDelete"},
		// The first hardDelete job is refused; the rest as above.
		{name: "auto without permission", mode: HardDeleteAuto, noHard: true, maxCalls: 9, wantHow: "emptyRecycleBin", forbidHow: "hardDelete job"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOpts{
				sandbox: func(o *sfsandbox.Options) { o.NoBulkHardDelete = c.noHard },
				config:  func(cfg *Config) { cfg.HardDelete = c.mode },
			})
			fp := seedSubject(t, e)
			ctx := context.Background()
			found, err := e.conn.Discover(ctx, subjectQuery())
			if err != nil {
				t.Fatal(err)
			}
			before := e.sb.TotalCalls()
			res, err := e.conn.Erase(ctx, found.Records)
			if err != nil {
				t.Fatal(err)
			}
			calls := e.sb.TotalCalls() - before
			t.Logf("erase took %d calls: %v", calls, e.sb.Calls())
			if calls > c.maxCalls {
				t.Errorf("erase took %d calls, want at most %d", calls, c.maxCalls)
			}
			for _, r := range res {
				if r.Policy == "" || !strings.HasPrefix(r.Policy, "mappings/salesforce.yaml erasure.") {
					t.Errorf("result %+v names no policy", r)
				}
				if r.Action == "erased" && (!strings.Contains(r.Detail, "cannot be restored") || strings.Contains(r.Detail, c.forbidHow)) {
					t.Errorf("erased result %+v: want %s", r, c.wantHow)
				}
				if r.Action == "retained" {
					t.Errorf("result %+v retained", r)
				}
			}
			wantCounts := map[string]int{
				"SocialPost/erased": 8, "SocialPersona/erased": 3, "Case/anonymised": 2, "Task/erased": 1,
				"Contact/erased": 1, "Individual/anonymised": 1,
			}
			if got := summary(res); !reflect.DeepEqual(got, wantCounts) {
				t.Errorf("results %v, want %v\n%+v", got, wantCounts, res)
			}
			if d := details(res, "SocialPost", "erased"); len(d) != 1 || !strings.Contains(d[0], c.wantHow) {
				t.Errorf("post details %q, want %s", d, c.wantHow)
			}
			for _, r := range res {
				if r.Object == "SocialPost" && r.Policy != "mappings/salesforce.yaml erasure.SocialPost: delete" {
					t.Errorf("post policy = %q", r.Policy)
				}
			}

			assertNoSubjectData(t, e, fp)
			posts := byField(e.sb.Records("SocialPost"), "ExternalPostId")
			if len(posts) != 3 || posts["i1"] == nil || posts["i3"] == nil || posts["o1"] == nil {
				t.Errorf("other customers' posts = %v", posts)
			}
			if len(e.sb.AllRecords("SocialPersona")) != 2 {
				t.Errorf("other customers' personas were touched: %v", e.sb.AllRecords("SocialPersona"))
			}
			cases := map[string]map[string]any{}
			for _, c := range e.sb.Records("Case") {
				cases[c["Id"].(string)] = c
			}
			for _, id := range []string{fp.xCase, fp.waCase} {
				c := cases[id]
				if c == nil || c["ContactId"] != nil || !strings.Contains(str(c["Subject"]), "removed") || !strings.Contains(str(c["Description"]), "removed") {
					t.Errorf("kept case %s = %v, want redacted and unlinked", id, c)
				}
			}
			if c := cases[fp.igCase]; c == nil || !strings.Contains(str(c["Description"]), "pakket") {
				t.Errorf("the other customer's case was changed: %v", c)
			}
			if len(e.sb.AllRecords("Contact")) != 1 {
				t.Errorf("contacts = %v, want only the other customer", e.sb.AllRecords("Contact"))
			}
			inds := e.sb.Records("Individual")
			if len(inds) != 1 || inds[0]["ShouldForget"] != true || inds[0]["FirstName"] != nil {
				t.Errorf("individual = %v", inds)
			}

			// Erase twice: the same counts, no error, and the records
			// are reported as already gone.
			again, err := e.conn.Erase(ctx, found.Records)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(summary(again), summary(res)) {
				t.Errorf("second erase = %+v\nfirst = %+v", again, res)
			}
			if d := details(again, "SocialPost", "erased"); len(d) != 1 || !strings.Contains(d[0], "already deleted permanently") {
				t.Errorf("second erase post details %q", d)
			}
			// Discovery afterwards finds only the kept, anonymised
			// Individual: it is no longer linked from any contact, so
			// nothing at all, not even in the Recycle Bin.
			after, err := e.conn.Discover(ctx, subjectQuery())
			if err != nil {
				t.Fatal(err)
			}
			if len(after.Records) != 0 {
				t.Errorf("after erasure discovery finds %v", after.Records)
			}
		})
	}
}

// TestErasePurgesWhatIsAlreadyInTheRecycleBin erases a subject whose
// records an earlier attempt (or an agent) had deleted already: a hard
// delete cannot reach the Recycle Bin, so those records are purged.
func TestErasePurgesWhatIsAlreadyInTheRecycleBin(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	// An earlier version deleted the posts and the contact, and stopped.
	recycle(t, e, fp, fp.contactID)
	if len(e.sb.AllRecords("SocialPost")) != 11 {
		t.Fatal("the deleted posts are not in the Recycle Bin")
	}
	// A new erasure finds them there (queryAll) and purges them.
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Records["SocialPost"]) != 8 || len(found.Records["Contact"]) != 1 {
		t.Fatalf("discovery found %v, want the 8 posts and the contact in the Recycle Bin", found.Records)
	}
	res, err := e.conn.Erase(ctx, found.Records)
	if err != nil {
		t.Fatal(err)
	}
	if d := details(res, "SocialPost", "erased"); len(d) != 1 || !strings.Contains(d[0], "emptyRecycleBin") {
		t.Errorf("post details %q, want purged", d)
	}
	if got := summary(res); got["SocialPost/erased"] != 8 || got["Contact/erased"] != 1 || got["SocialPersona/erased"] != 3 {
		t.Errorf("results %v", got)
	}
	assertNoSubjectData(t, e, fp)
}

// recycle deletes the subject's posts, and the extra records, with a plain
// delete: they go to the Recycle Bin, as an earlier erasure attempt or a
// delete by hand leaves them.
func recycle(t *testing.T, e *testEnv, fp footprint, extra ...string) {
	t.Helper()
	var ids []string
	for _, id := range fp.posts {
		ids = append(ids, id)
	}
	if _, err := e.conn.Client().CollectionDelete(context.Background(), append(ids, extra...)); err != nil {
		t.Fatal(err)
	}
}

// TestDiscoverLiveOnlyLeavesTheRecycleBinOut checks the discovery an
// erasure runs after its steps: records in the Recycle Bin (deleted, or
// purged and still listed by queryAll for a while) are not new data of the
// subject, so a LiveOnly discovery does not return them, while a plain one
// does.
func TestDiscoverLiveOnlyLeavesTheRecycleBinOut(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	recycle(t, e, fp)
	all, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	q := subjectQuery()
	q.LiveOnly = true
	live, err := e.conn.Discover(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Records["SocialPost"]) != 8 || len(live.Records["SocialPost"]) != 0 {
		t.Errorf("posts found: %d with the Recycle Bin, %d live only; want 8 and 0", len(all.Records["SocialPost"]), len(live.Records["SocialPost"]))
	}
	// The live contact and what links to it are still found; what only
	// the deleted posts led to is not.
	if len(live.Records["Contact"]) != 1 || len(live.Records["SocialPersona"]) == 0 {
		t.Errorf("live records %v, want the live contact and its personas", live.Records)
	}
}

// TestEraseWithoutPurgePermissionSaysWhereTheRecordsAre checks the
// honest ledger of an org that allows neither a hard delete nor a purge:
// the records are reported as retained in the Recycle Bin, with the date
// Salesforce purges them and what to grant.
func TestEraseWithoutPurgePermissionSaysWhereTheRecordsAre(t *testing.T) {
	e := newEnv(t, envOpts{sandbox: func(o *sfsandbox.Options) { o.NoBulkHardDelete, o.NoEmptyRecycleBin = true, true }})
	fp := seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.conn.Erase(ctx, found.Records)
	if err != nil {
		t.Fatal(err)
	}
	got := summary(res)
	if got["SocialPost/retained"] != 8 || got["Contact/retained"] != 1 || got["Task/retained"] != 1 || got["SocialPost/erased"] != 0 {
		t.Errorf("results %v\n%+v", got, res)
	}
	until := time.Now().AddDate(0, 0, 15).UTC().Format("2006-01-02")
	for _, r := range res {
		if r.Action != "retained" {
			continue
		}
		for _, want := range []string{"Recycle Bin until " + until, "after 15 days", "Bulk API Hard Delete", "Modify All Data", "INSUFFICIENT_ACCESS_OR_READONLY"} {
			if !strings.Contains(r.Detail, want) {
				t.Errorf("%s detail %q lacks %q", r.Object, r.Detail, want)
			}
		}
	}
	// The live records hold nothing of her; the Recycle Bin still does,
	// as the ledger says.
	for obj, recs := range map[string][]map[string]any{"SocialPost": e.sb.Records("SocialPost"), "Contact": e.sb.Records("Contact")} {
		for _, r := range recs {
			if r["Id"] == fp.contactID || strings.Contains(fmt.Sprint(r), "Mijn router") {
				t.Errorf("a live %s holds her data: %v", obj, r)
			}
		}
	}
	if n := len(e.sb.AllRecords("SocialPost")); n != 11 {
		t.Errorf("the Recycle Bin holds %d posts, want her 8 and the others' 3", n)
	}
	// Once the permission is granted, a new erasure purges them.
	e.sb.SetEmptyRecycleBin(true)
	found, err = e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.conn.Erase(ctx, found.Records)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(res); got["SocialPost/erased"] != 8 || got["SocialPost/retained"] != 0 {
		t.Errorf("after granting: %v", got)
	}
	assertNoSubjectData(t, e, fp)
}

// TestEraseBulkModeWithoutPermissionEscalates: with hard_delete bulk the
// erasure never uses the Recycle Bin; a missing permission is an error
// that says what to grant, and nothing was deleted.
func TestEraseBulkModeWithoutPermissionEscalates(t *testing.T) {
	e := newEnv(t, envOpts{
		sandbox: func(o *sfsandbox.Options) { o.NoBulkHardDelete = true },
		config:  func(cfg *Config) { cfg.HardDelete = HardDeleteBulk },
	})
	seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.conn.Erase(ctx, found.Records)
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "FEATURENOTENABLED" || !strings.Contains(ce.Message, "Bulk API Hard Delete") {
		t.Fatalf("err = %v, want a permanent FEATURENOTENABLED error", err)
	}
	if n := len(e.sb.AllRecords("SocialPost")); n != 11 || len(e.sb.Records("SocialPost")) != 11 {
		t.Errorf("posts were deleted: %d live", len(e.sb.Records("SocialPost")))
	}
}

// TestEraseHardDeleteJobIsPolled: Salesforce processes a job on its own
// time; the erasure polls until the job is done, and a job that outlives
// the activity's deadline is a transient error.
func TestEraseHardDeleteJobIsPolled(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	// The first two looks at each job find it still in progress.
	var mu sync.Mutex
	looks := map[string]int{}
	f := func(w http.ResponseWriter, r *http.Request) bool {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if r.Method != http.MethodGet || len(parts) != 6 || parts[3] != "jobs" {
			return false
		}
		mu.Lock()
		looks[parts[5]]++
		n := looks[parts[5]]
		mu.Unlock()
		if n > 2 {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": parts[5], "state": "InProgress", "numberRecordsProcessed": 0, "numberRecordsFailed": 0})
		return true
	}
	e.intercept.Store(&f)
	if _, err := e.conn.Erase(ctx, found.Records); err != nil {
		t.Fatal(err)
	}
	if len(looks) != 4 {
		t.Errorf("looked at %d jobs, want 4 (posts, personas, tasks, contact)", len(looks))
	}
	for job, n := range looks {
		if n != 3 {
			t.Errorf("job %s: %d looks, want 3 (twice in progress, then complete)", job, n)
		}
	}
	assertNoSubjectData(t, e, fp)

	e.intercept.Store(nil)
	e.sb.SetBulkJobDelay(time.Hour)
	seedSubject(t, e)
	found, err = e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = e.conn.Erase(short, found.Records)
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Kind != crm.Transient || ce.Code != "BULK_JOB_RUNNING" {
		t.Errorf("err = %v, want a transient BULK_JOB_RUNNING", err)
	}
}

func TestEraseContactSwitchAnonymise(t *testing.T) {
	base, err := os.ReadFile("../../../mappings/salesforce.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(base), "    action: delete\n    fallback: anonymise\n", "    action: anonymise\n", 1)
	if text == string(base) {
		t.Fatal("mapping lacks the contact switch")
	}
	m, err := mappings.Parse("mappings/salesforce.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{mapping: m})
	fp := seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.conn.Erase(ctx, found.Records)
	if err != nil {
		t.Fatal(err)
	}
	var contact *crm.ErasureResult
	for i, r := range res {
		if r.Object == "Contact" {
			contact = &res[i]
		}
	}
	if contact == nil || contact.Action != "anonymised" || contact.Count != 1 || contact.Policy != "mappings/salesforce.yaml erasure.Contact: anonymise" {
		t.Errorf("contact result = %+v", contact)
	}
	var kept map[string]any
	for _, c := range e.sb.Records("Contact") {
		if c["Id"] == fp.contactID {
			kept = c
		}
	}
	if kept == nil || kept["LastName"] != "Anonymised" || kept["Email"] != nil || kept["MobilePhone"] != nil || kept["IndividualId"] != fp.individualID {
		t.Errorf("anonymised contact = %v", kept)
	}
	assertNoSubjectData(t, e, fp)
}

// deleteFailed makes Salesforce refuse deleting the given ids, as it does
// for a Contact that an order or contract points to, by every delete path
// (REST, Collections, Bulk API).
func deleteFailed(e *testEnv, refuse map[string]bool, code string) {
	for id := range refuse {
		e.sb.FailDelete(id, code, "Sanne de Vries is associated with orders")
	}
}

func TestEraseRefusedContactDeleteFallsBackToAnonymise(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	deleteFailed(e, map[string]bool{fp.contactID: true}, "DELETE_FAILED")
	res, err := e.conn.Erase(ctx, found.Records)
	if err != nil {
		t.Fatal(err)
	}
	var contact []crm.ErasureResult
	for _, r := range res {
		if r.Object == "Contact" {
			contact = append(contact, r)
		}
	}
	if len(contact) != 1 || contact[0].Action != "anonymised" || !strings.Contains(contact[0].Detail, "DELETE_FAILED") ||
		contact[0].Policy != "mappings/salesforce.yaml erasure.Contact: delete, fallback anonymise" {
		t.Errorf("contact results = %+v", contact)
	}
	if strings.Contains(contact[0].Detail, "Sanne") {
		t.Errorf("detail quotes Salesforce's message: %q", contact[0].Detail)
	}
	assertNoSubjectData(t, e, fp)
}

func TestErasePermanentFailureEscalates(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	deleteFailed(e, map[string]bool{fp.posts["x1"]: true}, "INSUFFICIENT_ACCESS_OR_READONLY")
	res, err := e.conn.Erase(ctx, found.Records)
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "INSUFFICIENT_ACCESS_OR_READONLY" {
		t.Fatalf("err = %v, want a permanent crm.Error", err)
	}
	if !strings.Contains(ce.Message, "1 SocialPost") {
		t.Errorf("message = %q", ce.Message)
	}
	for _, pii := range append(subjectPII, fp.posts["x1"]) {
		if strings.Contains(ce.Message, pii) {
			t.Errorf("error message holds %q: %s", pii, ce.Message)
		}
	}
	// Everything else was still erased.
	for _, r := range res {
		if r.Object == "SocialPost" && r.Count != 7 {
			t.Errorf("posts erased = %d, want 7", r.Count)
		}
	}
	if len(res) < 6 {
		t.Errorf("results = %+v", res)
	}
}

func TestEraseOutageIsTransientThenSucceeds(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	e.sb.Outage(time.Hour)
	_, err = e.conn.Erase(ctx, found.Records)
	var ce *crm.Error
	if !errors.As(err, &ce) || ce.Kind != crm.Transient {
		t.Fatalf("erase during outage: err = %v, want a transient crm.Error", err)
	}
	if _, err := e.conn.Discover(ctx, subjectQuery()); crm.KindOf(err) != crm.Transient || err == nil {
		t.Errorf("discover during outage: err = %v", err)
	}
	if len(e.sb.Records("SocialPost")) != 11 {
		t.Error("records changed during the outage")
	}
	e.sb.Outage(0)
	if _, err := e.conn.Erase(ctx, found.Records); err != nil {
		t.Fatalf("erase after the outage: %v", err)
	}
	assertNoSubjectData(t, e, fp)
}

func TestExportReturnsTheRecordsFields(t *testing.T) {
	e := newEnv(t, envOpts{})
	fp := seedSubject(t, e)
	ctx := context.Background()
	found, err := e.conn.Discover(ctx, subjectQuery())
	if err != nil {
		t.Fatal(err)
	}
	before := e.sb.TotalCalls()
	out, err := e.conn.Export(ctx, found.Records)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export took %d calls", e.sb.TotalCalls()-before)
	if n := e.sb.TotalCalls() - before; n != 1 {
		t.Errorf("export took %d calls, want 1 composite", n)
	}
	for obj, list := range found.Records {
		if len(out[obj]) != len(list) {
			t.Errorf("%s: exported %d of %d", obj, len(out[obj]), len(list))
		}
		for _, r := range out[obj] {
			if _, ok := r["attributes"]; ok {
				t.Errorf("%s export keeps attributes", obj)
			}
		}
	}
	c := out["Contact"][0]
	if c["Email"] != subjEmail || c["MobilePhone"] != "06 12345678" || c["FirstName"] != "Sanne" || c["MailingStreet"] != "Oudegracht 12" {
		t.Errorf("contact export = %v", c)
	}
	texts := map[string]bool{}
	for _, p := range out["SocialPost"] {
		texts[str(p["Content"])] = true
		if p["ExternalPostId"] == nil || p["Provider"] == nil {
			t.Errorf("post export lacks fields: %v", p)
		}
	}
	if !texts["Mijn router is stuk"] || !texts["Bij mij ook kapot"] || texts["Waar blijft mijn pakket?"] {
		t.Errorf("post texts = %v", texts)
	}
	personas := byField(out["SocialPersona"], "Id")
	if personas[fp.xPersona]["Name"] != subjXHandle || personas[fp.xPersona]["ExternalId"] != subjXID {
		t.Errorf("persona export = %v", personas[fp.xPersona])
	}
	if out["Individual"][0]["LastName"] != "de Vries" || out["Task"][0]["Subject"] != "Bel Sanne terug" {
		t.Errorf("individual %v task %v", out["Individual"], out["Task"])
	}
	if _, err := e.conn.Export(ctx, map[string][]string{"Contact": {"003' OR Name != '"}}); crm.KindOf(err) != crm.Permanent {
		t.Errorf("malformed id: err = %v", err)
	}
}

func TestEraseRejectsMalformedInput(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	for _, recs := range []map[string][]string{
		{"Contact": {"sanne.devries@example.nl"}},
		{"Contact; DROP": {"003000000000001AAA"}},
	} {
		_, err := e.conn.Erase(ctx, recs)
		var ce *crm.Error
		if !errors.As(err, &ce) || ce.Kind != crm.Permanent {
			t.Errorf("%v: err = %v", recs, err)
			continue
		}
		if strings.Contains(ce.Message, "sanne") || strings.Contains(ce.Message, "DROP") {
			t.Errorf("error repeats the input: %s", ce.Message)
		}
	}
	if _, err := e.conn.Discover(ctx, crm.DiscoverQuery{ContactIDs: []string{"x' OR Id != '"}}); crm.KindOf(err) != crm.Permanent {
		t.Errorf("malformed contact id: err = %v", err)
	}
	// An object without a rule is retained, and nothing is called for it.
	before := e.sb.TotalCalls()
	res, err := e.conn.Erase(ctx, map[string][]string{"Account": {"001000000000001AAA"}})
	if err != nil || len(res) != 1 || res[0].Action != "retained" || e.sb.TotalCalls() != before {
		t.Errorf("account: %+v %v", res, err)
	}
}

func TestPhoneFormsAndProviders(t *testing.T) {
	got := phoneForms("+31612345678")
	for _, want := range []string{"+31612345678", "+31 6 12345678", "06 12345678", "0612345678"} {
		if !contains(got, want) {
			t.Errorf("phoneForms = %v, lacks %q", got, want)
		}
	}
	e := newEnv(t, envOpts{})
	for dsr, sf := range map[string]string{"x": "Twitter", "messenger": "Facebook", "instagram": "Instagram", "whatsapp": "WhatsApp"} {
		if got := e.conn.sfProvider(dsr); got != sf {
			t.Errorf("sfProvider(%s) = %s, want %s", dsr, got, sf)
		}
		if got := e.conn.dsrProvider(sf); got != dsr {
			t.Errorf("dsrProvider(%s) = %s, want %s", sf, got, dsr)
		}
	}
	if got := e.conn.dsrProvider("Other"); got != "" {
		t.Errorf("dsrProvider(Other) = %q", got)
	}
}

// quotesBalanced reports whether every SOQL string literal in q is closed:
// an even number of quotes that no backslash escapes.
func quotesBalanced(q string) bool {
	n := 0
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case '\\':
			i++
		case '\'':
			n++
		}
	}
	return n%2 == 0
}

// FuzzDiscoverQuery feeds request identifiers (outside input) to the query
// builder: it must never panic, and every value must stay inside its SOQL
// string literal.
func FuzzDiscoverQuery(f *testing.F) {
	f.Add(subjEmail, "06-12345678", "x", "4242", "003000000000001AAA")
	f.Add("o'brien@example.org", "+31 6 1234 5678", "whatsapp", "+31 6 12345678", "")
	f.Add(`x\' OR Id != '`, "'; DELETE", "twitter", `a\`, "003' OR Id != '")
	f.Add("", "", "", "", "")
	c := &Connector{m: mappings.Default()}
	f.Fuzz(func(t *testing.T, email, phone, provider, ext, contactID string) {
		q := crm.DiscoverQuery{Emails: []string{email}, Phones: []string{phone}, Personas: []crm.PersonaRef{{Provider: provider, ExternalID: ext}}}
		if contactID != "" {
			q.ContactIDs = []string{contactID}
		}
		qs, err := newDiscovery(c).identQueries(q)
		if err != nil {
			// The message is fixed: it never repeats the input.
			var ce *crm.Error
			if !errors.As(err, &ce) || ce.Kind != crm.Permanent || ce.Message != "a contact id of the request is not a Salesforce Contact id; correct the request" {
				t.Fatalf("err = %v", err)
			}
			return
		}
		for _, q := range qs {
			if !quotesBalanced(q.soql) {
				t.Fatalf("unbalanced SOQL: %s", q.soql)
			}
		}
	})
}

// FuzzDiscoverAnswer feeds a query answer (outside input from Salesforce)
// through every record handler of Discover and builds the footprint: no
// panic, and only Salesforce ids and known providers come out.
func FuzzDiscoverAnswer(f *testing.F) {
	f.Add([]byte(`{"done":true,"records":[{"attributes":{"type":"SocialPost"},"Id":"0ST000000000001AAA","PersonaId":"0SP000000000001AAA","ParentId":"500000000000001AAA","IsOutbound":false,"Provider":"Twitter","ExternalPostId":"x1","MessageType":"Direct"}]}`))
	f.Add([]byte(`{"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01g-2000","records":[{"Id":"003000000000001AAA","Email":"a@b.c","Phone":"0612345678","IndividualId":"0PK000000000001AAA"}]}`))
	f.Add([]byte(`{"records":[{"Id":"500000000000001AAA","ContactId":"003000000000001AAA","ReplyToId":"0ST000000000001AAA","IsOutbound":true}]}`))
	f.Add([]byte(`{"records":[{"Id":12,"ParentId":["x"],"Posted":null}]}`))
	f.Add([]byte(`[]`))
	c := &Connector{m: mappings.Default()}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, _, err := parseQueryAnswer(body)
		if err != nil {
			return
		}
		d := newDiscovery(c)
		d.identContacts(recs, map[string]bool{"a@b.c": true}, map[string]bool{}, map[string]bool{"+31612345678": true})
		d.addPersonas(recs)
		d.addSubjectPosts(recs)
		d.addCases(true)(recs)
		d.addCasePosts(recs)
		d.addTasks(recs)
		for _, q := range d.linkQueries() {
			if !quotesBalanced(q.soql) {
				t.Fatalf("unbalanced SOQL: %s", q.soql)
			}
		}
		out := d.result()
		for obj, ids := range out.Records {
			for _, id := range ids {
				if !isSFID(id) {
					t.Fatalf("%s id %q is not a Salesforce id", obj, id)
				}
			}
		}
		for _, p := range out.Posts {
			if _, ok := sfProviders[p.Provider]; !ok {
				t.Fatalf("post provider %q", p.Provider)
			}
		}
	})
}
