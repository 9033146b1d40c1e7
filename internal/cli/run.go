package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/config"
)

func devCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack locally: embedded Temporal with its Web UI, the worker, the HTTP server and the Salesforce sandbox",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, log, err := g.start(cmd, config.Dev, app.Parts{
				Embedded: true, UI: true, Sandbox: true, Worker: true, HTTP: true, DevSecrets: true, Inbox: true,
			})
			if err != nil {
				return err
			}
			defer a.Close()
			printDev(a)
			return wait(cmd.Context(), a, log)
		},
	}
}

func printDev(a *app.App) {
	fmt.Printf("webcaresync dev is running (data in %s)\n", a.Cfg.DataDir)
	fmt.Printf("  webhooks and API   http://%s   (/webhooks/meta, /webhooks/x, /webhooks/generic, /v1, /readyz, /metrics)\n", a.HTTPAddr)
	if a.Temporal != nil {
		fmt.Printf("  Temporal frontend  %s\n", a.Temporal.FrontendHostPort())
		if ui := a.Temporal.UIAddress(); ui != "" {
			fmt.Printf("  Temporal Web UI    %s (payloads decoded through the codec endpoint)\n", ui)
		}
	}
	if a.SandboxURL != "" {
		fmt.Printf("  Salesforce sandbox %s\n", a.SandboxURL)
	}
	if a.SecretsFile != "" {
		fmt.Printf("  dev secrets        %s (webhook secrets, sandbox client)\n", a.SecretsFile)
		fmt.Printf("  admin API token    %s (mode 0600)\n", a.Secrets.AdminTokenFile)
	}
	fmt.Println("Stop with Ctrl-C.")
}

func serveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP edge (webhooks and API) against an external Temporal cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, log, err := g.start(cmd, config.Production, app.Parts{HTTP: true, Inbox: true})
			if err != nil {
				return err
			}
			defer a.Close()
			log.Info("serving", zap.String("addr", a.HTTPAddr))
			return wait(cmd.Context(), a, log)
		},
	}
}

func workerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (conversation sync, identity, GDPR requests) against an external Temporal cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, log, err := g.start(cmd, config.Production, app.Parts{Worker: true, MetricsOnly: true})
			if err != nil {
				return err
			}
			defer a.Close()
			log.Info("worker running", zap.String("task_queue", a.Cfg.Temporal.TaskQueue))
			return wait(cmd.Context(), a, log)
		},
	}
}

// start loads the configuration for mode, builds the logger and starts the
// parts.
func (g *globals) start(cmd *cobra.Command, mode config.Mode, parts app.Parts) (*app.App, *zap.Logger, error) {
	cfg, err := g.load(mode)
	if err != nil {
		return nil, nil, err
	}
	log, err := logger(cfg)
	if err != nil {
		return nil, nil, err
	}
	a, err := app.Start(cmd.Context(), cfg, log, parts)
	return a, log, err
}

// startClient starts the parts a one-off command (import, parked) needs:
// the store, the keyring and a Temporal client. Without an external
// Temporal address it talks to the `webcaresync dev` in the same data dir.
func (g *globals) startClient(cmd *cobra.Command) (*app.App, error) {
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

// wait blocks until the process is told to stop or a part fails.
func wait(ctx context.Context, a *app.App, log *zap.Logger) error {
	select {
	case <-ctx.Done():
		log.Info("stopping: draining in-flight webhooks and stopping the worker")
		return nil
	case err := <-a.Errors():
		return err
	}
}
