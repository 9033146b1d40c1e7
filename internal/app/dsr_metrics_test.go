package app

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/workflows"
)

// TestDSROverdueGaugeReadsTheStore starts from a store that holds an
// overdue open request, an open request within its deadline and an overdue
// completed one, as after a restart: no workflow runs and no activity has
// set anything, yet a fresh registry reports one overdue request and the
// open requests by status.
func TestDSROverdueGaugeReadsTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	long := time.Now().Add(-60 * 24 * time.Hour)
	recent := time.Now().Add(-time.Hour)
	for _, d := range []store.DSR{
		{ID: "dsr-overdue", Type: store.DSRErasure, Status: workflows.StatusAwaitingApproval, ReceivedAt: long, Deadline: workflows.Deadline(long)},
		{ID: "dsr-in-time", Type: store.DSRAccess, Status: workflows.StatusReceived, ReceivedAt: recent, Deadline: workflows.Deadline(recent)},
		{ID: "dsr-done", Type: store.DSRAccess, Status: workflows.StatusCompleted, ReceivedAt: long, Deadline: workflows.Deadline(long)},
	} {
		d.SubjectHash = "h-" + d.ID
		if _, err := st.CreateDSR(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	a := &App{Store: st, Registry: reg, Metrics: metrics.New(reg), Log: zap.NewNop()}
	a.Metrics.WatchDSRs(a.dsrCounts) // as App.Open does in every process

	if got := gathered(t, reg, "webcaresync_dsr_overdue"); got[""] != 1 {
		t.Errorf("webcaresync_dsr_overdue: %v, want 1", got)
	}
	open := gathered(t, reg, "webcaresync_dsr_open")
	if open[workflows.StatusAwaitingApproval] != 1 || open[workflows.StatusReceived] != 1 || len(open) != 6 {
		t.Errorf("open requests by status: %v, want one awaiting approval, one received and 0 for the other open statuses", open)
	}

	// The deadline passes for the second request: the next scrape says so.
	d, err := st.GetDSR(ctx, "dsr-in-time")
	if err != nil {
		t.Fatal(err)
	}
	d.Deadline = recent
	d.UpdatedAt = time.Time{}
	if _, err := st.UpdateDSR(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, "webcaresync_dsr_overdue"); got[""] != 2 {
		t.Errorf("webcaresync_dsr_overdue after a second deadline passed: %v, want 2", got)
	}
}

// gathered returns a gauge's values by the value of its one label ("" for
// a gauge without labels).
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			if len(m.GetLabel()) > 0 {
				label = m.GetLabel()[0].GetValue()
			}
			out[label] = m.GetGauge().GetValue()
		}
	}
	return out
}
