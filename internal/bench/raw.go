package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

// sinkQueue is the task queue of the raw SignalWithStart baseline.
const sinkQueue = "webcaresync-bench-sink"

// Sink is the raw baseline's workflow: it takes signals until it has seen
// want events, and does nothing with them.
func Sink(ctx workflow.Context, want int) error {
	ch := workflow.GetSignalChannel(ctx, workflows.EventsSignal)
	for seen := 0; seen < want; {
		var arg workflows.EventsSignalArg
		ch.Receive(ctx, &arg)
		seen += len(arg.Events)
	}
	return nil
}

// rawSignal measures one SignalWithStart per message, with the same
// payloads, data converter and senders as webcaresync, into workflows that
// do nothing: the ceiling of the engine in this process.
func rawSignal(ctx context.Context, a *app.App, opts Options, run string, n int) (Figures, error) {
	w := worker.New(a.Client, sinkQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(Sink, workflow.RegisterOptions{Name: "BenchSink"})
	if err := w.Start(); err != nil {
		return Figures{}, fmt.Errorf("cannot start the sink worker: %w", err)
	}
	defer w.Stop()
	convs := opts.Conversations
	per := max(1, n/convs)
	n = per * convs
	l := newLoad(run, convs, per)
	id := func(c int) string { return "bench-sink-" + run + "-" + strconv.Itoa(c) }
	rss := startRSS("")
	start := time.Now()
	l.firstSent.Store(start.UnixNano())
	jobs := make(chan int, opts.Senders)
	go func() {
		defer close(jobs)
		for k := range n {
			jobs <- k
		}
	}()
	var wg sync.WaitGroup
	for range opts.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				wid := id(k % convs)
				sctx := privacy.WithKeyID(ctx, wid)
				l.sent[k] = time.Now().UnixNano()
				_, err := a.Client.SignalWithStartWorkflow(sctx, wid, workflows.EventsSignal,
					workflows.EventsSignalArg{Events: []schemas.Event{event(run, k, convs)}},
					client.StartWorkflowOptions{
						ID: wid, TaskQueue: sinkQueue,
						WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
						WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
					}, "BenchSink", per)
				if err != nil {
					l.failed.Add(1)
					continue
				}
				l.acked[k] = time.Now().UnixNano()
				l.nAcked.Add(1)
			}
		}()
	}
	wg.Wait()
	var last int64
	wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	for c := range convs {
		if err := a.Client.GetWorkflow(wctx, id(c), "").Get(privacy.WithKeyID(wctx, id(c)), nil); err != nil {
			return Figures{}, fmt.Errorf("a sink workflow did not finish: %w", err)
		}
		last = max(last, time.Now().UnixNano())
	}
	f := l.figures(n, 0)
	f.MsgsPerS = f.AckMsgsPerS
	f.ProcessedMsgsPerS = round(float64(n) / (float64(last-start.UnixNano()) / 1e9))
	f.Lost = 0 // nothing is written to the CRM here
	f.RSSMB, _ = rss.peakMB()
	return f, nil
}
