package activities_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
	"github.com/webcaresync/webcaresync/schemas"
)

// refusedCounts reads webcaresync_crm_refused_total from reg, by code.
func refusedCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "webcaresync_crm_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// A batch the CRM refuses as a whole counts in
// webcaresync_crm_refused_total under the CRM's code, once per refusal;
// a code outside the known set counts as "other", so a garbled code cannot
// grow the label; a batch written, or refused record by record, does not
// count.
func TestSyncBatchRefusedCountsByCode(t *testing.T) {
	st := storetest.SQLite(t).Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	a := newSync(st, &keys{})
	a.Metrics = metrics.New(reg)
	c := &caseCRM{}
	a.CRM = c
	batch := crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m1", "anna", schemas.Inbound)}}

	c.refuse = &crm.Error{Kind: crm.Permanent, Code: "INVALID_FIELD", Message: "the field does not exist"}
	for range 2 {
		if _, err := a.SyncBatch(ctx, batch); err == nil {
			t.Fatal("a refused batch succeeded")
		}
	}
	c.refuse = &crm.Error{Kind: crm.Permanent, Code: "SOMETHING_NEW_anna@example.com", Message: "?"}
	if _, err := a.SyncBatch(ctx, batch); err == nil {
		t.Fatal("a refused batch succeeded")
	}
	// Not refusals: a transient error, and a batch that goes through.
	c.refuse = &crm.Error{Kind: crm.Transient, Code: "SERVER_UNAVAILABLE", Message: "later"}
	if _, err := a.SyncBatch(ctx, batch); err == nil {
		t.Fatal("a failed batch succeeded")
	}
	c.refuse = nil
	if _, err := a.SyncBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}

	got := refusedCounts(t, reg)
	want := map[string]float64{"INVALID_FIELD": 2, metrics.RefusalCodeOther: 1}
	if len(got) != len(want) {
		t.Fatalf("webcaresync_crm_refused_total = %v, want %v", got, want)
	}
	for code, n := range want {
		if got[code] != n {
			t.Fatalf("webcaresync_crm_refused_total = %v, want %v", got, want)
		}
	}
}

// Against the sandbox: the Salesforce connector whose login the org
// refuses (a wrong client secret) refuses every batch as a whole, and the
// refusal counts under the OAuth error code the org answered.
func TestSyncBatchLoginRefusedCountsAgainstSandbox(t *testing.T) {
	_, conn := sandboxCRM(t, "wrong")
	st := storetest.SQLite(t).Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	a := newSync(st, &keys{})
	a.Metrics = metrics.New(reg)
	a.CRM = conn
	_, err := a.SyncBatch(context.Background(), crm.SyncBatch{ConversationID: "conv-1", Events: []schemas.Event{msg("m1", "anna", schemas.Inbound)}})
	if err == nil {
		t.Fatal("a batch went through with a refused login")
	}
	if got := refusedCounts(t, reg); len(got) != 1 || got["invalid_client"] != 1 {
		t.Fatalf("webcaresync_crm_refused_total = %v, want invalid_client 1", got)
	}
}
