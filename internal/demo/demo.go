// Package demo runs webcaresync's tour: the whole stack in-process on free
// loopback ports, the bundled sample conversations replayed as signed
// webhooks, an identity match, a review, a GDPR access export and an
// erasure, each checked against the sandbox CRM.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/internal/webhookclient"
	"github.com/webcaresync/webcaresync/schemas"
)

// Options configure a demo run.
type Options struct {
	// DataDir holds the run's data; empty uses a temporary directory that
	// is removed afterwards.
	DataDir string
	// DatabaseURL selects PostgreSQL for the store; empty is SQLite.
	DatabaseURL string
	// Out receives the progress and the summary.
	Out io.Writer
	// Log receives the components' logs.
	Log *zap.Logger
	// Timeout bounds each wait. Default: 90s.
	Timeout time.Duration
	// KeepRunning leaves the stack running after the tour until ctx ends.
	KeepRunning bool
	// AfterSync, if set, is called with the running app once the
	// conversations are in the CRM (tests use it).
	AfterSync func(*app.App)
}

// Summary is what the demo measured.
type Summary struct {
	DataDir         string        `json:"data_dir"`
	Webhooks        int           `json:"webhooks"`
	Events          int           `json:"events"`
	Personas        int           `json:"personas"`
	Posts           int           `json:"posts"`
	Cases           int           `json:"cases"`
	SyncTime        time.Duration `json:"sync_time"`
	AutoLinks       int           `json:"auto_links"`
	ReviewResolved  bool          `json:"review_resolved"`
	PublicLinked    bool          `json:"public_linked"`
	AccessItems     int           `json:"access_items"`
	ErasureLedger   int           `json:"erasure_ledger_rows"`
	ErasedRemaining int           `json:"erased_remaining"`
	Total           time.Duration `json:"total"`
	SandboxCalls    int64         `json:"sandbox_calls"`
	ErasureDSR      string        `json:"erasure_dsr"`
	AccessDSR       string        `json:"access_dsr"`
	SanneContactID  string        `json:"sanne_contact_id"`
	LinkEvidence    []string      `json:"link_evidence"`
}

