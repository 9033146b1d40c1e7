package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/mappings"
)

func sandboxCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "sandbox", Short: "Run local stand-ins for external systems"}
	var (
		addr                string
		jwtCert, jwtUser    string
		wipe                bool
		latency, ttl        time.Duration
		budget, concurrency int
	)
	sf := &cobra.Command{
		Use:   "salesforce",
		Short: "Run the Salesforce-compatible sandbox (REST API, OAuth, limits, fault injection under /_sandbox/)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(config.Dev)
			if err != nil {
				return err
			}
			log, err := logger(cfg)
			if err != nil {
				return err
			}
			secrets, _, err := config.EnsureDevSecrets(&cfg)
			if err != nil {
				return err
			}
			clientID, clientSecret := secrets.SandboxClientID, secrets.SandboxClientSecret
			certPEM, err := readJWTCert(jwtCert, jwtUser)
			if err != nil {
				return err
			}
			m := mappings.Default()
			if cfg.Mapping != "" {
				if m, err = mappings.Load(cfg.Mapping); err != nil {
					return err
				}
			}
			var custom []sfsandbox.CustomField
			for _, cf := range m.CustomFields() {
				custom = append(custom, sfsandbox.CustomField{Object: cf.Object, Name: cf.Name, Type: cf.Type, Length: cf.Length, ExternalID: cf.ExternalID, Unique: cf.Unique})
			}
			sb, err := sfsandbox.New(sfsandbox.Options{
				DataDir: filepath.Join(cfg.DataDir, "sandbox"), Wipe: wipe,
				ClientID: clientID, ClientSecret: clientSecret,
				JWTCertificatePEM: certPEM, Username: jwtUser,
				TokenTTL: ttl, DailyBudget: budget, ConcurrencyCap: concurrency, Latency: latency,
				CustomFields: custom, Logger: log,
			})
			if err != nil {
				return err
			}
			defer sb.Close()
			if addr == "" {
				addr = cfg.SandboxAddr
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Salesforce sandbox on http://%s (token endpoint /services/oauth2/token, client id %s; secret in %s)\n", addr, clientID, cfg.Path("dev-secrets.json"))
			if certPEM != nil {
				fmt.Fprintf(out, "JWT bearer grant: assertions with iss %s signed by the key of %s are accepted\n", clientID, jwtCert)
			}
			return sb.ListenAndServe(cmd.Context(), addr)
		},
	}
	sf.Flags().StringVar(&addr, "addr", "", "listen address (default 127.0.0.1:8089, env WEBCARESYNC_SANDBOX_ADDR)")
	sf.Flags().StringVar(&jwtCert, "jwt-cert", "", "X.509 certificate (PEM) of the connected app: enables the JWT bearer grant for assertions signed with its key")
	sf.Flags().StringVar(&jwtUser, "jwt-username", "", "the only JWT subject (integration user) accepted (default: any; needs --jwt-cert)")
	sf.Flags().BoolVar(&wipe, "wipe", false, "start with no data")
	sf.Flags().DurationVar(&latency, "latency", 0, "added latency per call")
	sf.Flags().DurationVar(&ttl, "token-ttl", 2*time.Hour, "access token lifetime")
	sf.Flags().IntVar(&budget, "daily-budget", 100000, "daily API request budget")
	sf.Flags().IntVar(&concurrency, "concurrency", 25, "concurrent request cap")
	cmd.AddCommand(sf)
	return cmd
}

// readJWTCert reads the connected app's certificate for the JWT bearer
// grant, or returns nil when no file is given. A username alone is an
// error: without a certificate no assertion can be verified.
func readJWTCert(file, username string) ([]byte, error) {
	if file == "" {
		if username != "" {
			return nil, errors.New("--jwt-username needs --jwt-cert: give the connected app's certificate too")
		}
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the --jwt-cert file: %w", err)
	}
	return b, nil
}
