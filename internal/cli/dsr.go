package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func dsrCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "dsr", Short: "GDPR data-subject requests: access (Art. 15) and erasure (Art. 17)"}
	open := func(typ string) *cobra.Command {
		var f apiFlags
		var email, phone, received, verification string
		var handles []string
		c := &cobra.Command{
			Use:   typ + " [--email E] [--phone P] [--handle provider:id ...]",
			Short: map[string]string{"access": "Open an access request: export everything held about a person", "erase": "Open an erasure request: erase a person from every linked system"}[typ],
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				body := map[string]any{"type": map[string]string{"access": "access", "erase": "erasure"}[typ]}
				ids := map[string]any{}
				if email != "" {
					ids["email"] = email
				}
				if phone != "" {
					ids["phone"] = phone
				}
				var hs []map[string]string
				for _, h := range handles {
					provider, id, ok := cut(h)
					if !ok {
						return fmt.Errorf("--handle %q: write it as provider:id, e.g. x:1234567890", h)
					}
					hs = append(hs, map[string]string{"provider": provider, "id": id})
				}
				if hs != nil {
					ids["handles"] = hs
				}
				body["identifiers"] = ids
				if received != "" {
					t, err := time.Parse(time.RFC3339, received)
					if err != nil {
						return errors.New("--received-at must be RFC 3339, e.g. 2026-11-25T10:00:00Z")
					}
					body["received_at"] = t
				}
				if verification != "" {
					body["verification"] = verification
				}
				c, err := f.client(g)
				if err != nil {
					return err
				}
				var out map[string]any
				if err := c.do("POST", "/v1/dsr", body, &out); err != nil {
					return err
				}
				printJSON(out)
				return nil
			},
		}
		c.Flags().StringVar(&email, "email", "", "the subject's email address")
		c.Flags().StringVar(&phone, "phone", "", "the subject's phone number")
		c.Flags().StringArrayVar(&handles, "handle", nil, "a social handle as provider:id (x, messenger, instagram, whatsapp); repeatable")
		c.Flags().StringVar(&received, "received-at", "", "when the request was received (RFC 3339; default now): the deadline runs from here")
		c.Flags().StringVar(&verification, "verification", "", "how the requester's identity was verified")
		f.add(c)
		return c
	}
	simple := func(use, short, method, path string, body func() any) *cobra.Command {
		var f apiFlags
		c := &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.client(g)
				if err != nil {
					return err
				}
				var out any
				var b any
				if body != nil {
					b = body()
				}
				if err := c.do(method, fmt.Sprintf(path, args[0]), b, &out); err != nil {
					return err
				}
				printJSON(out)
				return nil
			},
		}
		f.add(c)
		return c
	}
	var reason string
	extend := simple("extend ID --reason R", "Extend the deadline by two months (only within the first month, with a reason sent to the subject)", "POST", "/v1/dsr/%s/extend", func() any { return map[string]string{"reason": reason} })
	extend.Flags().StringVar(&reason, "reason", "", "why more time is needed (required)")
	var rf apiFlags
	var out, format string
	report := &cobra.Command{
		Use: "report ID --out FILE", Short: "Write the access export or the erasure's evidence report", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client(g)
			if err != nil {
				return err
			}
			path := "/v1/dsr/" + args[0] + "/report"
			if format == "html" {
				path += "?format=html"
			}
			raw, err := c.raw("GET", path, nil)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = os.Stdout.Write(raw)
				return err
			}
			if err := os.WriteFile(out, raw, 0o600); err != nil {
				return err
			}
			fmt.Printf("report written to %s (mode 0600: it may hold personal data)\n", out)
			return nil
		},
	}
	report.Flags().StringVar(&out, "out", "", "file to write (default: standard output)")
	report.Flags().StringVar(&format, "format", "json", "json or html")
	rf.add(report)
	cmd.AddCommand(
		open("access"), open("erase"),
		simple("status ID", "Show a request's status, deadline and per-system ledger", "GET", "/v1/dsr/%s", nil),
		simple("approve ID", "Approve an erasure", "POST", "/v1/dsr/%s/approve", nil),
		simple("retry ID", "Retry the escalated step of a request after fixing its cause", "POST", "/v1/dsr/%s/retry", nil),
		extend, report,
	)
	return cmd
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return "", "", false
}