// Run runs the tour and returns its summary. Any check that fails makes
// it return an error.
func Run(ctx context.Context, opts Options) (Summary, error) {
	start := time.Now()
	var sum Summary
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if opts.Timeout == 0 {
		opts.Timeout = 90 * time.Second
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	dir := opts.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "webcaresync-demo-")
		if err != nil {
			return sum, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	sum.DataDir = dir
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.DatabaseURL = opts.DatabaseURL
	fmt.Fprintf(out, "Starting embedded Temporal, worker, HTTP server and Salesforce sandbox (data in %s)...\n", dir)
	a, err := app.Start(ctx, cfg, opts.Log, app.Parts{
		Embedded: true, EphemeralPorts: true, Sandbox: true, Worker: true, HTTP: true, DevSecrets: true, Inbox: true,
	})
	if err != nil {
		return sum, err
	}
	defer a.Close()
	fmt.Fprintf(out, "  HTTP http://%s   Temporal %s   Salesforce sandbox %s\n", a.HTTPAddr, a.Temporal.FrontendHostPort(), a.SandboxURL)

	contacts, err := seedContacts(a.Sandbox)
	if err != nil {
		return sum, err
	}
	sanne := contacts["sanne.devries@example.nl"]
	sum.SanneContactID = sanne

	// 1. Real-time sync.
	syncStart := time.Now()
	hooks := webhookclient.New("http://"+a.HTTPAddr, webhookclient.Secrets{
		MetaAppSecret: a.Cfg.MetaAppSecret, XConsumerSecret: a.Cfg.XConsumerSecret, GenericSecret: a.Cfg.GenericSecret,
	}, 5)
	expected := 0
	for _, conv := range samples.Conversations() {
		for _, p := range conv.Payloads {
			code, body, err := hooks.Post(ctx, p.Channel, p.Body)
			if err != nil {
				return sum, fmt.Errorf("posting %s: %w", conv.Name, err)
			}
			if code != http.StatusOK {
				return sum, fmt.Errorf("posting %s: %d %s", conv.Name, code, body)
			}
			sum.Webhooks++
			n, err := messages(p)
			if err != nil {
				return sum, err
			}
			expected += n
		}
	}
	sum.Events = expected
	fmt.Fprintf(out, "Replayed %d signed webhooks (%d messages) from X, Messenger, Instagram and WhatsApp.\n", sum.Webhooks, expected)
	if err := waitFor(ctx, opts.Timeout, "every message in the CRM", func() bool {
		return len(a.Sandbox.Records("SocialPost")) >= expected
	}); err != nil {
		return sum, err
	}
	sum.SyncTime = time.Since(syncStart)
	sum.Posts = len(a.Sandbox.Records("SocialPost"))
	sum.Personas = len(a.Sandbox.Records("SocialPersona"))
	sum.Cases = len(a.Sandbox.Records("Case"))
	fmt.Fprintf(out, "  CRM now holds %d SocialPosts, %d SocialPersonas and %d Cases (%.1fs from first webhook).\n", sum.Posts, sum.Personas, sum.Cases, sum.SyncTime.Seconds())

	// 2. Identity: Sanne's X DM (e-mail) and WhatsApp (phone) link both
	// personas to her contact; the household's shared phone goes to review.
	if err := waitFor(ctx, opts.Timeout, "Sanne's X and WhatsApp personas linked to her contact", func() bool {
		return personasLinkedTo(a.Sandbox, sanne) >= 2
	}); err != nil {
		return sum, err
	}
	sum.AutoLinks = personasLinkedTo(a.Sandbox, sanne)
	fmt.Fprintf(out, "Identity: Sanne's X persona (e-mail in DM) and WhatsApp persona (phone in DM) are both linked to Contact %s.\n", sanne)
	api := &client{base: "http://" + a.HTTPAddr, token: a.Secrets.AdminToken}
	var reviewID string
	if err := waitFor(ctx, opts.Timeout, "the household match in the review queue", func() bool {
		var reviews []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Rule   string `json:"rule"`
		}
		if api.do(ctx, "GET", "/v1/reviews", nil, &reviews) != nil {
			return false
		}
		for _, r := range reviews {
			if r.Status == "open" {
				reviewID = r.ID
				return true
			}
		}
		return false
	}); err != nil {
		return sum, err
	}
	var links []struct {
		Channel  string `json:"channel"`
		Rule     string `json:"rule"`
		Approved string `json:"approved_by"`
	}
	// The CRM link comes first and its evidence is recorded right after
	// it, so wait for both links' evidence.
	if err := waitFor(ctx, opts.Timeout, "the evidence of both of Sanne's links", func() bool {
		links = links[:0]
		return api.do(ctx, "GET", "/v1/contacts/"+sanne+"/links", nil, &links) == nil && len(links) >= 2
	}); err != nil {
		return sum, err
	}
	var why []string
	for _, l := range links {
		why = append(why, l.Channel+": "+l.Rule+" ("+l.Approved+")")
	}
	sum.LinkEvidence = why
	fmt.Fprintf(out, "  Evidence (webcaresync review explain %s): %s.\n", sanne, strings.Join(why, ", "))
	pieter := contacts["pieter.jansen@example.nl"]
	fmt.Fprintf(out, "  Two contacts share the phone number in the household DM: review %s waits for an agent.\n", reviewID)
	if err := api.do(ctx, "POST", "/v1/reviews/"+reviewID+"/resolve", map[string]string{"contact_id": pieter}, nil); err != nil {
		return sum, err
	}
	if err := waitFor(ctx, opts.Timeout, "the reviewed persona linked", func() bool {
		return personasLinkedTo(a.Sandbox, pieter) >= 1
	}); err != nil {
		return sum, err
	}
	sum.ReviewResolved = true
	fmt.Fprintf(out, "  An agent resolved the review: the persona is now linked to Contact %s, with the approval recorded.\n", pieter)
	sum.PublicLinked = personasLinkedTo(a.Sandbox, contacts["lotte.visser@example.nl"]) > 0
	if sum.PublicLinked {
		return sum, errors.New("the e-mail address in a public tweet was used for matching; it must not be")
	}
	fmt.Fprintln(out, "  The e-mail address Lotte posted in a public tweet linked nothing (only DMs count).")
	if opts.AfterSync != nil {
		opts.AfterSync(a)
	}

	// 3. GDPR access, then erasure, of Sanne, who wrote on X and WhatsApp.
	subject := map[string]any{"email": "sanne.devries@example.nl", "phone": "+31612345678",
		"handles": []map[string]string{{"provider": "x", "id": samples.SanneXID}, {"provider": "whatsapp", "id": samples.SanneWaID}}}
	access, err := api.openDSR(ctx, "access", subject)
	if err != nil {
		return sum, err
	}
	sum.AccessDSR = access
	if err := api.waitDSR(ctx, opts.Timeout, access, "completed"); err != nil {
		return sum, err
	}
	var report struct {
		Export struct {
			Systems map[string]json.RawMessage `json:"systems"`
		} `json:"export"`
	}
	if err := api.do(ctx, "GET", "/v1/dsr/"+access+"/report", nil, &report); err != nil {
		return sum, err
	}
	var crm map[string][]json.RawMessage
	_ = json.Unmarshal(report.Export.Systems["salesforce"], &crm)
	for _, recs := range crm {
		sum.AccessItems += len(recs)
	}
	fmt.Fprintf(out, "GDPR access: export %s lists %d CRM records across %d systems (GET /v1/dsr/%s/report?format=html).\n", access, sum.AccessItems, len(report.Export.Systems), access)

	erase, err := api.openDSR(ctx, "erasure", subject)
	if err != nil {
		return sum, err
	}
	sum.ErasureDSR = erase
	if err := api.waitDSR(ctx, opts.Timeout, erase, "awaiting_approval"); err != nil {
		return sum, err
	}
	if err := api.do(ctx, "POST", "/v1/dsr/"+erase+"/approve", nil, nil); err != nil {
		return sum, err
	}
	if err := api.waitDSR(ctx, opts.Timeout, erase, "completed"); err != nil {
		return sum, err
	}
	var status struct {
		Ledger []json.RawMessage `json:"ledger"`
	}
	if err := api.do(ctx, "GET", "/v1/dsr/"+erase, nil, &status); err != nil {
		return sum, err
	}
	sum.ErasureLedger = len(status.Ledger)
	sum.ErasedRemaining = remaining(a.Sandbox, sanne, []string{samples.SanneXID, samples.SanneWaID})
	if sum.ErasedRemaining != 0 {
		return sum, fmt.Errorf("after the erasure the CRM still holds %d of Sanne's records", sum.ErasedRemaining)
	}
	fmt.Fprintf(out, "GDPR erasure: request %s approved and completed; the CRM holds none of Sanne's records; the ledger has %d rows (GET /v1/dsr/%s/report).\n", erase, sum.ErasureLedger, erase)
	sum.SandboxCalls = a.Sandbox.TotalCalls()
	sum.Total = time.Since(start)
	fmt.Fprintf(out, "\nSummary: %d webhooks, %d messages synced in %.1fs, %d personas, %d cases, %d automatic links, 1 review resolved, access export of %d records, erasure with %d ledger rows; %d sandbox API calls; %.1fs in all.\n",
		sum.Webhooks, sum.Events, sum.SyncTime.Seconds(), sum.Personas, sum.Cases, sum.AutoLinks, sum.AccessItems, sum.ErasureLedger, sum.SandboxCalls, sum.Total.Seconds())
	fmt.Fprintln(out, "Run `go run ./cmd/webcaresync dev` to keep the stack running, with the Temporal Web UI on http://127.0.0.1:8233.")
	if opts.KeepRunning {
		<-ctx.Done()
	}
	return sum, nil
}

