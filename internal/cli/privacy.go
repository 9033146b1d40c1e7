package cli

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/spf13/cobra"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/privacyscan"
)

func privacyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "privacy", Short: "Privacy checks for operators and privacy officers"}
	cmd.AddCommand(privacyScanCmd(g))
	return cmd
}

func privacyScanCmd(g *globals) *cobra.Command {
	var (
		s              privacyscan.Subject
		logs           []string
		asJSON         bool
		includeSandbox bool
	)
	cmd := &cobra.Command{
		Use:   "scan [--email E] [--phone P] [--handle H] [--name N] [--text T] [--log FILE]",
		Short: "Search the data dir byte for byte for a person's data; exits 1 when anything is found",
		Long: `Searches every file in the data dir (the embedded Temporal database and its
WAL, the store database and WAL, generated files) and the given log files for
each value, as is and lowercased, JSON-escaped, as UTF-16LE, base64, base64url
and hex. Phone numbers are also searched in their national forms
(0612345678, 06-12345678). A store on PostgreSQL (WEBCARESYNC_DATABASE_URL) is
read table by table. The sandbox/ directory (the stand-in CRM) is skipped
unless --include-sandbox is set. Files are only read, so the scan can run
while webcaresync runs.

The report names values by kind and number (email[0], phone[0] national dash)
with the file and byte offset of each hit, never the value or the bytes
around it, so it is safe to keep with the erasure records.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			needles := s.Needles()
			if len(needles) == 0 {
				return fmt.Errorf("nothing to search for: give --email, --phone, --handle, --name or --text (values of at least %d bytes)", privacyscan.MinNeedleLen)
			}
			cfg, err := config.Load(g.configFile, nil)
			if err != nil {
				return err
			}
			if g.dataDir != "" {
				cfg.DataDir = g.dataDir
			}
			if st, err := os.Stat(cfg.DataDir); err != nil || !st.IsDir() {
				return fmt.Errorf("data dir %s not found: pass --data-dir", cfg.DataDir)
			}
			var extra []privacyscan.NamedReader
			for _, path := range logs {
				f, err := os.Open(path)
				if err != nil {
					return fmt.Errorf("cannot read log file: %w", err)
				}
				defer f.Close()
				extra = append(extra, privacyscan.NamedReader{Name: "log:" + path, R: f})
			}
			if strings.HasPrefix(cfg.DatabaseURL, "postgres") {
				db, err := sql.Open("pgx", cfg.DatabaseURL)
				if err != nil {
					return fmt.Errorf("cannot open the store database: %w", err)
				}
				defer db.Close()
				tables, err := privacyscan.PostgresTables(cmd.Context(), db)
				if err != nil {
					return err
				}
				extra = append(extra, tables...)
			}
			opts := privacyscan.Options{}
			if includeSandbox {
				opts.Exclude = []string{}
			}
			rep, err := opts.Scan(cfg.DataDir, needles, extra...)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			if n := rep.Total(); n > 0 {
				return fmt.Errorf("found %d occurrences of the person's data: see the report above", n)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&s.Emails, "email", nil, "an e-mail address; repeatable")
	cmd.Flags().StringArrayVar(&s.Phones, "phone", nil, "a phone number, best in E.164 (+31612345678); national forms are derived; repeatable")
	cmd.Flags().StringArrayVar(&s.Handles, "handle", nil, "a handle or platform user id, optionally as provider:id; repeatable")
	cmd.Flags().StringArrayVar(&s.Names, "name", nil, "a personal name; repeatable")
	cmd.Flags().StringArrayVar(&s.Texts, "text", nil, "a message text; 24-character slices of it are searched; repeatable")
	cmd.Flags().StringVar(&s.Region, "region", "NL", "region of phone numbers written without a country code")
	cmd.Flags().StringArrayVar(&logs, "log", nil, "a log file to scan as well; repeatable")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&includeSandbox, "include-sandbox", false, "scan the sandbox CRM's snapshot too")
	return cmd
}
