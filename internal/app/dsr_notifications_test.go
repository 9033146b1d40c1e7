package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/workflows"
)

// storeApp returns an App with only a SQLite store and metrics: enough
// for the reports of completed requests, which need no Temporal.
func storeApp(t *testing.T) *App {
	t.Helper()
	st, err := store.Open(context.Background(), "", t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg := prometheus.NewRegistry()
	return &App{Store: st, Registry: reg, Metrics: metrics.New(reg), Log: zap.NewNop()}
}

// completedErasure stores a completed erasure with the ledger an erasure
// of a customer on X and WhatsApp writes.
func completedErasure(t *testing.T, a *App) string {
	t.Helper()
	ctx := context.Background()
	received := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	id := "dsr-erasure-1"
	if _, err := a.Store.CreateDSR(ctx, store.DSR{ID: id, Type: store.DSRErasure, Status: workflows.StatusCompleted, SubjectHash: "h1",
		ReceivedAt: received, Deadline: workflows.Deadline(received), VerifiedBy: "privacy-officer", VerificationMethod: "email confirmed"}); err != nil {
		t.Fatal(err)
	}
	at := received.Add(time.Hour)
	rows := []store.LedgerEntry{
		{System: "x", Action: store.LedgerFound, Count: 2, Detail: "posts"},
		{System: "whatsapp", Action: store.LedgerFound, Count: 3, Detail: "posts"},
		{System: "salesforce", Action: store.LedgerFound, Count: 4, Detail: "SocialPost"},
		{System: "webcaresync-store", Action: store.LedgerFound, Count: 7, Detail: "identifiers"},
		{System: "temporal", Action: store.LedgerFound, Count: 2, Detail: "conversation executions"},
		{System: "x", Action: store.LedgerErased, Count: 1, Detail: "x posts brand reply deleted", Policy: "GDPR Art. 17"},
		{System: "meta", Action: store.LedgerNotPossible, Count: 3, Detail: "whatsapp posts WhatsApp has no delete API; the subject was told to delete the chat in the app", Policy: "GDPR Art. 17"},
		{System: "salesforce", Action: store.LedgerErased, Count: 4, Detail: "SocialPost", Policy: "mapping erasure: delete"},
		{System: "salesforce", Action: store.LedgerRetained, Count: 1, Detail: "Case redacted; kept for the statutory retention of complaints", Policy: "GDPR Art. 17(3)(b) statutory retention"},
		{System: "webcaresync-store", Action: store.LedgerErased, Count: 7, Detail: "identifiers", Policy: "GDPR Art. 17"},
		{System: "temporal", Action: store.LedgerErased, Count: 2, Detail: "conversation executions", Policy: "GDPR Art. 17"},
		{System: "encryption-keys", Action: store.LedgerErased, Count: 2, Detail: "data keys"},
	}
	for i, r := range rows {
		r.ID, r.DSRID, r.At = fmt.Sprintf("%s:%d", id, i), id, at.Add(time.Duration(i)*time.Second)
		if err := a.Store.AppendLedger(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// TestArt19NotificationsNameEachRecipientAndWhatWasDone checks the
// evidence report's Art. 19 notifications: one per recipient (the CRM org
// and each platform, each Meta platform on its own, never webcaresync's
// own store, Temporal or keys), in the same order every time, each saying
// what was done there and that it is recorded for the controller to send;
// and the audit log records that the list was produced.
func TestArt19NotificationsNameEachRecipientAndWhatWasDone(t *testing.T) {
	a := storeApp(t)
	id := completedErasure(t, a)
	ctx := context.Background()
	var first []byte
	for i := range 5 {
		ct, body, err := dsrService{a}.Report(ctx, id, "json")
		if err != nil || ct != "application/json" {
			t.Fatalf("report: %s %v", ct, err)
		}
		if i == 0 {
			first = body
		} else if string(body) != string(first) {
			t.Fatalf("the report changed between two calls:\n%s\n%s", first, body)
		}
	}
	var rep struct {
		Notifications []string
		Recipients    []Notification
	}
	if err := json.Unmarshal(first, &rep); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, n := range rep.Recipients {
		order = append(order, n.Recipient)
		if n.Status != NotificationStatus {
			t.Errorf("%s: status %q, want %q", n.Recipient, n.Status, NotificationStatus)
		}
	}
	if got, want := strings.Join(order, ","), "salesforce,whatsapp,x"; got != want {
		t.Fatalf("recipients %s, want %s", got, want)
	}
	sf, wa, x := rep.Recipients[0], rep.Recipients[1], rep.Recipients[2]
	if sf.Outcome != store.LedgerRetained || len(sf.Done) != 2 || sf.Done[1].Policy != "GDPR Art. 17(3)(b) statutory retention" {
		t.Errorf("salesforce: %+v, want erased and retained with the retention reason", sf)
	}
	if wa.Outcome != store.LedgerNotPossible || len(wa.Done) != 1 || !strings.Contains(wa.Done[0].What, "told to delete the chat") {
		t.Errorf("whatsapp: %+v, want not possible with what was done instead", wa)
	}
	if x.Outcome != store.LedgerErased || len(x.Done) != 1 || x.Done[0].Count != 1 {
		t.Errorf("x: %+v, want erased", x)
	}
	if len(rep.Notifications) != 3 {
		t.Fatalf("notification lines: %q", rep.Notifications)
	}
	for i, want := range []string{"the CRM (Salesforce org): erased 4 SocialPost", "WhatsApp (Meta): not possible through the API, instead: 3 whatsapp posts WhatsApp has no delete API", "X: erased 1 x posts"} {
		line := rep.Notifications[i]
		if !strings.HasPrefix(line, want) || !strings.Contains(line, NotificationStatus) {
			t.Errorf("notification %d: %q, want it to start with %q and say %q", i, line, want, NotificationStatus)
		}
	}
	for _, line := range rep.Notifications {
		if strings.Contains(line, "webcaresync-store") || strings.Contains(line, "temporal") || strings.Contains(line, "data keys") {
			t.Errorf("webcaresync's own systems are no recipients: %q", line)
		}
	}
	audit, err := a.Store.ListAudit(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, e := range audit {
		if e.Action == "dsr.art19.listed" && e.Target == id && strings.Contains(e.Outcome, "3 recipients (salesforce, whatsapp, x)") {
			listed++
		}
	}
	if listed != 5 {
		t.Errorf("audit entries for the notification list: %d, want one per report (5): %+v", listed, audit)
	}
}
