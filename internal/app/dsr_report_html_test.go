package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/workflows"
)

// accessExport is an access export as the Export activity writes it: the
// CRM's records by object, webcaresync's store, the platforms and
// Temporal, through JSON as the report reads it back.
func accessExport(t *testing.T) activities.AccessExport {
	t.Helper()
	at := time.Date(2026, 11, 3, 14, 30, 0, 0, time.UTC)
	revoked := at.Add(48 * time.Hour)
	type ident struct {
		Kind, Value, Source string
		At                  time.Time
	}
	doc := activities.AccessExport{
		DSRID: "dsr-access-1", GeneratedAt: at.Add(time.Hour),
		Subject: activities.SubjectIdentifiers{Email: "sanne.devries@example.nl", Handles: []activities.SubjectHandle{{Provider: "x", ID: "1790000000000000001"}}},
		Systems: map[string]any{
			activities.SystemCRM: map[string][]map[string]any{
				"SocialPost": {
					{"Id": "0ST000000000002AAA", "Content": "Thanks, we have sent a new one.", "Provider": "Twitter", "MessageType": "Reply", "IsOutbound": true, "Posted": "2026-11-01T10:05:00.000+0000", "Handle": "brand", "IsDeleted": false},
					{"Id": "0ST000000000001AAA", "Content": "My parcel <b>never</b> arrived <script>alert(1)</script>", "Provider": "Twitter", "MessageType": "Direct", "IsOutbound": false, "Posted": "2026-11-01T10:00:00.000+0000", "Handle": "sannedv", "IsDeleted": false},
				},
				"Contact": {{"Id": "003000000000001AAA", "FirstName": "Sanne", "LastName": "de Vries", "Email": "sanne.devries@example.nl", "MobilePhone": "+31612345678", "HasOptedOutOfEmail": false, "Webcare_Thread__c": "x:dm:1", "MailingAddress": map[string]any{"city": "Utrecht"}}},
				"Case":    {{"Id": "500000000000001AAA", "CaseNumber": "00001001", "Subject": "Parcel not delivered", "Status": "Closed", "IsClosed": true}},
			},
			activities.SystemStore: map[string]any{
				"identifiers":   []ident{{"email", "sanne.devries@example.nl", "conv-1", at}, {"phone", "+31612345678", "conv-2", at}, {"handle", "x:1790000000000000001", "conv-1", at}},
				"links":         []store.Link{{ID: "l1", SubjectID: "s1", Channel: "x", CRMContactID: "003000000000001AAA", Rule: "email_in_dm", EvidenceMessageHash: "ab12cd", CreatedAt: at, RevokedAt: &revoked}},
				"reviews":       []store.Review(nil),
				"conversations": []string{"conv-1", "conv-2"},
				"dsr_history":   []store.DSR{{ID: "dsr-access-1", Type: store.DSRAccess, Status: workflows.StatusExporting, ReceivedAt: at, Deadline: workflows.Deadline(at)}},
			},
			activities.SystemTemporal: map[string]any{"conversation_executions": 2, "note": "kept encrypted under the subject's key"},
			// A system the report has no layout for.
			"chatvendor": map[string]any{"sessions": []map[string]any{{"startedAt": "2026-11-02T09:00:00Z", "agent_name": "Émile", "tags": []string{"parcel", "late"}}}, "retention": "90 days", "none": []string{}},
			"platforms":  map[string]any{"x": []activities.PlatformItem{{ID: "1790000000000000555", Kind: "reply", Channel: "x", ByBrand: true, ParentID: "1790000000000000554"}}},
		},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var back activities.AccessExport
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// TestAccessReportHTMLIsReadable renders an access export as HTML: it
// says what the document is, for which request and when, shows each
// system's data under labels and in tables (messages with date, channel,
// direction and text; identifiers by kind; CRM records by object), prints
// no Go value dumps, and escapes the HTML in a message.
func TestAccessReportHTMLIsReadable(t *testing.T) {
	received := time.Date(2026, 11, 3, 14, 0, 0, 0, time.UTC)
	view := DSRView{ID: "dsr-access-1", Type: store.DSRAccess, Status: workflows.StatusCompleted, ReceivedAt: received, Deadline: workflows.Deadline(received), VerifiedBy: "privacy-officer"}
	now := time.Date(2026, 11, 4, 8, 0, 0, 0, time.UTC)
	out, err := renderReportHTML(AccessReport{Request: view, Export: accessExport(t)}, now, "privacy@webshop.example, Postbus 1 <Amsterdam>")
	if err != nil {
		t.Fatal(err)
	}
	html := string(out)
	_, body, ok := strings.Cut(html, "</head>")
	if !ok {
		t.Fatal("no </head>")
	}
	for _, want := range []string{
		"access to personal data (GDPR Art. 15)",
		"<th scope=\"row\">Request</th><td>dsr-access-1</td>",
		"<th scope=\"row\">Document generated</th><td>2026-11-04 08:00 UTC</td>",
		"<th scope=\"row\">Data collected</th><td>2026-11-03 15:30 UTC</td>",
		"<th scope=\"row\">Questions about this document</th><td>privacy@webshop.example, Postbus 1 &lt;Amsterdam&gt;</td>",
		"<th scope=\"row\">E-mail address</th><td>sanne.devries@example.nl</td>",
		"<th scope=\"row\">X account</th><td>1790000000000000001</td>",
		// Messages, oldest first: date, channel, direction, text.
		"<th>Date</th><th>Channel</th><th>Direction</th><th>Text</th>",
		"<td>2026-11-01 10:00 UTC</td><td>Twitter (direct)</td><td>from you</td><td>My parcel &lt;b&gt;never&lt;/b&gt; arrived &lt;script&gt;alert(1)&lt;/script&gt;</td>",
		"<td>2026-11-01 10:05 UTC</td><td>Twitter (reply)</td><td>from the brand</td><td>Thanks, we have sent a new one.</td>",
		// CRM records by object, with labelled fields.
		"<h3>Contact details (Contact)</h3>",
		"<th scope=\"row\">First name</th><td>Sanne</td>",
		"<th scope=\"row\">Mobile phone number</th><td>&#43;31612345678</td>",
		"<th scope=\"row\">No e-mail wanted</th><td>no</td>",
		"<th scope=\"row\">Webcare thread</th><td>x:dm:1</td>",
		"<th scope=\"row\">Mailing address</th><td>City: Utrecht</td>",
		"<h3>Cases (Case)</h3>", "<h4>00001001</h4>", "<th scope=\"row\">Subject</th><td>Parcel not delivered</td>",
		// Identifiers by kind.
		"<h3>E-mail addresses</h3>", "<h3>Phone numbers</h3>", "<h3>Social handles</h3>",
		"<td>&#43;31612345678</td><td>conv-2</td><td>2026-11-03 14:30 UTC</td>",
		// Links with their evidence, conversations, requests, platforms, Temporal.
		"<td>x</td><td>003000000000001AAA</td><td></td><td>email_in_dm</td><td>ab12cd</td><td></td><td>2026-11-03 14:30 UTC</td><td>2026-11-05 14:30 UTC</td>",
		"<td>conv-1</td>", "<h3>Data requests about you</h3>",
		"<td>reply</td><td>x</td><td>the brand</td><td>1790000000000000555</td><td>1790000000000000554</td>",
		"<th scope=\"row\">Conversation executions</th><td>2</td>",
		"<h2>chatvendor</h2>", "<th scope=\"row\">Retention</th><td>90 days</td>", "<h3>Sessions</h3>",
		"<th>Agent name</th><th>Started at</th><th>Tags</th>", "<td>Émile</td><td>2026-11-02 09:00 UTC</td><td>parcel; late</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the report lacks %s", want)
		}
	}
	for _, dump := range []string{"map[", "{", "}", "<nil>", "%!", "&amp;{", "[]"} {
		if strings.Contains(body, dump) {
			i := strings.Index(body, dump)
			t.Errorf("the report holds a Go value dump %q: …%s…", dump, body[max(0, i-80):min(len(body), i+80)])
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>never") {
		t.Error("HTML in a message is not escaped")
	}
	if strings.Index(body, "2026-11-01 10:00 UTC") > strings.Index(body, "2026-11-01 10:05 UTC") {
		t.Error("messages are not oldest first")
	}
}

// TestEvidenceReportHTMLListsTheNotifications renders an erasure's
// evidence as HTML: each recipient with what was done there and that the
// notification is recorded for the controller to send.
func TestEvidenceReportHTMLListsTheNotifications(t *testing.T) {
	a := storeApp(t)
	id := completedErasure(t, a)
	ct, out, err := dsrService{a}.Report(context.Background(), id, "html")
	if err != nil || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("report: %s %v", ct, err)
	}
	_, body, _ := strings.Cut(string(out), "</head>")
	for _, want := range []string{
		"Erasure request dsr-erasure-1: evidence",
		"<h2>Notifications to recipients (GDPR Art. 19)</h2>",
		"<h3>the CRM (Salesforce org): retained</h3>",
		"<h3>WhatsApp (Meta): not possible through the API</h3>",
		"<h3>X: erased</h3>",
		"Notification recorded for the controller to send.",
		"<td>retained</td><td>1</td><td>Case redacted; kept for the statutory retention of complaints</td><td>GDPR Art. 17(3)(b) statutory retention</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the evidence report lacks %s", want)
		}
	}
	if strings.Contains(body, "map[") || strings.Contains(body, "{") {
		t.Error("the evidence report holds a Go value dump")
	}
}
