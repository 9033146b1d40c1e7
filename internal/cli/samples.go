package cli

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/webhookclient"
)

func samplesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "samples", Short: "The bundled demo conversations, for trying out `webcaresync dev`"}
	cmd.AddCommand(samplesSendCmd(g))
	return cmd
}

func samplesSendCmd(g *globals) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Post the bundled sample conversations as signed webhooks to a running `webcaresync dev`",
		Long: `Posts the demo's sample conversations (X, Messenger, Instagram and WhatsApp,
in Dutch and English; every person in them is fictional) to the webhooks of
the webcaresync running in the same data dir, signed with its dev secrets
(DATA_DIR/dev-secrets.json), as the platforms would. Sending them again
stores nothing twice: the platforms' message ids are deduplicated.

Sanne de Vries writes on X (x:` + samples.SanneXID + `) and WhatsApp
(whatsapp:` + samples.SanneWaID + `), so an erasure to try is:

  webcaresync dsr erase --email sanne.devries@example.nl --phone +31612345678 \
    --handle x:` + samples.SanneXID + ` --handle whatsapp:` + samples.SanneWaID,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(config.Dev)
			if err != nil {
				return err
			}
			secrets := cfg.Path("dev-secrets.json")
			if _, err := os.Stat(secrets); err != nil && (cfg.MetaAppSecret == "" || cfg.XConsumerSecret == "" || cfg.GenericSecret == "") {
				return fmt.Errorf("no webhook secrets: %s does not exist; start `webcaresync dev` first, or pass its --data-dir", secrets)
			}
			if _, _, err := config.EnsureDevSecrets(&cfg); err != nil {
				return err
			}
			base := f.server
			if base == "" {
				base = "http://" + cfg.HTTPAddr
			}
			hooks := webhookclient.New(strings.TrimRight(base, "/"), webhookclient.Secrets{
				MetaAppSecret: cfg.MetaAppSecret, XConsumerSecret: cfg.XConsumerSecret, GenericSecret: cfg.GenericSecret,
			}, 3)
			posts := 0
			for _, conv := range samples.Conversations() {
				for _, p := range conv.Payloads {
					code, body, err := hooks.Post(cmd.Context(), p.Channel, p.Body)
					if err != nil {
						return fmt.Errorf("cannot post to %s: is `webcaresync dev` running with the same --data-dir? (%v)", base, err)
					}
					if code != http.StatusOK {
						return fmt.Errorf("%s answered %d to a sample webhook (%s): is it a `webcaresync dev` with the same --data-dir?", base, code, strings.TrimSpace(string(body)))
					}
					posts++
				}
			}
			fmt.Printf("Posted %d signed webhooks (%d conversations) to %s.\n", posts, len(samples.Conversations()), base)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
