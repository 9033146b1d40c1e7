package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func parkedCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "parked", Short: "Events the CRM rejected permanently (validation, picklists), parked with the reason"}
	start := g.startClient
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
