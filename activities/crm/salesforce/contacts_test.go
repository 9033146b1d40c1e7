package salesforce

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/identity"
)

func contactIDs(cs []crm.Contact) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	sort.Strings(out)
	return out
}

// A contact's number is found however a CRM user typed it, in Phone or in
// MobilePhone, and the identity decision links the one it belongs to.
func TestFindContactsByPhoneInAnySpelling(t *testing.T) {
	e := newEnv(t, envOpts{})
	seed := func(field, number string) string {
		t.Helper()
		id, err := e.sb.Seed("Contact", map[string]any{"LastName": "Jansen", field: number})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	var want []string
	for _, s := range []struct{ field, number string }{
		{"MobilePhone", "06-12345678"},
		{"Phone", "+31 6 12345678"},
		{"MobilePhone", "0031612345678"},
		{"Phone", "06 1234 5678"},
		{"MobilePhone", "+31 (0)6 12345678"},
		{"Phone", "0612345678"},
		{"MobilePhone", "+31612345678"},
		{"Phone", "(06) 12345678"},
		{"MobilePhone", "06 12 34 56 78"},
	} {
		want = append(want, seed(s.field, s.number))
	}
	sort.Strings(want)
	seed("MobilePhone", "06-12345679") // another number
	landline := seed("Phone", "020-1234567")

	ctx := context.Background()
	for _, asked := range []string{"+31612345678", "06-12345678"} {
		got, err := e.conn.FindContacts(ctx, crm.ContactQuery{Phone: asked})
		if err != nil {
			t.Fatal(err)
		}
		ids := contactIDs(got)
		for _, id := range want {
			if !slices.Contains(ids, id) {
				t.Errorf("asked %s: contact %s not found; got %d contacts", asked, id, len(ids))
			}
		}
		for _, c := range got {
			if c.Phone == "06-12345679" || c.Mobile == "06-12345679" {
				t.Errorf("asked %s: another number came back: %+v", asked, c)
			}
		}
	}
	got, err := e.conn.FindContacts(ctx, crm.ContactQuery{Phone: "+31201234567"})
	if err != nil || len(got) != 1 || got[0].ID != landline {
		t.Fatalf("landline: %+v %v", got, err)
	}

	// One contact holding the number in a national spelling is linked.
	e2 := newEnv(t, envOpts{})
	only, err := e2.sb.Seed("Contact", map[string]any{"LastName": "Jansen", "MobilePhone": "06-12345678"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.sb.Seed("Contact", map[string]any{"LastName": "Pietersen", "MobilePhone": "06-87654321"}); err != nil {
		t.Fatal(err)
	}
	found, err := e2.conn.FindContacts(ctx, crm.ContactQuery{Phone: "+31612345678"})
	if err != nil {
		t.Fatal(err)
	}
	d := identity.Decide(identity.Evidence{Details: identity.Details{Phones: []string{"+31612345678"}}}, identity.Candidates{Contacts: found})
	if d.Action != identity.Link || d.ContactID != only {
		t.Errorf("decision = %+v, want a link to %s", d, only)
	}
}

// A reviewer's "choose another contact" looks the contact up by its id.
func TestFindContactsByID(t *testing.T) {
	e := newEnv(t, envOpts{})
	id, err := e.sb.Seed("Contact", map[string]any{"LastName": "Jansen", "Email": "jan@example.nl"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sb.Seed("Contact", map[string]any{"LastName": "Pietersen"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, asked := range []string{id, id[:15], " " + id + " "} {
		got, err := e.conn.FindContacts(ctx, crm.ContactQuery{ID: asked})
		if err != nil || len(got) != 1 || got[0].ID != id || got[0].Email != "jan@example.nl" {
			t.Fatalf("by id %q: %+v %v", asked, got, err)
		}
	}
	// A well-formed id of no contact finds nothing.
	missing := "003" + id[3:14] + "Z" + id[15:]
	if missing == id {
		missing = "003" + id[3:14] + "Y" + id[15:]
	}
	got, err := e.conn.FindContacts(ctx, crm.ContactQuery{ID: missing[:15]})
	if err != nil || len(got) != 0 {
		t.Fatalf("unknown id: %+v %v", got, err)
	}
	// Anything else is refused before a call is made.
	before := e.sb.TotalCalls()
	for _, bad := range []string{"500000000000001AAA", "003' OR Id != '", "not-an-id", "003x"} {
		_, err := e.conn.FindContacts(ctx, crm.ContactQuery{ID: bad})
		var ce *crm.Error
		if !asCRM(err, &ce) || ce.Kind != crm.Permanent || ce.Code != "MALFORMED_ID" {
			t.Errorf("id %q: err = %v", bad, err)
		}
	}
	if e.sb.TotalCalls() != before {
		t.Errorf("a malformed id made %d calls", e.sb.TotalCalls()-before)
	}
}

// An access or erasure request by phone number finds the contact however
// the number was typed.
func TestDiscoverByPhoneInAnySpelling(t *testing.T) {
	e := newEnv(t, envOpts{})
	id, err := e.sb.Seed("Contact", map[string]any{"LastName": "Jansen", "MobilePhone": "06-12345678"})
	if err != nil {
		t.Fatal(err)
	}
	found, err := e.conn.Discover(context.Background(), crm.DiscoverQuery{Phones: []string{"+31612345678"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := found.Records["Contact"]; len(got) != 1 || got[0] != id {
		t.Errorf("discovered contacts %v, want %s", got, id)
	}
}
