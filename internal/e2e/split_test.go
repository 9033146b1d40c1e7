package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/internal/temporalserver"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// The parts `webcaresync serve` and `webcaresync worker` start
// (internal/cli/run.go), on free loopback ports.
var (
	serveParts  = app.Parts{HTTP: true, Inbox: true, EphemeralPorts: true}
	workerParts = app.Parts{Worker: true, MetricsOnly: true, EphemeralPorts: true}
)

// TestServeAndWorkerSplit runs the production split: a Temporal server
// started on its own, a Salesforce sandbox on its own listener that the
// worker reaches over HTTP with a login URL and client credentials as it
// would a real org, and two webcaresync instances on the same store, one
// with serve's parts and one with worker's, configured as in production
// (every secret given, none generated). A webhook posted to serve reaches
// the CRM through the worker. With the worker stopped, serve still
// acknowledges a webhook (the durable inbox and the relay hand it to
// Temporal), and a new worker delivers it.
//
// It runs on SQLite and, with WEBCARESYNC_TEST_POSTGRES, on PostgreSQL. On
// SQLite both instances open the same database file in a shared data dir:
// the store serialises writers across processes (WAL, BEGIN IMMEDIATE and
// a busy timeout), as for an import next to a running server.
func TestServeAndWorkerSplit(t *testing.T) {
	t.Parallel()
	addr, port := freeAddr(t)
	srv, err := temporalserver.Start(context.Background(), temporalserver.Options{DataDir: t.TempDir(), FrontendPort: port, SearchAttributes: searchAttributes()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	sb, loginURL := externalSandbox(t)
	cfg := productionConfig(t, addr, loginURL)

	serve := start(t, stackOptions{dataDir: cfg.DataDir, parts: &serveParts, cfg: func(c *config.Config) { *c = withStore(cfg, c) }})
	worker := start(t, stackOptions{dataDir: cfg.DataDir, parts: &workerParts, cfg: func(c *config.Config) { *c = withStore(cfg, c) }})
	if serve.Temporal != nil || worker.Temporal != nil || serve.Sandbox != nil || worker.Sandbox != nil {
		t.Fatal("an instance started its own Temporal server or sandbox; the split must use the external ones")
	}
	if worker.HTTPAddr != "" {
		t.Fatalf("the worker serves the HTTP edge on %s", worker.HTTPAddr)
	}
	if serve.SecretsFile != "" || worker.SecretsFile != "" {
		t.Fatal("an instance generated dev secrets; production takes them as given")
	}
	// Prometheus may scrape serve only: it reports the DSR gauges too.
	if resp, err := http.Get("http://" + serve.HTTPAddr + "/metrics"); err != nil {
		t.Fatalf("serve's /metrics: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "webcaresync_dsr_overdue 0") {
			t.Errorf("serve's /metrics lacks webcaresync_dsr_overdue")
		}
	}

	ctx := context.Background()
	convs := samples.Conversations()
	first, second := convs[0].Payloads[0], convs[2].Payloads[0]
	if code, body, err := serve.hooks.Post(ctx, first.Channel, first.Body); err != nil || code != http.StatusOK {
		t.Fatalf("webhook to serve: %d %s %v", code, body, err)
	}
	waitForPosts(t, sb, first)

	worker.Close()
	if code, body, err := serve.hooks.Post(ctx, second.Channel, second.Body); err != nil || code != http.StatusOK {
		t.Fatalf("with the worker stopped, serve answered %d %s %v; want 200 (the inbox keeps the webhook)", code, body, err)
	}
	// Nothing else can deliver it: no worker runs.
	time.Sleep(time.Second)
	if missing := missingPosts(sb, second); len(missing) == 0 {
		t.Fatal("the message reached the CRM with no worker running")
	}

	worker = start(t, stackOptions{dataDir: cfg.DataDir, parts: &workerParts, cfg: func(c *config.Config) { *c = withStore(cfg, c) }})
	waitForPosts(t, sb, second)
	if got, want := len(sb.Records("SocialPost")), len(messageIDs(first))+len(messageIDs(second)); got != want {
		t.Errorf("%d posts in the CRM, want exactly %d", got, want)
	}
	for _, s := range []*stack{serve, worker} {
		if leaks := s.logs.Leaks(messageTexts(first, second)...); len(leaks) > 0 {
			t.Errorf("the logs hold message texts: %q", leaks)
		}
	}
}

// withStore is the shared production configuration with the store the
// test helpers chose (PostgreSQL schema or SQLite file in the data dir).
func withStore(shared config.Config, helper *config.Config) config.Config {
	shared.DatabaseURL = helper.DatabaseURL
	return shared
}

// productionConfig is what serve and worker would load in production: an
// external Temporal address, a Salesforce org by login URL and client
// credentials, and every secret given explicitly. It passes the production
// validation.
func productionConfig(t *testing.T, temporalAddr, loginURL string) config.Config {
	t.Helper()
	keys := t.TempDir()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Log.Format = "json"
	cfg.Temporal.Address = temporalAddr
	cfg.MetaAppSecret, cfg.MetaVerifyToken = "split-meta-app-secret", "split-meta-verify-token"
	cfg.XConsumerSecret, cfg.GenericSecret = "split-x-consumer-secret", "split-generic-secret"
	cfg.Secrets.MasterKeyFile = filepath.Join(keys, "master.key")
	cfg.Secrets.PepperFile = filepath.Join(keys, "pepper.key")
	if err := privacy.GenerateMasterKeyFile(cfg.Secrets.MasterKeyFile); err != nil {
		t.Fatal(err)
	}
	if err := privacy.GeneratePepperFile(cfg.Secrets.PepperFile); err != nil {
		t.Fatal(err)
	}
	cfg.MasterKeyFile, cfg.PepperFile = cfg.Secrets.MasterKeyFile, cfg.Secrets.PepperFile
	cfg.Salesforce.LoginURL = loginURL
	cfg.Salesforce.ClientID, cfg.Salesforce.ClientSecret = "split-connected-app", "split-connected-app-secret"
	if err := cfg.Validate(config.Production); err != nil {
		t.Fatalf("the test's configuration is not a valid production one: %v", err)
	}
	return cfg
}

// externalSandbox runs a Salesforce sandbox on its own loopback listener,
// with the connected app productionConfig names, and returns its login URL.
func externalSandbox(t *testing.T) (*sfsandbox.Sandbox, string) {
	t.Helper()
	opts := sfsandbox.Options{ClientID: "split-connected-app", ClientSecret: "split-connected-app-secret"}
	for _, cf := range mappings.Default().CustomFields() {
		opts.CustomFields = append(opts.CustomFields, sfsandbox.CustomField{
			Object: cf.Object, Name: cf.Name, Type: cf.Type, Length: cf.Length, ExternalID: cf.ExternalID, Unique: cf.Unique,
		})
	}
	sb, err := sfsandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("sandbox server: %v", err)
		}
		_ = sb.Close()
	})
	return sb, "http://" + ln.Addr().String()
}

