package mappings

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/schemas"
)

func xDM() schemas.Event {
	return schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:1:2",
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: "1001",
		Author: schemas.Author{PlatformUserID: "42", Handle: "jan", DisplayName: "Jan"},
		Text:   "Mijn internet doet het niet", OccurredAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Brand: schemas.BrandAccount{ID: "7", Handle: "acme"},
	}
}

func TestDefaultMapping(t *testing.T) {
	m := Default()
	cfs := m.CustomFields()
	if len(cfs) != 4 {
		t.Fatalf("custom fields = %d, want 4", len(cfs))
	}
	for _, cf := range cfs {
		if cf.Name != "webcaresync_Id__c" || !cf.ExternalID || !cf.Unique {
			t.Errorf("custom field %+v: want webcaresync_Id__c external id and unique", cf)
		}
	}
	rec, err := m.Record(ObjectPost, EventVars("c1", xDM()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"MessageType": "Direct", "Provider": "Twitter", "IsOutbound": false,
		"Posted": "2026-03-01T10:00:00.000Z", "Content": "Mijn internet doet het niet",
		"ExternalPostId": "1001", "Handle": "jan", "Name": "Post from jan",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("post %s = %#v, want %#v", k, rec[k], v)
		}
	}
	if _, ok := rec["Status"]; ok {
		t.Errorf("inbound post has Status %v; only outbound posts are Sent", rec["Status"])
	}

	out := xDM()
	out.Direction, out.Visibility, out.ReplyToID = schemas.Outbound, schemas.Public, "1000"
	rec, err = m.Record(ObjectPost, EventVars("c1", out))
	if err != nil {
		t.Fatal(err)
	}
	if rec["IsOutbound"] != true || rec["Status"] != "Sent" || rec["MessageType"] != "Reply" || rec["Name"] != "Reply from acme" {
		t.Errorf("outbound public reply = %v", rec)
	}
	if rec["PostUrl"] != "https://x.com/i/web/status/1001" {
		t.Errorf("PostUrl = %v", rec["PostUrl"])
	}

	wa := xDM()
	wa.Channel, wa.Author.Handle = schemas.ChannelWhatsApp, ""
	rec, err = m.Record(ObjectPersona, EventVars("c1", wa))
	if err != nil {
		t.Fatal(err)
	}
	if rec["Name"] != "42" || rec["Provider"] != "WhatsApp" || rec["ProfileUrl"] != nil {
		t.Errorf("whatsapp persona = %v", rec)
	}

	long := xDM()
	long.Text = strings.Repeat("é", 300)
	rec, err = m.Record(ObjectCase, EventVars("c1", long))
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(rec["Subject"].(string))); n != 80 {
		t.Errorf("case subject has %d characters, want 80 (truncate)", n)
	}
	if rec["Status"] != "New" || rec["Origin"] != "Twitter" {
		t.Errorf("case = %v", rec)
	}
}

func TestContactRecordNormalises(t *testing.T) {
	m := Default()
	rec, err := m.Record(ObjectContact, ContactVars(ContactDetails{Email: " Jan@Example.NL ", Phone: "06-12345678", Mobile: "+31 (0)6 1234 5678", PostalCode: "1234ab"}))
	if err != nil {
		t.Fatal(err)
	}
	if rec["Email"] != "jan@example.nl" || rec["Phone"] != "+31612345678" || rec["MobilePhone"] != "+31612345678" || rec["MailingPostalCode"] != "1234AB" || rec["LastName"] != "Unknown" {
		t.Errorf("contact = %v", rec)
	}
}

