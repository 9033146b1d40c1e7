package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunSmall runs the whole bench at a tiny size: the embedded Temporal
// server, the worker, the HTTP server, the sandbox CRM and both baselines,
// as `webcaresync bench` does. Every message must reach the CRM exactly
// once, and the printed line must carry the figures and ratios the README
// reports. It asserts no timings.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{
		Conversations:    3,
		Messages:         10,
		CRMLatency:       -1,
		Senders:          4,
		BaselineMessages: 20,
		Timeout:          3 * time.Minute,
	})
	if err != nil {
		t.Fatalf("bench run: %v", err)
	}
	if res.Messages != 30 || res.Lost != 0 || res.Duplicated != 0 || res.Failed != 0 {
		t.Fatalf("messages %d, lost %d, duplicated %d, failed %d; want 30 sent and none lost, duplicated or failed", res.Messages, res.Lost, res.Duplicated, res.Failed)
	}
	if res.CRMCalls <= 0 || res.MsgsPerCRMCall <= 0 || res.MsgsPerS <= 0 || res.E2EP99MS <= 0 || res.RSSMB <= 0 {
		t.Fatalf("missing figures: %+v", res.Figures)
	}
	if res.Naive == nil || res.RawSignal == nil || res.Ratios == nil {
		t.Fatalf("baselines or ratios missing: naive %v, raw %v, ratios %v", res.Naive, res.RawSignal, res.Ratios)
	}
	// The baselines spread their messages evenly over the conversations.
	if res.Naive.Lost != 0 || res.Naive.Messages < 18 || res.Naive.CRMCalls < int64(res.Naive.Messages) {
		t.Fatalf("the naive baseline must deliver its messages with at least one CRM call each: %+v", *res.Naive)
	}
	if res.Ratios.CRMCallsPerMsgNaiveVsOurs <= 1 {
		t.Errorf("batching makes no fewer CRM calls per message than the naive sync: ratio %.2f", res.Ratios.CRMCallsPerMsgNaiveVsOurs)
	}
	line, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"msgs_per_s", "ack_p50_ms", "ack_p99_ms", "e2e_p50_ms", "e2e_p99_ms", "crm_calls", "msgs_per_crm_call", "rss_mb", "lost", "duplicated", "naive", "raw_signal_with_start", "ratios"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("the JSON line lacks %q: %s", k, line)
		}
	}
}
