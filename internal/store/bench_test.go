package store_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

// benchCallers is the number of concurrent EnqueueInbox callers, as many
// webhook requests in flight at once.
const benchCallers = 32

// benchPayload is the size of a typical encrypted canonical event.
var benchPayload = make([]byte, 1024)

// BenchmarkEnqueueInbox measures one-item EnqueueInbox calls from 32
// concurrent callers on SQLite, with group commit and with the naive
// one-transaction-per-call baseline.
func BenchmarkEnqueueInbox(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts store.Options
	}{
		{"group_commit", store.Options{}},
		{"group_commit_window_2ms", store.Options{GroupCommitWindow: 2 * time.Millisecond}},
		{"naive", store.Options{NoGroupCommit: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			s := storetest.SQLite(b).Open(b, mode.opts)
			b.SetParallelism((benchCallers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				item := []store.InboxItem{{ConversationID: "conv", KeyID: "dk", Payload: benchPayload}}
				for pb.Next() {
					if err := s.EnqueueInbox(ctx, item); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkEnqueueInboxRatio runs the same workload (32 callers, each
// making one-item calls) with group commit and with the naive baseline in
// the same run, and reports the throughput ratio as "x_vs_naive".
func BenchmarkEnqueueInboxRatio(b *testing.B) {
	const callsPerCaller = 50
	group := storetest.SQLite(b).Open(b, store.Options{})
	naive := storetest.SQLite(b).Open(b, store.Options{NoGroupCommit: true})
	round := func(s store.Store) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for c := range benchCallers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				item := []store.InboxItem{{ConversationID: fmt.Sprint("conv-", c), KeyID: "dk", Payload: benchPayload}}
				for range callsPerCaller {
					if err := s.EnqueueInbox(ctx, item); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	var tGroup, tNaive time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order so neither mode always runs on a warmer cache.
		if i%2 == 0 {
			tGroup += round(group)
			tNaive += round(naive)
		} else {
			tNaive += round(naive)
			tGroup += round(group)
		}
	}
	calls := float64(b.N * benchCallers * callsPerCaller)
	b.ReportMetric(calls/tGroup.Seconds(), "group_calls/s")
	b.ReportMetric(calls/tNaive.Seconds(), "naive_calls/s")
	b.ReportMetric(tNaive.Seconds()/tGroup.Seconds(), "x_vs_naive")
}
