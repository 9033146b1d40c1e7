package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/privacy"
)

func keysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Master key rotation: add a master key, rewrap the data keys under it, see which master key wraps what",
		Long: `Every payload and sealed value is encrypted under a per-subject data key; the
data keys are stored wrapped (encrypted) under a master key from the master
key file (WEBCARESYNC_MASTER_KEY_FILE; in dev DATA_DIR/master.key), one key
per line, newest first. The newest key wraps new data keys; the older ones
only unwrap. To rotate:

  1. Put a new key at the top of the file (webcaresync keys add, or your
     secret store) and keep the old key below it.
  2. Restart every webcaresync process, so that all of them can read keys
     wrapped under the new master key and wrap new keys under it.
  3. Run webcaresync keys rotate: it rewraps every live data key under the
     new master key. It is idempotent; run it again after an interruption.
  4. When keys status shows no live data key under the old master key,
     remove its line from the file and restart again.

These commands need the store and the master key file only, not Temporal,
and print key IDs and counts, never key material.`,
	}
	cmd.AddCommand(keysRotateCmd(g), keysStatusCmd(g), keysAddCmd(g))
	return cmd
}

// keysConfig loads the configuration for a keys command. Without
// WEBCARESYNC_MASTER_KEY_FILE it uses the master key file of a dev data dir
// (named in DATA_DIR/dev-secrets.json), but never creates one.
func (g *globals) keysConfig() (config.Config, error) {
	cfg, err := config.Load(g.configFile, nil)
	if err != nil {
		return cfg, err
	}
	if g.dataDir != "" {
		cfg.DataDir = g.dataDir
	}
	if cfg.Log.Format == "" {
		// A person runs these commands; the rotation's progress lines read
		// better as console logs.
		cfg.Log.Format = "console"
	}
	if cfg.DatabaseURL == "" {
		if st, err := os.Stat(cfg.DataDir); err != nil || !st.IsDir() {
			return cfg, fmt.Errorf("data dir %s not found: pass --data-dir, or set WEBCARESYNC_DATABASE_URL for a PostgreSQL store", cfg.DataDir)
		}
	}
	if cfg.Secrets.MasterKeyFile != "" {
		return cfg, nil
	}
	raw, err := os.ReadFile(cfg.Path("dev-secrets.json"))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, errors.New("no master key file: set WEBCARESYNC_MASTER_KEY_FILE (or secrets.master_key_file), or pass the --data-dir of a `webcaresync dev`")
	}
	if err != nil {
		return cfg, fmt.Errorf("cannot read %s: %w", cfg.Path("dev-secrets.json"), err)
	}
	var dev config.DevSecrets
	if err := json.Unmarshal(raw, &dev); err != nil || dev.MasterKeyFile == "" {
		return cfg, fmt.Errorf("%s names no master key file: set WEBCARESYNC_MASTER_KEY_FILE", cfg.Path("dev-secrets.json"))
	}
	cfg.Secrets.MasterKeyFile = dev.MasterKeyFile
	return cfg, nil
}

// openKeys opens the store and master keys for a keys command.
func (g *globals) openKeys(cmd *cobra.Command) (*app.Keys, config.Config, error) {
	cfg, err := g.keysConfig()
	if err != nil {
		return nil, cfg, err
	}
	log, err := logger(cfg)
	if err != nil {
		return nil, cfg, err
	}
	k, err := app.OpenKeys(cmd.Context(), cfg, log)
	return k, cfg, err
}

// masterKeyStatus is one master key in `keys status` and `keys rotate`.
type masterKeyStatus struct {
	ID       string `json:"id"`
	Active   bool   `json:"active"`
	LiveKeys int    `json:"live_data_keys"`
}

// keysReport is what `keys status` and `keys rotate` print.
type keysReport struct {
	MasterKeyFile string            `json:"master_key_file"`
	Active        string            `json:"active_master_key"`
	Rewrapped     *int              `json:"rewrapped,omitempty"`
	MasterKeys    []masterKeyStatus `json:"master_keys"`
}

