// Package bench measures webcaresync end to end in one process: the
// embedded Temporal server, the worker, the HTTP edge and the Salesforce
// sandbox with a per-call latency and a concurrency cap. It sends signed
// webhooks over loopback HTTP, waits until every message is visible in the
// sandbox CRM, and compares the figures with two baselines measured in the
// same run: a naive per-message direct sync and raw SignalWithStart on the
// same Temporal server.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/internal/webhookclient"
)

// Options configure a bench run. The zero value of a field means its
// default.
type Options struct {
	// Conversations is how many conversations the messages are spread
	// over. Default: 20.
	Conversations int
	// Messages is how many messages each conversation gets. Default: 1500.
	Messages int
	// Rate is the offered load in messages a second; 0 sends as fast as
	// the senders can.
	Rate float64
	// Duration, with a Rate, sizes the run: Messages becomes
	// Rate×Duration/Conversations. Without a Rate it caps how long
	// messages are dispatched.
	Duration time.Duration
	// CRMLatency is the sandbox's per-call latency. Default: 50ms; a
	// negative value means none.
	CRMLatency time.Duration
	// ConcurrencyCap is the sandbox's cap on calls in flight. Default: 25.
	ConcurrencyCap int
	// Senders is how many webhooks are in flight at once. Default: 64.
	Senders int
	// NoInbox signals Temporal from the webhook handler instead of using
	// the durable inbox and its relay.
	NoInbox bool
	// FlushInterval is the conversation workflows' shortest time between
	// two CRM batches. Default: 1s; negative means none.
	FlushInterval time.Duration
	// RelayInterval is the inbox relay's shortest cycle. Default: 100ms.
	RelayInterval time.Duration
	// CRMActivitiesPerSecond caps CRM activities over all workers.
	// Default: the configuration's default.
	CRMActivitiesPerSecond float64
	// BaselineMessages is how many messages each baseline gets. Default:
	// 3000 for raw SignalWithStart, 1500 for the naive sync (it is slow).
	BaselineMessages int
	// NoBaselines skips the baselines.
	NoBaselines bool
	// Timeout bounds the wait for every message to be visible in the CRM.
	// Default: 5 minutes.
	Timeout time.Duration
	// TemporalOnDisk keeps the embedded Temporal server's SQLite database
	// in the run's temporary data dir instead of in memory. Default: in
	// memory.
	TemporalOnDisk bool
	// CPUProfile, when set, writes a CPU profile of the main phase there.
	CPUProfile string
	// MemProfile, when set, writes a heap profile there when the main
	// phase's resident set size peaks (rewritten each time it grows by a
	// tenth), which is where memory is worth looking at.
	MemProfile string
	// Progress receives one line per phase; nil discards them.
	Progress io.Writer
	// Log receives the components' logs. Default: none.
	Log *zap.Logger
}

