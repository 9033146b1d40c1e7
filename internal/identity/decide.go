package identity

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// Action is what the caller must do with a handle after a decision.
type Action string

// The actions a Decision can ask for.
const (
	// Link means link the handle's persona to Decision.ContactID now.
	Link Action = "link"
	// Review means put the case in the review queue; never link
	// automatically. Decision.Matches lists the candidates.
	Review Action = "review"
	// Create means create a new contact from the details (see
	// ContactFromDetails) and link the persona to it.
	Create Action = "create"
	// None means change nothing.
	None Action = "none"
)

// NoMatchPolicy is what to do when the details match no contact.
type NoMatchPolicy string

// The no-match policies.
const (
	// LeaveUnlinked leaves the persona parented to its post until an agent
	// decides. It is the default.
	LeaveUnlinked NoMatchPolicy = "leave_unlinked"
	// CreateContact creates a new contact from the details.
	CreateContact NoMatchPolicy = "create_contact"
)

// The rule names a Decision records for the evidence trail. They are
// stable: stores and reports keep them.
const (
	RuleExactEmail          = "exact-email"
	RuleExactPhone          = "exact-phone"
	RuleAddressLastName     = "postcode-house-number-last-name"
	RuleSeveralCandidates   = "several-candidates"
	RuleConflictingEvidence = "conflicting-evidence"
	RuleLinkedElsewhere     = "handle-linked-elsewhere"
	RuleAlreadyLinked       = "already-linked"
	RuleNoMatchCreate       = "no-match-create-contact"
	RuleNoMatchUnlinked     = "no-match-leave-unlinked"
	RuleNoDetails           = "no-details"
)

// Field names a kind of evidence that matched a contact.
type Field string

// The fields evidence can match on.
const (
	FieldEmail   Field = "email"
	FieldPhone   Field = "phone"
	FieldAddress Field = "postcode+house-number+last-name"
)

// Evidence is what is known about one handle: the details it sent in
// private messages and the contact it is already linked to, if any.
type Evidence struct {
	// Details were extracted from the handle's private messages only.
	Details Details `json:"details"`
	// ExistingContactID is the contact the handle is linked to already, or
	// empty.
	ExistingContactID string `json:"existing_contact_id,omitempty"`
	// NoMatch is the configured policy for when nothing matches. Default:
	// LeaveUnlinked.
	NoMatch NoMatchPolicy `json:"no_match,omitempty"`
	// DefaultRegion reads the CRM's phone fields written in national
	// format. Default: "NL".
	DefaultRegion string `json:"default_region,omitempty"`
}

// Candidates are the CRM contacts found for the evidence, typically the
// union of Connector.FindContacts for each email, phone and postcode. Decide
// works out itself which fields of each contact match, so extra contacts
// that match nothing are harmless.
type Candidates struct {
	Contacts []crm.Contact `json:"contacts"`
}

// Match is one candidate contact and the evidence that points at it.
type Match struct {
	ContactID string  `json:"contact_id"`
	Fields    []Field `json:"fields"`
}

// Decision is the outcome of the match rules, with the rule that decided it
// for the evidence trail.
type Decision struct {
	// Action says what to do.
	Action Action `json:"action"`
	// ContactID is the contact to link for Link, and the current contact
	// for None when the handle is already linked.
	ContactID string `json:"contact_id,omitempty"`
	// Rule is the name of the rule that decided (one of the Rule constants).
	Rule string `json:"rule"`
	// Reasons explain the decision in words without personal data: field
	// names, counts and contact IDs only.
	Reasons []string `json:"reasons,omitempty"`
	// Matches lists every contact some evidence points at, for review.
	Matches []Match `json:"matches,omitempty"`
}

// clue is one extracted value and the contacts it matches.
type clue struct {
	field    Field
	contacts []string // contact IDs, in candidate order, no duplicates
}

// Decide applies the match rules to the evidence and candidates:
//
//   - exactly one contact matches an exact email, or an exact E.164 phone,
//     and no other evidence points elsewhere: link (exact-email,
//     exact-phone);
//   - postcode, house number and last name together match exactly one
//     contact, likewise: link (postcode-house-number-last-name);
//   - several candidates (a household sharing a phone, duplicate contacts),
//     conflicting evidence (the email points to A, the phone to B), or a
//     handle already linked to another contact: review, never automatic;
//   - no match: the NoMatch policy (create a contact, or leave unlinked).
//
// Each extracted value is one clue. A contact wins only when every clue
// that matched anything includes it and at least one clue matched it
// alone; a clue that matched nothing (an email unknown to the CRM) is no
// conflict.
func Decide(ev Evidence, cands Candidates) Decision {
	region := ev.DefaultRegion
	if region == "" {
		region = DefaultRegion
	}
	contacts := uniqueContacts(cands.Contacts)
	clues := buildClues(ev.Details, contacts, region)
	matches := matchesOf(clues)

	if ev.ExistingContactID != "" {
		return decideLinked(ev.ExistingContactID, clues, matches)
	}
	if len(clues) == 0 {
		return decideNoMatch(ev)
	}
	winner, rule, ok := consistentWinner(clues)
	if ok {
		return Decision{
			Action:    Link,
			ContactID: winner,
			Rule:      rule,
			Reasons:   describe(clues),
			Matches:   matches,
		}
	}
	rule = RuleSeveralCandidates
	if conflicting(clues) {
		rule = RuleConflictingEvidence
	}
	return Decision{Action: Review, Rule: rule, Reasons: describe(clues), Matches: matches}
}

