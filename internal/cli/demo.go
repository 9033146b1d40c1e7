package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/demo"
)

func demoCmd(g *globals) *cobra.Command {
	var level string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Tour the product: sync sample conversations into the sandbox CRM, match identities, export and erase a customer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(config.Dev)
			if err != nil {
				return err
			}
			cfg.Log.Level = level
			log, err := logger(cfg)
			if err != nil {
				return err
			}
			_, err = demo.Run(cmd.Context(), demo.Options{DataDir: g.dataDir, DatabaseURL: cfg.DatabaseURL, Out: os.Stdout, Log: log})
			return err
		},
	}
	cmd.Flags().StringVar(&level, "log-level", "error", "log level of the components (the tour itself prints to standard output)")
	return cmd
}