// seedContacts puts the demo customers into the sandbox CRM and returns
// their ids by e-mail address.
func seedContacts(sb *sfsandbox.Sandbox) (map[string]string, error) {
	ids := map[string]string{}
	for _, c := range samples.Customers() {
		fields := map[string]any{"FirstName": c.FirstName, "LastName": c.LastName, "Email": c.Email, "MailingPostalCode": c.Postcode, "MailingStreet": c.Street, "MailingCity": c.City}
		if c.Phone != "" {
			fields["Phone"] = c.Phone
		}
		if c.Mobile != "" {
			fields["MobilePhone"] = c.Mobile
		}
		id, err := sb.Seed("Contact", fields)
		if err != nil {
			return nil, fmt.Errorf("seeding the demo contacts: %w", err)
		}
		ids[c.Email] = id
	}
	return ids, nil
}

// messages counts the message events (not status updates) in a payload.
func messages(p samples.Payload) (int, error) {
	var events []schemas.Event
	var err error
	switch p.Channel {
	case "meta":
		events, err = meta.New("", "").Parse(p.Body)
	case "x":
		events, err = x.New("").Parse(p.Body)
	}
	n := 0
	for _, e := range events {
		if e.Kind != schemas.KindStatus {
			n++
		}
	}
	return n, err
}

// personasLinkedTo counts the personas parented to a contact.
func personasLinkedTo(sb *sfsandbox.Sandbox, contactID string) int {
	n := 0
	for _, r := range sb.Records("SocialPersona") {
		if id, _ := r["ParentId"].(string); id == contactID {
			n++
		}
	}
	return n
}

// remaining counts the CRM records that still belong to the subject.
func remaining(sb *sfsandbox.Sandbox, contactID string, userIDs []string) int {
	n := 0
	for _, obj := range []string{"Contact", "SocialPersona", "SocialPost", "Case"} {
		for _, r := range sb.Records(obj) {
			if obj == "Contact" {
				// An anonymised contact keeps its id; what counts is
				// whether anything personal is left in it.
				r = without(r, "Id", "attributes")
			}
			raw, _ := json.Marshal(r)
			s := string(raw)
			hit := strings.Contains(s, contactID) || strings.Contains(s, "sanne") || strings.Contains(s, "Sanne")
			for _, u := range userIDs {
				hit = hit || strings.Contains(s, u)
			}
			if hit {
				n++
			}
		}
	}
	return n
}

func without(r map[string]any, keys ...string) map[string]any {
	out := make(map[string]any, len(r))
	for k, v := range r {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// client calls the /v1 API with the admin token.
type client struct {
	base, token string
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (c *client) openDSR(ctx context.Context, typ string, ids map[string]any) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, "POST", "/v1/dsr", map[string]any{"type": typ, "identifiers": ids, "verification": "demo: verified by e-mail reply"}, &out)
	return out.ID, err
}

func (c *client) waitDSR(ctx context.Context, timeout time.Duration, id, status string) error {
	var last string
	err := waitFor(ctx, timeout, "request "+id+" to reach "+status, func() bool {
		var st struct {
			Status     string `json:"status"`
			Escalation string `json:"escalation"`
		}
		if c.do(ctx, "GET", "/v1/dsr/"+id, nil, &st) != nil {
			return false
		}
		last = st.Status + " " + st.Escalation
		return st.Status == status
	})
	if err != nil {
		return fmt.Errorf("%w (last status: %s)", err, last)
	}
	return nil
}