// decideLinked handles a handle that is linked already: evidence that
// agrees changes nothing, evidence that points anywhere else goes to review.
func decideLinked(existing string, clues []clue, matches []Match) Decision {
	for _, c := range clues {
		if !contains(c.contacts, existing) {
			reasons := append(describe(clues), "handle is already linked to contact "+existing)
			return Decision{Action: Review, Rule: RuleLinkedElsewhere, Reasons: reasons, Matches: matches}
		}
	}
	return Decision{
		Action:    None,
		ContactID: existing,
		Rule:      RuleAlreadyLinked,
		Reasons:   append(describe(clues), "handle is already linked to contact "+existing),
		Matches:   matches,
	}
}

// decideNoMatch applies the no-match policy. A contact is created only from
// an email or a phone number: a postcode or a name alone identifies no one.
func decideNoMatch(ev Evidence) Decision {
	d := ev.Details
	if d.Empty() {
		return Decision{Action: None, Rule: RuleNoDetails, Reasons: []string{"no contact details in private messages"}}
	}
	reasons := []string{fmt.Sprintf("%d email(s), %d phone(s), %d address(es) matched no contact", len(d.Emails), len(d.Phones), len(d.Addresses))}
	if ev.NoMatch == CreateContact && (len(d.Emails) > 0 || len(d.Phones) > 0) {
		return Decision{Action: Create, Rule: RuleNoMatchCreate, Reasons: reasons}
	}
	if ev.NoMatch == CreateContact {
		reasons = append(reasons, "no email or phone to create a contact from")
	}
	return Decision{Action: None, Rule: RuleNoMatchUnlinked, Reasons: reasons}
}

// consistentWinner returns the one contact every clue agrees on, and the
// strongest rule that picked it out alone.
func consistentWinner(clues []clue) (string, string, bool) {
	var winner string
	for _, c := range clues {
		if len(c.contacts) != 1 {
			continue
		}
		if winner != "" && winner != c.contacts[0] {
			return "", "", false
		}
		winner = c.contacts[0]
	}
	if winner == "" {
		return "", "", false
	}
	for _, c := range clues {
		if !contains(c.contacts, winner) {
			return "", "", false
		}
	}
	for _, f := range []Field{FieldEmail, FieldPhone, FieldAddress} {
		for _, c := range clues {
			if c.field == f && len(c.contacts) == 1 {
				return winner, ruleFor(f), true
			}
		}
	}
	return "", "", false
}

func ruleFor(f Field) string {
	switch f {
	case FieldEmail:
		return RuleExactEmail
	case FieldPhone:
		return RuleExactPhone
	}
	return RuleAddressLastName
}

// conflicting reports whether two clues point at disjoint sets of contacts.
func conflicting(clues []clue) bool {
	for i := range clues {
		for j := i + 1; j < len(clues); j++ {
			if !overlap(clues[i].contacts, clues[j].contacts) {
				return true
			}
		}
	}
	return false
}

// buildClues matches every extracted value against every contact and keeps
// the values that matched at least one.
func buildClues(d Details, contacts []crm.Contact, region string) []clue {
	var clues []clue
	add := func(f Field, match func(crm.Contact) bool) {
		var ids []string
		for _, c := range contacts {
			if match(c) {
				ids = append(ids, c.ID)
			}
		}
		if len(ids) > 0 {
			clues = append(clues, clue{field: f, contacts: ids})
		}
	}
	for _, e := range d.Emails {
		want := strings.ToLower(strings.TrimSpace(e))
		add(FieldEmail, func(c crm.Contact) bool {
			return want != "" && strings.ToLower(strings.TrimSpace(c.Email)) == want
		})
	}
	for _, p := range d.Phones {
		add(FieldPhone, func(c crm.Contact) bool {
			return p != "" && (NormalisePhone(c.Phone, region) == p || NormalisePhone(c.Mobile, region) == p)
		})
	}
	for _, a := range d.Addresses {
		if a.HouseNumber == "" || len(d.Names) == 0 {
			continue
		}
		add(FieldAddress, func(c crm.Contact) bool {
			return addressMatches(a, c) && lastNameMatches(d.Names, c.LastName)
		})
	}
	return clues
}

