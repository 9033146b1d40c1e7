package cli

import (
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/bench"
	"github.com/webcaresync/webcaresync/internal/logging"
)

func benchCmd(_ *globals) *cobra.Command {
	var (
		o     bench.Options
		level string
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, latency and CRM calls per message against a naive sync and raw Temporal, in one process",
		Long: "bench runs the embedded Temporal server (SQLite in memory), the worker, the HTTP edge and the Salesforce\n" +
			"sandbox in this process, sends signed webhooks over loopback HTTP, waits until every message is\n" +
			"visible in the sandbox CRM and prints one JSON line with the figures, the two baselines and the ratios.\n" +
			"Progress goes to standard error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Rate < 0 {
				return errors.New("--rate must be 0 (as fast as possible) or a positive number of messages a second")
			}
			log, err := logging.New("dev", level)
			if err != nil {
				return err
			}
			if !quiet {
				o.Progress = os.Stderr
			}
			o.Log = log
			res, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			return json.NewEncoder(os.Stdout).Encode(res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Conversations, "conversations", 20, "conversations the messages are spread over")
	f.IntVar(&o.Messages, "messages", 1500, "messages per conversation")
	f.Float64Var(&o.Rate, "rate", 0, "offered load in messages a second (0: as fast as possible)")
	f.DurationVar(&o.Duration, "duration", 0, "with --rate: run this long (sets --messages); without: stop sending after this long")
	f.DurationVar(&o.CRMLatency, "crm-latency", 50*time.Millisecond, "sandbox latency per CRM call (negative: none)")
	f.IntVar(&o.ConcurrencyCap, "crm-concurrency", 25, "sandbox cap on CRM calls in flight (negative: none)")
	f.IntVar(&o.Senders, "senders", 64, "webhooks in flight at once")
	f.BoolVar(&o.NoInbox, "no-inbox", false, "signal Temporal from the webhook handler instead of the durable inbox and relay")
	f.DurationVar(&o.FlushInterval, "flush-interval", time.Second, "shortest time between two CRM batches of a conversation (negative: none)")
	f.DurationVar(&o.RelayInterval, "relay-interval", 100*time.Millisecond, "shortest cycle of the inbox relay")
	f.Float64Var(&o.CRMActivitiesPerSecond, "crm-activities-per-second", 0, "cap on CRM activities a second (0: the configured default)")
	f.IntVar(&o.BaselineMessages, "baseline-messages", 0, "messages per baseline (default 3000 raw signals, 1500 naive)")
	f.BoolVar(&o.NoBaselines, "no-baselines", false, "skip the baselines")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long to wait for every message to be visible in the CRM")
	f.BoolVar(&o.TemporalOnDisk, "temporal-on-disk", false, "keep the embedded Temporal server's SQLite database on disk (in a temporary dir) instead of in memory")
	f.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile at the main phase's peak resident set size to this file")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the main phase to this file")
	f.StringVar(&level, "log-level", "error", "log level of the components")
	f.BoolVar(&quiet, "quiet", false, "print only the JSON line")
	return cmd
}
