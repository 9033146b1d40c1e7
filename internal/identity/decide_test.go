package identity

import (
	"reflect"
	"strings"
	"testing"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// The CRM as the tests see it. Phones are stored as people type them.
var (
	anna  = crm.Contact{ID: "003A", FirstName: "Anna", LastName: "Jansen", Email: "anna@example.nl", Phone: "06-12345678", PostalCode: "1234 AB", Street: "Dorpsstraat 12a"}
	bas   = crm.Contact{ID: "003B", FirstName: "Bas", LastName: "Jansen", Email: "bas@example.nl", Mobile: "+31 6 12345678", PostalCode: "1234AB", Street: "Dorpsstraat 12a"}
	carla = crm.Contact{ID: "003C", FirstName: "Carla", LastName: "de Vries", Email: "carla@example.com", Phone: "+31 (0)20 123 4567", PostalCode: "3511 LX", Street: "Oudegracht 7-II"}
	dup   = crm.Contact{ID: "003D", FirstName: "Carla", LastName: "de Vries", Email: "Carla@Example.com"}
	erik  = crm.Contact{ID: "003E", FirstName: "Erik", LastName: "Smit", Phone: "0687654321", PostalCode: "9711 AA", Street: "Grote Markt 1"}
)

func contacts(cs ...crm.Contact) Candidates { return Candidates{Contacts: cs} }

func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		ev        Evidence
		cands     Candidates
		action    Action
		contactID string
		rule      string
		matches   []Match
	}{
		{
			name:   "exact email, one contact",
			ev:     Evidence{Details: Details{Emails: []string{"carla@example.com"}}},
			cands:  contacts(carla, anna),
			action: Link, contactID: "003C", rule: RuleExactEmail,
			matches: []Match{{ContactID: "003C", Fields: []Field{FieldEmail}}},
		},
		{
			name:   "email compared without case",
			ev:     Evidence{Details: Details{Emails: []string{"ANNA@example.nl"}}},
			cands:  contacts(anna),
			action: Link, contactID: "003A", rule: RuleExactEmail,
			matches: []Match{{ContactID: "003A", Fields: []Field{FieldEmail}}},
		},
		{
			name:   "exact phone against a formatted CRM phone",
			ev:     Evidence{Details: Details{Phones: []string{"+31201234567"}}},
			cands:  contacts(carla, erik),
			action: Link, contactID: "003C", rule: RuleExactPhone,
			matches: []Match{{ContactID: "003C", Fields: []Field{FieldPhone}}},
		},
		{
			name:   "exact phone against the mobile field",
			ev:     Evidence{Details: Details{Phones: []string{"+31612345678"}}},
			cands:  contacts(bas, erik),
			action: Link, contactID: "003B", rule: RuleExactPhone,
			matches: []Match{{ContactID: "003B", Fields: []Field{FieldPhone}}},
		},
		{
			name:   "household shares a phone: review",
			ev:     Evidence{Details: Details{Phones: []string{"+31612345678"}}},
			cands:  contacts(anna, bas),
			action: Review, rule: RuleSeveralCandidates,
			matches: []Match{{ContactID: "003A", Fields: []Field{FieldPhone}}, {ContactID: "003B", Fields: []Field{FieldPhone}}},
		},
		{
			name:   "household phone plus an email that picks one: link by email",
			ev:     Evidence{Details: Details{Emails: []string{"bas@example.nl"}, Phones: []string{"+31612345678"}}},
			cands:  contacts(anna, bas),
			action: Link, contactID: "003B", rule: RuleExactEmail,
			matches: []Match{{ContactID: "003B", Fields: []Field{FieldEmail, FieldPhone}}, {ContactID: "003A", Fields: []Field{FieldPhone}}},
		},
		{
			name:   "email to A, phone to B: conflicting, review",
			ev:     Evidence{Details: Details{Emails: []string{"carla@example.com"}, Phones: []string{"+31687654321"}}},
			cands:  contacts(carla, erik),
			action: Review, rule: RuleConflictingEvidence,
			matches: []Match{{ContactID: "003C", Fields: []Field{FieldEmail}}, {ContactID: "003E", Fields: []Field{FieldPhone}}},
		},
		{
			name:   "two emails pointing at two contacts: conflicting",
			ev:     Evidence{Details: Details{Emails: []string{"anna@example.nl", "carla@example.com"}}},
			cands:  contacts(anna, carla),
			action: Review, rule: RuleConflictingEvidence,
			matches: []Match{{ContactID: "003A", Fields: []Field{FieldEmail}}, {ContactID: "003C", Fields: []Field{FieldEmail}}},
		},
		{
			name:   "duplicate contacts share an email: review",
			ev:     Evidence{Details: Details{Emails: []string{"carla@example.com"}}},
			cands:  contacts(carla, dup),
			action: Review, rule: RuleSeveralCandidates,
			matches: []Match{{ContactID: "003C", Fields: []Field{FieldEmail}}, {ContactID: "003D", Fields: []Field{FieldEmail}}},
		},
		{
			name:   "unknown email does not block a unique phone",
			ev:     Evidence{Details: Details{Emails: []string{"new@example.org"}, Phones: []string{"+31687654321"}}},
			cands:  contacts(erik),
			action: Link, contactID: "003E", rule: RuleExactPhone,
			matches: []Match{{ContactID: "003E", Fields: []Field{FieldPhone}}},
		},
		{
			name: "postcode, house number and last name: link",
			ev: Evidence{Details: Details{
				Addresses: []Address{{Postcode: "3511LX", HouseNumber: "7", Addition: "II"}},
				Names:     []string{"Carla de Vries"},
			}},
			cands:  contacts(carla, dup, erik),
			action: Link, contactID: "003C", rule: RuleAddressLastName,
			matches: []Match{{ContactID: "003C", Fields: []Field{FieldAddress}}},
		},
		{
			name: "household address with shared last name: review",
			ev: Evidence{Details: Details{
				Addresses: []Address{{Postcode: "1234AB", HouseNumber: "12", Addition: "A"}},
				Names:     []string{"A. Jansen"},
			}},
			cands:  contacts(anna, bas),
			action: Review, rule: RuleSeveralCandidates,
			matches: []Match{{ContactID: "003A", Fields: []Field{FieldAddress}}, {ContactID: "003B", Fields: []Field{FieldAddress}}},
		},
		{
			name: "address without addition is another address",
			ev: Evidence{Details: Details{
				Addresses: []Address{{Postcode: "3511LX", HouseNumber: "7"}},
				Names:     []string{"Carla de Vries"},
			}},
			cands:  contacts(carla),
			action: None, rule: RuleNoMatchUnlinked,
		},
		{
			name: "address with a first name only is not enough",
			ev: Evidence{Details: Details{
				Addresses: []Address{{Postcode: "9711AA", HouseNumber: "1"}},
				Names:     []string{"Erik"},
			}},
			cands:  contacts(erik),
			action: None, rule: RuleNoMatchUnlinked,
		},
		{
			name: "address without a name is not enough",
			ev: Evidence{Details: Details{
				Addresses: []Address{{Postcode: "9711AA", HouseNumber: "1"}},
			}},
			cands:  contacts(erik),
			action: None, rule: RuleNoMatchUnlinked,
		},
		{
			name: "household shares phone, address and last name: review",
			ev: Evidence{Details: Details{
				Phones:    []string{"+31612345678"},
				Addresses: []Address{{Postcode: "1234AB", HouseNumber: "12", Addition: "A"}},
				Names:     []string{"Bas Jansen"},
			}},
			cands:  contacts(anna, bas),
			action: Review, rule: RuleSeveralCandidates,
			matches: []Match{{ContactID: "003A", Fields: []Field{FieldPhone, FieldAddress}}, {ContactID: "003B", Fields: []Field{FieldPhone, FieldAddress}}},
		},
		{
			name:   "handle linked to another contact: review",
			ev:     Evidence{Details: Details{Emails: []string{"carla@example.com"}}, ExistingContactID: "003E"},
			cands:  contacts(carla),
			action: Review, rule: RuleLinkedElsewhere,
			matches: []Match{{ContactID: "003C", Fields: []Field{FieldEmail}}},
		},
		{
			name:   "handle linked to the same contact: nothing to do",
			ev:     Evidence{Details: Details{Emails: []string{"carla@example.com"}}, ExistingContactID: "003C"},
			cands:  contacts(carla),
			action: None, contactID: "003C", rule: RuleAlreadyLinked,
			matches: []Match{{ContactID: "003C", Fields: []Field{FieldEmail}}},
		},
		{
			name:   "handle linked, household phone includes it: nothing to do",
			ev:     Evidence{Details: Details{Phones: []string{"+31612345678"}}, ExistingContactID: "003A"},
			cands:  contacts(anna, bas),
			action: None, contactID: "003A", rule: RuleAlreadyLinked,
			matches: []Match{{ContactID: "003A", Fields: []Field{FieldPhone}}, {ContactID: "003B", Fields: []Field{FieldPhone}}},
		},
		{
			name:   "handle linked, no matching details: keep the link",
			ev:     Evidence{Details: Details{Emails: []string{"new@example.org"}}, ExistingContactID: "003A"},
			cands:  contacts(),
			action: None, contactID: "003A", rule: RuleAlreadyLinked,
		},
		{
			name:   "no match, leave unlinked by default",
			ev:     Evidence{Details: Details{Emails: []string{"new@example.org"}}},
			cands:  contacts(anna),
			action: None, rule: RuleNoMatchUnlinked,
		},
		{
			name:   "no match, create contact policy",
			ev:     Evidence{Details: Details{Phones: []string{"+31699999999"}}, NoMatch: CreateContact},
			cands:  contacts(),
			action: Create, rule: RuleNoMatchCreate,
		},
		{
			name:   "no match, create policy but only a postcode",
			ev:     Evidence{Details: Details{Addresses: []Address{{Postcode: "1234AB"}}}, NoMatch: CreateContact},
			cands:  contacts(),
			action: None, rule: RuleNoMatchUnlinked,
		},
		{
			name:   "no details at all",
			ev:     Evidence{NoMatch: CreateContact},
			cands:  contacts(anna),
			action: None, rule: RuleNoDetails,
		},
		{
			name:   "candidates without ID and repeats are ignored",
			ev:     Evidence{Details: Details{Emails: []string{"anna@example.nl"}}},
			cands:  contacts(crm.Contact{Email: "anna@example.nl"}, anna, anna),
			action: Link, contactID: "003A", rule: RuleExactEmail,
			matches: []Match{{ContactID: "003A", Fields: []Field{FieldEmail}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.ev, tt.cands)
			if got.Action != tt.action || got.ContactID != tt.contactID || got.Rule != tt.rule {
				t.Fatalf("Decide = %s %q by %s (%v), want %s %q by %s", got.Action, got.ContactID, got.Rule, got.Reasons, tt.action, tt.contactID, tt.rule)
			}
			if !reflect.DeepEqual(got.Matches, tt.matches) {
				t.Errorf("matches = %+v, want %+v", got.Matches, tt.matches)
			}
			if len(got.Reasons) == 0 {
				t.Errorf("decision has no reasons")
			}
			for _, r := range got.Reasons {
				for _, pii := range []string{"@", "+31", "Jansen", "Vries", "1234AB"} {
					if strings.Contains(r, pii) {
						t.Errorf("reason %q contains personal data %q", r, pii)
					}
				}
			}
		})
	}
}

