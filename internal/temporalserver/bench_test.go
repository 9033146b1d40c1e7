package temporalserver

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// cpuTime returns the user plus system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// inboxWorkflow consumes "go" signals until it has seen limit of them.
func inboxWorkflow(ctx workflow.Context, limit int) (int, error) {
	ch := workflow.GetSignalChannel(ctx, signalName)
	n := 0
	for n < limit {
		var s string
		ch.Receive(ctx, &s)
		n++
	}
	return n, nil
}

// BenchmarkSignalWithStart measures SignalWithStart throughput on a file-backed
// server with a worker draining the signals, spread over 200 workflows.
func BenchmarkSignalWithStart(b *testing.B) {
	for _, shards := range []int{1, 4} {
		b.Run("shards="+strconv.Itoa(shards), func(b *testing.B) {
			s := StartForTest(b, Options{DataDir: b.TempDir(), NumHistoryShards: shards})
			c := newClient(b, s)
			w := startWorker(b, c)
			defer w.Stop()
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			cpu0 := cpuTime()
			b.ResetTimer()
			for range 64 {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						id := fmt.Sprintf("inbox-%d", i%200)
						_, err := c.SignalWithStartWorkflow(ctx, id, signalName, "x",
							client.StartWorkflowOptions{TaskQueue: taskQueue}, inboxWorkflow, 1<<30)
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signals/s")
			// Wall-clock throughput depends on what else runs on the
			// machine; CPU time per signal does not.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/signal")
		})
	}
}
