package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/mappings"
)

func configCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration"}
	var production bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and every mapping file; each error names file, line and field",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mode := config.Dev
			if production {
				mode = config.Production
			}
			var probs config.Problems
			cfg, err := g.load(mode)
			if err != nil {
				if !errors.As(err, &probs) {
					return err
				}
			}
			path := cfg.Mapping
			if path == "" {
				path = mappings.DefaultFile
			}
			var merrs mappings.Errors
			if cfg.Mapping != "" {
				merrs = mappings.Validate(cfg.Mapping)
			} else {
				mappings.Default() // the bundled mapping is checked by its tests
			}
			for _, e := range merrs {
				probs = append(probs, config.Problem{Msg: e.Error()})
			}
			if len(probs) > 0 {
				return probs
			}
			fmt.Printf("configuration OK (file: %s, mapping: %s)\n", orDefault(cfg.File, "none, defaults and environment"), path)
			return nil
		},
	}
	check.Flags().BoolVar(&production, "production", false, "check as serve and worker would: every secret must be set")
	cmd.AddCommand(check)
	return cmd
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