// TestExtractThenDecide runs a DM through both halves, as the activity will.
func TestExtractThenDecide(t *testing.T) {
	dm := "Hoi, mijn mail is <Carla@Example.com> en mijn nummer 020-1234567. Groet, Carla de Vries"
	ev := Evidence{Details: Extract(dm, Options{})}
	got := Decide(ev, contacts(anna, carla, erik))
	if got.Action != Link || got.ContactID != "003C" || got.Rule != RuleExactEmail {
		t.Fatalf("got %+v", got)
	}
	if want := []Field{FieldEmail, FieldPhone}; !reflect.DeepEqual(got.Matches[0].Fields, want) {
		t.Errorf("fields = %v, want %v", got.Matches[0].Fields, want)
	}
}

func TestContactFromDetails(t *testing.T) {
	d := Details{
		Emails:    []string{"sanne@example.nl", "other@example.nl"},
		Phones:    []string{"+31612345678"},
		Addresses: []Address{{Postcode: "1234AB", HouseNumber: "12"}},
		Names:     []string{"Sanne van der Berg"},
	}
	want := crm.Contact{FirstName: "Sanne", LastName: "van der Berg", Email: "sanne@example.nl", Phone: "+31612345678", PostalCode: "1234AB"}
	if got := ContactFromDetails(d); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestSplitName(t *testing.T) {
	tests := []struct{ in, first, last string }{
		{"Sanne de Vries", "Sanne", "de Vries"},
		{"Jan Peter van den Heuvel", "Jan Peter", "van den Heuvel"},
		{"Emma Johnson", "Emma", "Johnson"},
		{"Sanne", "", "Sanne"},
		{"", "", ""},
	}
	for _, tt := range tests {
		first, last := SplitName(tt.in)
		if first != tt.first || last != tt.last {
			t.Errorf("SplitName(%q) = %q, %q; want %q, %q", tt.in, first, last, tt.first, tt.last)
		}
	}
}

func TestNormalisePhone(t *testing.T) {
	tests := map[string]string{
		"06-12345678":        "+31612345678",
		"+31 (0)6 1234 5678": "+31612345678",
		"0031 20 123 4567":   "+31201234567",
		"":                   "",
		"n/a":                "",
		"12345":              "",
	}
	for in, want := range tests {
		if got := NormalisePhone(in, ""); got != want {
			t.Errorf("NormalisePhone(%q) = %q, want %q", in, got, want)
		}
	}
}