// uniqueContacts drops contacts without an ID and repeats of the same ID,
// since the caller may merge several FindContacts answers.
func uniqueContacts(in []crm.Contact) []crm.Contact {
	seen := make(map[string]bool, len(in))
	var out []crm.Contact
	for _, c := range in {
		if c.ID == "" || seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	return out
}

// NormalisePhone returns a phone number as a CRM stores it (as typed,
// "06-12345678") in E.164 form, or "" when it is not a valid number. An
// empty region means DefaultRegion.
func NormalisePhone(raw, region string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	if region == "" {
		region = DefaultRegion
	}
	num, err := phonenumbers.Parse(strings.Replace(raw, "(0)", "", 1), region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return ""
	}
	return phonenumbers.Format(num, phonenumbers.E164)
}

// NormalisePostcode returns a Dutch postcode as "1234AB", or "" when s is
// not one.
func NormalisePostcode(s string) string {
	p := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	if !PostcodeRE.MatchString(p) {
		return ""
	}
	return p
}

// streetNumberRE finds the house number and addition at the end of a
// street line: "Dorpsstraat 12a", "Dorpsstraat 12-II", "Dorpsstraat 12 A".
var streetNumberRE = regexp.MustCompile(`(?i)\b([1-9][0-9]{0,4})\s*(?:[-/ ]\s*)?([a-z]{1,4}|[0-9]{1,3})?\s*$`)

// addressMatches reports whether the contact's postcode, house number and
// addition equal the address exactly. An addition on one side only is a
// different address.
func addressMatches(a Address, c crm.Contact) bool {
	if NormalisePostcode(c.PostalCode) != a.Postcode || a.Postcode == "" {
		return false
	}
	street := strings.TrimSpace(c.Street)
	if nl := strings.LastIndexByte(street, '\n'); nl >= 0 {
		street = street[:nl]
	}
	m := streetNumberRE.FindStringSubmatch(street)
	if m == nil {
		return false
	}
	return m[1] == a.HouseNumber && strings.ToUpper(m[2]) == a.Addition
}

// lastNameMatches reports whether the contact's last name is the last word
// or words of one of the names, compared without case: "Sanne de Vries"
// matches "de Vries" and "Vries". A one-word name is a first name and
// matches nothing.
func lastNameMatches(names []string, lastName string) bool {
	want := strings.Fields(strings.ToLower(lastName))
	if len(want) == 0 {
		return false
	}
	for _, n := range names {
		words := strings.Fields(strings.ToLower(n))
		if len(words) < 2 || len(words) <= len(want) {
			continue
		}
		tail := words[len(words)-len(want):]
		if strings.Join(tail, " ") == strings.Join(want, " ") {
			return true
		}
	}
	return false
}

// matchesOf turns clues into one Match per contact, in first-seen order.
func matchesOf(clues []clue) []Match {
	var out []Match
	index := map[string]int{}
	for _, c := range clues {
		for _, id := range c.contacts {
			k, ok := index[id]
			if !ok {
				k = len(out)
				index[id] = k
				out = append(out, Match{ContactID: id})
			}
			if !containsField(out[k].Fields, c.field) {
				out[k].Fields = append(out[k].Fields, c.field)
			}
		}
	}
	return out
}

// describe says, per field, how many contacts each value matched, without
// the values themselves.
func describe(clues []clue) []string {
	var out []string
	for _, c := range clues {
		ids := append([]string(nil), c.contacts...)
		sort.Strings(ids)
		out = append(out, fmt.Sprintf("%s matched %d contact(s): %s", c.field, len(ids), strings.Join(ids, ", ")))
	}
	return out
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func containsField(fs []Field, f Field) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

func overlap(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

// ContactFromDetails builds the contact to create under the CreateContact
// policy: the first email, phone and postcode, and the name split into
// first and last name. Salesforce requires a last name; when none was
// given, LastName is empty and the caller must supply a placeholder.
func ContactFromDetails(d Details) crm.Contact {
	var c crm.Contact
	if len(d.Emails) > 0 {
		c.Email = d.Emails[0]
	}
	if len(d.Phones) > 0 {
		c.Phone = d.Phones[0]
	}
	if len(d.Addresses) > 0 {
		a := d.Addresses[0]
		c.PostalCode = a.Postcode
	}
	if len(d.Names) > 0 {
		c.FirstName, c.LastName = SplitName(d.Names[0])
	}
	return c
}

// SplitName splits a full name into first name and last name, keeping
// surname particles with the last name: "Sanne de Vries" gives "Sanne" and
// "de Vries". A one-word name is taken as the last name.
func SplitName(full string) (first, last string) {
	words := strings.Fields(full)
	if len(words) == 0 {
		return "", ""
	}
	if len(words) == 1 {
		return "", words[0]
	}
	k := len(words) - 1
	for k > 1 && particles[strings.ToLower(words[k-1])] {
		k--
	}
	return strings.Join(words[:k], " "), strings.Join(words[k:], " ")
}