func (o *Options) defaults() {
	if o.Conversations <= 0 {
		o.Conversations = 20
	}
	if o.Messages <= 0 {
		o.Messages = 1500
	}
	if o.Rate > 0 && o.Duration > 0 {
		o.Messages = max(1, int(o.Rate*o.Duration.Seconds())/o.Conversations)
	}
	switch {
	case o.CRMLatency == 0:
		o.CRMLatency = 50 * time.Millisecond
	case o.CRMLatency < 0:
		o.CRMLatency = 0
	}
	if o.ConcurrencyCap == 0 {
		o.ConcurrencyCap = 25
	}
	if o.Senders <= 0 {
		o.Senders = 64
	}
	switch {
	case o.FlushInterval == 0:
		o.FlushInterval = time.Second
	case o.FlushInterval < 0:
		o.FlushInterval = 0
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
}

// Ratios compare webcaresync with the baselines.
type Ratios struct {
	// ThroughputVsNaive is msgs_per_s over the naive sync's.
	ThroughputVsNaive float64 `json:"throughput_vs_naive"`
	// CRMCallsPerMsgNaiveVsOurs is the naive sync's CRM calls per message
	// over ours: how many times fewer calls webcaresync makes.
	CRMCallsPerMsgNaiveVsOurs float64 `json:"crm_calls_per_msg_naive_vs_ours"`
	// AckP99VsNaive is our webhook ack p99 over the naive sync's.
	AckP99VsNaive float64 `json:"ack_p99_vs_naive"`
	// ThroughputVsRawSignal is msgs_per_s over raw SignalWithStart's
	// accepted signals a second (the engine's ceiling, one message each).
	ThroughputVsRawSignal float64 `json:"throughput_vs_raw_signal"`
}

// Result is the one JSON line the bench prints.
type Result struct {
	Figures
	// Mode is "inbox" (durable inbox and relay) or "direct" (one signal
	// per webhook).
	Mode string `json:"mode"`
	// Temporal names the embedded server's persistence.
	Temporal string `json:"temporal"`
	Machine  string `json:"machine"`
	// Setup echoes the load and sandbox settings.
	Setup Setup `json:"setup"`
	// Naive is the per-message direct sync baseline.
	Naive *Figures `json:"naive,omitempty"`
	// RawSignal is the raw SignalWithStart baseline.
	RawSignal *Figures `json:"raw_signal_with_start,omitempty"`
	Ratios    *Ratios  `json:"ratios,omitempty"`
}

// Setup is the load and sandbox settings of a run.
type Setup struct {
	Conversations  int     `json:"conversations"`
	Messages       int     `json:"messages_per_conversation"`
	Rate           float64 `json:"offered_rate"`
	Senders        int     `json:"senders"`
	CRMLatencyMS   float64 `json:"crm_latency_ms"`
	ConcurrencyCap int     `json:"crm_concurrency_cap"`
	FlushMS        float64 `json:"flush_interval_ms"`
}

// Run runs the bench: webcaresync first, then the baselines.
func Run(ctx context.Context, opts Options) (Result, error) {
	opts.defaults()
	res := Result{
		Mode: "inbox", Temporal: "embedded, SQLite in memory", Machine: machine(),
		Setup: Setup{Conversations: opts.Conversations, Messages: opts.Messages, Rate: opts.Rate, Senders: opts.Senders,
			CRMLatencyMS: ms(int64(opts.CRMLatency)), ConcurrencyCap: opts.ConcurrencyCap, FlushMS: ms(int64(opts.FlushInterval))},
	}
	if opts.NoInbox {
		res.Mode = "direct"
	}
	if opts.TemporalOnDisk {
		res.Temporal = "embedded, SQLite on disk"
	}
	dir, err := os.MkdirTemp("", "webcaresync-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	cfg := config.Defaults()
	cfg.DataDir = dir
	if opts.CRMActivitiesPerSecond > 0 {
		cfg.Sync.CRMActivitiesPerSecond = opts.CRMActivitiesPerSecond
	}
	run := fmt.Sprintf("b%x", time.Now().UnixNano()&0xffffff)
	main := newLoad(run, opts.Conversations, opts.Messages)
	sbOpts := sfsandbox.Options{Latency: opts.CRMLatency, ConcurrencyCap: opts.ConcurrencyCap, DailyBudget: 10_000_000}
	ours := sbOpts
	ours.OnWrite = main.onWrite
	fmt.Fprintf(opts.Progress, "starting %s Temporal, worker, HTTP edge and sandbox (%s per call, cap %d)\n", res.Temporal, opts.CRMLatency, opts.ConcurrencyCap)
	a, err := app.Start(ctx, cfg, opts.Log, app.Parts{
		Embedded: true, InMemoryTemporal: !opts.TemporalOnDisk, EphemeralPorts: true, Sandbox: true, SandboxOptions: ours,
		Worker: true, HTTP: true, DevSecrets: true,
		Inbox: !opts.NoInbox, RelayInterval: opts.RelayInterval, ConversationFlushInterval: opts.FlushInterval,
	})
	if err != nil {
		return res, err
	}
	defer closeWithin(a, opts, 15*time.Second)

	// Webcaresync.
	hooks := webhookclient.New("http://"+a.HTTPAddr, webhookclient.Secrets{GenericSecret: a.Cfg.GenericSecret}, 10)
	fmt.Fprintf(opts.Progress, "webcaresync: %d conversations × %d messages, offered %s, %d senders\n", opts.Conversations, opts.Messages, rateString(opts.Rate), opts.Senders)
	stopProfile, err := startProfile(opts.CPUProfile)
	if err != nil {
		return res, err
	}
	calls0 := a.Sandbox.TotalCalls()
	rss := startRSS(opts.MemProfile)
	sendDur := time.Duration(0)
	if opts.Rate <= 0 {
		sendDur = opts.Duration
	}
	stopProgress := make(chan struct{})
	go main.progress(opts.Progress, 5*time.Second, stopProgress)
	n := main.send(ctx, hooks, run, opts.Senders, opts.Rate, sendDur)
	main.waitVisible(ctx, opts.Timeout)
	close(stopProgress)
	peak, err := rss.peakMB()
	stopProfile()
	if err != nil {
		return res, err
	}
	res.Figures = main.figures(n, a.Sandbox.TotalCalls()-calls0)
	res.RSSMB = peak
	res.Duplicated = max(res.Duplicated, main.duplicatesIn(a.Sandbox.Records("SocialPost")))
	fmt.Fprintf(opts.Progress, "  %.0f msgs/s, ack p99 %.1f ms, e2e p99 %.0f ms, %.1f msgs per CRM call, lost %d, duplicated %d\n",
		res.MsgsPerS, res.AckP99MS, res.E2EP99MS, res.MsgsPerCRMCall, res.Lost, res.Duplicated)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if opts.NoBaselines {
		return res, nil
	}

	// Raw SignalWithStart on the same server.
	rawN := opts.BaselineMessages
	if rawN <= 0 {
		rawN = 3000
	}
	fmt.Fprintf(opts.Progress, "baseline: raw SignalWithStart, %d signals\n", rawN)
	raw, err := rawSignal(ctx, a, opts, run+"r", rawN)
	if err != nil {
		return res, fmt.Errorf("raw SignalWithStart baseline: %w", err)
	}
	res.RawSignal = &raw
	fmt.Fprintf(opts.Progress, "  %.0f signals/s accepted, %.0f/s processed, ack p99 %.1f ms\n", raw.MsgsPerS, raw.ProcessedMsgsPerS, raw.AckP99MS)

	// Naive direct sync, on its own sandbox with the same settings.
	naiveN := opts.BaselineMessages
	if naiveN <= 0 {
		naiveN = 1500
	}
	fmt.Fprintf(opts.Progress, "baseline: naive direct sync, %d messages\n", naiveN)
	naive, err := naiveSync(ctx, a, sbOpts, opts, run+"n", naiveN)
	if err != nil {
		return res, fmt.Errorf("naive sync baseline: %w", err)
	}
	res.Naive = &naive
	fmt.Fprintf(opts.Progress, "  %.0f msgs/s, ack p99 %.1f ms, %.2f msgs per CRM call\n", naive.MsgsPerS, naive.AckP99MS, naive.MsgsPerCRMCall)

	res.Ratios = &Ratios{
		ThroughputVsNaive:     ratio(res.MsgsPerS, naive.MsgsPerS),
		AckP99VsNaive:         ratio(res.AckP99MS, naive.AckP99MS),
		ThroughputVsRawSignal: ratio(res.MsgsPerS, raw.MsgsPerS),
	}
	if naive.MsgsPerCRMCall > 0 {
		res.Ratios.CRMCallsPerMsgNaiveVsOurs = ratio(res.MsgsPerCRMCall, naive.MsgsPerCRMCall)
	}
	return res, nil
}

// closeWithin stops the app, giving up after d so that a part that does
// not stop cannot keep the figures from being printed.
func closeWithin(a *app.App, opts Options, d time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Close()
	}()
	select {
	case <-done:
	case <-time.After(d):
		fmt.Fprintf(opts.Progress, "the app did not stop within %s; leaving it to the process exit\n", d)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return float64(int64(a/b*100+0.5)) / 100
}

func rateString(r float64) string {
	if r <= 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%.0f msgs/s", r)
}

func numCPU() int { return runtime.NumCPU() }

// startProfile starts a CPU profile into path ("" does nothing) and returns
// the function that stops it.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot create the CPU profile file: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, errors.New("cannot start the CPU profile: another profile is running")
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeHeapProfile writes a heap profile into path ("" does nothing).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create the heap profile file: %w", err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("cannot write the heap profile: %w", err)
	}
	return nil
}