// messageIDs are the platform IDs of the messages in a payload.
func messageIDs(p samples.Payload) []string {
	var ids []string
	for _, e := range parsePayload(p) {
		if e.Kind == schemas.KindMessage {
			ids = append(ids, e.PlatformMessageID)
		}
	}
	return ids
}

func messageTexts(ps ...samples.Payload) []string {
	var out []string
	for _, p := range ps {
		for _, e := range parsePayload(p) {
			if e.Kind == schemas.KindMessage {
				out = append(out, e.Text)
			}
		}
	}
	return out
}

// missingPosts lists the payload's messages that have no SocialPost.
func missingPosts(sb *sfsandbox.Sandbox, p samples.Payload) []string {
	have := map[any]bool{}
	for _, r := range sb.Records("SocialPost") {
		have[r["ExternalPostId"]] = true
	}
	var missing []string
	for _, id := range messageIDs(p) {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing
}

func waitForPosts(t *testing.T, sb *sfsandbox.Sandbox, p samples.Payload) {
	t.Helper()
	if len(messageIDs(p)) == 0 {
		t.Fatal("the payload holds no message")
	}
	eventually(t, 90*time.Second, "the payload's SocialPosts in the CRM", func() bool { return len(missingPosts(sb, p)) == 0 })
}
