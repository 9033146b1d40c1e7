// Package cli holds webcaresync's commands. Each command is a small
// function that loads the configuration, starts the parts it needs through
// internal/app, and reports errors as one line that says what to fix.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/logging"
)

// globals are the flags every command takes.
type globals struct {
	configFile string
	dataDir    string
}

// Main runs the command line and returns the exit code.
func Main(args []string) int {
	restrictFiles()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Execute(ctx, args, os.Stdout, os.Stderr)
}

// Execute runs the command line with the given arguments and returns the
// exit code. Errors go to stderr; commands that print through their cobra
// command (such as keys) write to stdout, the others to os.Stdout. Tests
// call it; Main adds signal handling and the file mode mask.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{}
	root := &cobra.Command{
		Use:           "webcaresync",
		Short:         "webcaresync puts social-media customer service (webcare) into your CRM",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configFile, "config", "", "configuration file (default: ./webcaresync.yaml when present)")
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", "", "data directory (default: ./.webcaresync, env WEBCARESYNC_DATA_DIR)")
	root.AddCommand(
		devCmd(g), demoCmd(g), serveCmd(g), workerCmd(g), configCmd(g), sandboxCmd(g),
		importCmd(g), dsrCmd(g), reviewCmd(g), parkedCmd(g), benchCmd(g), privacyCmd(g), samplesCmd(g), keysCmd(g),
	)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var probs config.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(stderr, "webcaresync: "+p.String())
			}
			return 2
		}
		fmt.Fprintln(stderr, "webcaresync: "+err.Error())
		return 1
	}
	return 0
}

// load reads the configuration, applies --data-dir and validates it for
// mode.
func (g *globals) load(mode config.Mode) (config.Config, error) {
	cfg, err := config.Load(g.configFile, nil)
	if err != nil {
		return cfg, err
	}
	if g.dataDir != "" {
		cfg.DataDir = g.dataDir
	}
	if mode == config.Dev && cfg.Log.Format == "" {
		cfg.Log.Format = "console"
	}
	if cfg.Log.Format == "" {
		cfg.Log.Format = "json"
	}
	return cfg, cfg.Validate(mode)
}

// logger builds the process logger from the configuration.
func logger(cfg config.Config) (*zap.Logger, error) {
	mode := "prod"
	if cfg.Log.Format == "console" {
		mode = "dev"
	}
	return logging.New(mode, cfg.Log.Level)
}