// old counts the live data keys still wrapped under older master keys.
func (r keysReport) old() int {
	n := 0
	for _, m := range r.MasterKeys {
		if !m.Active {
			n += m.LiveKeys
		}
	}
	return n
}

func report(cmd *cobra.Command, k *app.Keys, file string) (keysReport, error) {
	counts, err := k.LiveKeysByMaster(cmd.Context())
	if err != nil {
		return keysReport{}, err
	}
	r := keysReport{MasterKeyFile: file, Active: k.MasterKeys.ActiveID()}
	for _, id := range k.MasterKeys.IDs() {
		r.MasterKeys = append(r.MasterKeys, masterKeyStatus{ID: id, Active: id == r.Active, LiveKeys: counts[id]})
	}
	return r, nil
}

func (r keysReport) writeText(w io.Writer) {
	if r.Rewrapped != nil {
		fmt.Fprintf(w, "Rewrapped %d data keys under master key %s.\n", *r.Rewrapped, r.Active)
	}
	fmt.Fprintf(w, "Master keys in %s, newest first:\n", r.MasterKeyFile)
	for _, m := range r.MasterKeys {
		role := "      "
		if m.Active {
			role = "active"
		}
		note := ""
		switch {
		case !m.Active && m.LiveKeys == 0:
			note = "  (wraps nothing: can be removed)"
		case !m.Active:
			note = "  (run `webcaresync keys rotate`)"
		}
		fmt.Fprintf(w, "  %-32s %s %d live data keys%s\n", m.ID, role, m.LiveKeys, note)
	}
}

func printReport(cmd *cobra.Command, r keysReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	r.writeText(cmd.OutOrStdout())
	return nil
}

func keysRotateCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rewrap every live data key under the newest master key; idempotent",
		Long: `Rewraps every live data key that is wrapped under an older master key in the
master key file under the newest (first) one, a page at a time. Destroyed
(erased) keys stay destroyed. Data encrypted before the rotation stays
readable: only the wrapping of the data keys changes. Running it again
rewraps nothing. Restart every webcaresync process with the new master key
file before running it. Exits 1 when keys are left under older master keys
afterwards (a process still wraps new keys under an old one: restart it and
run this again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, cfg, err := g.openKeys(cmd)
			if err != nil {
				return err
			}
			defer k.Close()
			n, err := k.Keyring.RotateMaster(cmd.Context())
			if err != nil {
				return fmt.Errorf("rotation stopped after rewrapping %d data keys (run it again to go on): %w", n, err)
			}
			r, err := report(cmd, k, cfg.Secrets.MasterKeyFile)
			if err != nil {
				return err
			}
			r.Rewrapped = &n
			if err := printReport(cmd, r, asJSON); err != nil {
				return err
			}
			if left := r.old(); left > 0 {
				return fmt.Errorf("%d live data keys are still wrapped under older master keys: a process still uses an older master key as its newest; restart every webcaresync process with %s and run `webcaresync keys rotate` again", left, cfg.Secrets.MasterKeyFile)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func keysStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Count the live data keys wrapped under each master key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, cfg, err := g.openKeys(cmd)
			if err != nil {
				return err
			}
			defer k.Close()
			r, err := report(cmd, k, cfg.Secrets.MasterKeyFile)
			if err != nil {
				return err
			}
			return printReport(cmd, r, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func keysAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "add",
		Short: "Generate a new master key at the top of the master key file (file-based setups and dev)",
		Long: `Generates a random master key and writes it as the first line of the master
key file, keeping the older keys below it. Then restart every webcaresync
process and run webcaresync keys rotate. With a secret store, add the new
line there instead ("<id> <64 hex characters>", newest first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.keysConfig()
			if err != nil {
				return err
			}
			id, err := privacy.AddMasterKey(cfg.Secrets.MasterKeyFile)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Added master key %s at the top of %s.\n", id, cfg.Secrets.MasterKeyFile)
			fmt.Fprintln(out, strings.TrimSpace(`
Next: restart every webcaresync process (so each can read keys wrapped under
the new master key), then run `+"`webcaresync keys rotate`"+`.`))
			return nil
		},
	}
}
