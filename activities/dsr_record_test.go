package activities_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

// TestRecordStatusRetryWritesNoRowTwice: a retried RecordStatus (the same
// input again, as Temporal retries an activity whose result it did not
// get) adds no ledger row, while the escalation of a later attempt of the
// same step adds its own.
func TestRecordStatusRetryWritesNoRowTwice(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		st := b.Open(t, store.Options{})
		now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
		if _, err := st.CreateDSR(ctx, store.DSR{ID: "dsr-record", Type: store.DSRErasure, Status: "erasing", SubjectHash: "h",
			ReceivedAt: now, Deadline: now.AddDate(0, 1, 0)}); err != nil {
			t.Fatal(err)
		}
		a := &activities.DSR{Store: st, Metrics: metrics.New(prometheus.NewRegistry()), Log: zap.NewNop()}
		escalation := func(attempt int, at time.Time) activities.StatusInput {
			return activities.StatusInput{DSRID: "dsr-record", Status: "escalated", Step: "erase-crm", Outcomes: []activities.Outcome{{
				System: activities.SystemCRM, Action: store.LedgerFailed, At: at,
				Detail: fmt.Sprintf("attempt %d: CRM unavailable; waiting for an operator", attempt),
			}}}
		}
		rows := func() int {
			t.Helper()
			l, err := st.LedgerByDSR(ctx, "dsr-record")
			if err != nil {
				t.Fatal(err)
			}
			return len(l)
		}
		first := escalation(1, now.Add(time.Hour))
		for range 3 {
			if err := a.RecordStatus(ctx, first); err != nil {
				t.Fatal(err)
			}
		}
		if n := rows(); n != 1 {
			t.Fatalf("the escalation recorded 3 times (an activity and its 2 retries) left %d ledger rows; want 1", n)
		}
		if err := a.RecordStatus(ctx, escalation(2, now.Add(2*time.Hour))); err != nil {
			t.Fatal(err)
		}
		if err := a.RecordStatus(ctx, escalation(2, now.Add(2*time.Hour))); err != nil {
			t.Fatal(err)
		}
		if n := rows(); n != 2 {
			t.Errorf("the second attempt's escalation, recorded twice, left %d ledger rows in all; want 2", n)
		}
	})
}
