package cli

import (
	"errors"
	"fmt"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/ingest"
)

func importCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.jsonl",
		Short: "Backfill canonical events from a JSONL file (idempotent, resumable, honours erasures)",
		Long: "Reads one canonical event (schemas/event.schema.json) per line and hands them to their conversation workflows.\n" +
			"Against `webcaresync dev` it uses the dev server's Temporal and data dir; in production set WEBCARESYNC_TEMPORAL_ADDRESS and WEBCARESYNC_DATABASE_URL.\n" +
			"Interrupt it with Ctrl-C and run it again to resume.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := g.startClient(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			bar := progressbar.DefaultBytes(-1, "importing")
			res, err := ingest.ImportJSONL(cmd.Context(), a.Ingestor, a.Store, args[0], func(done, total int64) {
				bar.ChangeMax64(total)
				_ = bar.Set64(done)
			})
			_ = bar.Finish()
			fmt.Println()
			if res.Resumed > 0 {
				fmt.Printf("resumed at byte %d\n", res.Resumed)
			}
			fmt.Printf("%d lines: %d events accepted, %d duplicates skipped, %d skipped for erased subjects and conversations\n", res.Lines, res.Accepted, res.Duplicates, res.Suppressed)
			if errors.Is(err, cmd.Context().Err()) && err != nil {
				return errors.New("interrupted; run the same command again to resume")
			}
			return err
		},
	}
}
