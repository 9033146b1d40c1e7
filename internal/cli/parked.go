package cli

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/config"
)

func parkedCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "parked", Short: "Events the CRM rejected permanently (validation, picklists), parked with the reason"}
	start := func(cmd *cobra.Command) (*app.App, error) {
		cfg, err := config.Load(g.configFile, nil)
		if err != nil {
			return nil, err
		}
		mode := config.Production
		if cfg.Temporal.Address == "" {
			mode = config.Dev
		}
		if cfg, err = g.load(mode); err != nil {
			return nil, err
		}
		if cfg.Temporal.Address == "" {
			cfg.Temporal.Address = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Temporal.Port))
		}
		log, err := logger(cfg)
		if err != nil {
			return nil, err
		}
		return app.Start(cmd.Context(), cfg, log, app.Parts{DevSecrets: mode == config.Dev})
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List parked events with their error code, reason and fields (no message content)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := start(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			ms, err := a.Store.ListParked(cmd.Context(), 0)
			if err != nil {
				return err
			}
			type row struct {
				ID, Conversation, ErrorCode, Reason string
				Fields                              []string
				ParkedAt                            string
			}
			out := make([]row, 0, len(ms))
			for _, m := range ms {
				out = append(out, row{m.ID, m.ConversationID, m.ErrorCode, m.Reason, m.Fields, m.ParkedAt.Format("2006-01-02T15:04:05Z07:00")})
			}
			printJSON(out)
			return nil
		},
	}
	replay := &cobra.Command{
		Use:   "replay [ID...]",
		Short: "Send parked events through the sync again (all of them without IDs), after fixing the mapping",
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := start(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			n, err := a.ReplayParked(cmd.Context(), args)
			fmt.Printf("%d parked events replayed\n", n)
			return err
		},
	}
	cmd.AddCommand(list, replay)
	return cmd
}