func TestE164(t *testing.T) {
	for in, want := range map[string]string{
		"06-12345678":        "+31612345678",
		"+31 (0)6 1234 5678": "+31612345678",
		"0031612345678":      "+31612345678",
		"+44 20 7946 0958":   "+442079460958",
		"12345":              "",
		"no phone":           "",
	} {
		if got := E164(in, "NL"); got != want {
			t.Errorf("E164(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCaseRules(t *testing.T) {
	m := Default()
	in := EventVars("c", xDM())
	if ok, _ := m.OpensCase(in); !ok {
		t.Error("first_inbound: inbound message does not open a case")
	}
	out := xDM()
	out.Direction = schemas.Outbound
	if ok, _ := m.OpensCase(EventVars("c", out)); ok {
		t.Error("outbound message opens a case")
	}
	m.CaseRules.OpenOn = OpenOnKeywords
	if ok, _ := m.OpensCase(in); ok {
		t.Error("keywords: message without keyword opens a case")
	}
	k := xDM()
	k.Text = "Ik heb een KLACHT"
	if ok, _ := m.OpensCase(EventVars("c", k)); !ok {
		t.Error("keywords: message with keyword does not open a case")
	}
	closed := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if !m.CaseRules.Reopens(closed, closed.Add(4*24*time.Hour)) {
		t.Error("a message 4 days after closing does not reopen")
	}
	if m.CaseRules.Reopens(closed, closed.Add(6*24*time.Hour)) {
		t.Error("a message 6 days after closing reopens (default window is 5 days)")
	}
}

func TestStatusAndErasure(t *testing.T) {
	m := Default()
	if f := m.StatusFields("failed"); f["Status"] != "Failed" || f["StatusMessage"] != "failed" {
		t.Errorf("failed status fields = %v", f)
	}
	r, ok := m.Erasure.For("Contact")
	if !ok || r.Action != EraseDelete || r.Fallback != EraseAnonymise || r.Set["LastName"] == "" {
		t.Errorf("contact erasure = %+v", r)
	}
	if r, _ := m.Erasure.For("Case"); r.Action != EraseRedact || r.Replacement == "" {
		t.Errorf("case erasure = %+v", r)
	}
	if !m.Erasure.IndividualShouldForget {
		t.Error("Individual.ShouldForget is not set")
	}
	if r, _ := m.Erasure.For("Case"); !contains(r.Clear, "ContactId") || !contains(r.Clear, "SuppliedEmail") {
		t.Errorf("case erasure does not unlink the contact or clear the email: %+v", r)
	}
	if r, ok := m.Erasure.For("Individual"); !ok || r.Action != EraseAnonymise || r.Set["LastName"] == "" || !contains(r.Fields, "FirstName") {
		t.Errorf("individual erasure = %+v, %v", r, ok)
	}
	if r, ok := m.Erasure.For("Task"); !ok || r.Action != EraseDelete {
		t.Errorf("task erasure = %+v, %v", r, ok)
	}
}

func TestErasureIndividualOnlyShouldForget(t *testing.T) {
	base, err := os.ReadFile("salesforce.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(base), "    fields: [FirstName, Salutation, BirthDate]\n    set: {LastName: Anonymised}\n", "", 1)
	if text == string(base) {
		t.Fatal("base mapping lacks the individual fields")
	}
	m, err := Parse("x.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Erasure.For("Individual"); ok || !m.Erasure.IndividualShouldForget {
		t.Errorf("individual with should_forget only: rule %v, should_forget %v", ok, m.Erasure.IndividualShouldForget)
	}
}

// lineOf returns the 1-based line of the first line containing s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in text", s)
	return 0
}

func TestValidateNamesFileLineAndField(t *testing.T) {
	base, err := os.ReadFile("salesforce.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new, marker, field, msg string
	}{
		{"unknown field", "      Headline:\n", "      Hedline:\n", "Hedline:", "objects.post.fields.Hedline", "unknown SocialPost field"},
		{"unknown key", "    sobject: Case\n", "    sobject: Case\n    colour: red\n", "colour:", "objects.case.colour", "unknown key"},
		{"unknown transform", "transforms: [truncate(32000)]", "transforms: [shorten(5)]", "shorten(5)", "objects.post.fields.Content.transforms.0", "unknown transform"},
		{"bad CEL", `cel: 'event.direction == "outbound"'`, `cel: 'event.direction == = "outbound"'`, "== =", "objects.post.fields.IsOutbound.cel", "does not compile"},
		{"unknown value", "from: event.author.display_name", "from: event.author.nickname", "nickname", "objects.persona.fields.RealName.from", "unknown value"},
		{"bad template", "template: 'https://x.com/{{.event.author.handle}}'", "template: 'https://x.com/{{.event.autor.handle}}'", "autor", "objects.persona.fields.ProfileUrl.template", "template failed"},
		{"two sources", "        from: event.text\n        transforms: [truncate(255)]", "        from: event.text\n        value: x\n        transforms: [truncate(255)]", "      Headline:", "objects.post.fields.Headline", "exactly one of"},
		{"unknown erasure field", "fields: [Subject, Description]", "fields: [Subjekt, Description]", "Subjekt", "erasure.Case.fields.0", "unknown Case field"},
		{"bad picklist of action", "    action: redact", "    action: shred", "action: shred", "erasure.Case.action", ""},
		{"unknown clear field", "clear: [SuppliedName,", "clear: [SuppliedNaam,", "SuppliedNaam", "erasure.Case.clear.0", "unknown Case field"},
		{"unknown individual field", "fields: [FirstName, Salutation, BirthDate]", "fields: [FirstName, Salutation, Geboortedatum]", "Geboortedatum", "erasure.individual.fields.2", "unknown Individual field"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := string(base)
			if !strings.Contains(text, tc.old) {
				t.Fatalf("base mapping lacks %q", tc.old)
			}
			text = strings.Replace(text, tc.old, tc.new, 1)
			path := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			errs := Validate(path)
			if len(errs) == 0 {
				t.Fatal("no error for a broken mapping")
			}
			line := lineOf(t, text, tc.marker)
			var found bool
			for _, e := range errs {
				if e.Field == tc.field && e.Line == line && strings.Contains(e.Message, tc.msg) && e.File == path {
					found = true
				}
			}
			if !found {
				t.Errorf("want %s:%d: %s: ...%s...; got:\n%s", path, line, tc.field, tc.msg, errs.Error())
			}
			if !strings.HasPrefix(errs[0].Error(), path+":") {
				t.Errorf("error %q does not start with file:line", errs[0].Error())
			}
		})
	}
}

func TestValidateGoodFileAndGarbage(t *testing.T) {
	if errs := Validate("salesforce.yaml"); errs != nil {
		t.Fatalf("bundled mapping invalid:\n%v", errs)
	}
	if errs := Validate(filepath.Join(t.TempDir(), "missing.yaml")); len(errs) != 1 {
		t.Errorf("missing file: %v", errs)
	}
	for _, data := range []string{"", ":\n  - [", "version: 1\n", "- a\n- b\n", "version: 1\nobjects: &a {x: *a}\n"} {
		if _, err := Parse("x.yaml", []byte(data)); err == nil {
			t.Errorf("Parse(%q) accepted garbage", data)
		}
	}
}

func TestValidateAgainstDescribe(t *testing.T) {
	m := Default()
	describe := func(_ context.Context, sobject string) ([]string, error) {
		if sobject == "SocialPost" {
			// An org where Headline is hidden and the custom field is missing.
			var out []string
			for _, f := range standardFields[sobject] {
				if f != "Headline" {
					out = append(out, f)
				}
			}
			return out, nil
		}
		return append(standardFields[sobject], "webcaresync_Id__c"), nil
	}
	errs := m.ValidateAgainstDescribe(context.Background(), describe)
	text := errs.Error()
	if len(errs) != 2 || !strings.Contains(text, "objects.post.fields.Headline") || !strings.Contains(text, "objects.post.external_id_field") {
		t.Fatalf("describe errors = \n%s", text)
	}
	if errs[0].Line == 0 {
		t.Errorf("describe error without line: %v", errs[0])
	}
	failing := func(context.Context, string) ([]string, error) { return nil, errors.New("boom") }
	if errs := m.ValidateAgainstDescribe(context.Background(), failing); len(errs) == 0 {
		t.Error("a failing describe is not reported")
	}
}
