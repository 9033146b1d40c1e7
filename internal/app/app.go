// Package app assembles webcaresync's components into running processes:
// the embedded or external Temporal server, the store, the keyring, the CRM
// connector (a real org or the sandbox), the workers and the HTTP edge.
// The commands in internal/cli choose which parts run.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/activities/crm/salesforce"
	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/internal/channels/generic"
	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/edge"
	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/temporalserver"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/workflows"
)

// Parts selects what a process runs.
type Parts struct {
	// Embedded runs the embedded Temporal server (when no external address
	// is configured).
	Embedded bool
	// UI serves the Temporal Web UI with the embedded server.
	UI bool
	// EphemeralPorts picks free loopback ports for every listener (demo,
	// bench, tests) instead of the configured ones.
	EphemeralPorts bool
	// InMemoryTemporal keeps the embedded server's database in memory.
	InMemoryTemporal bool
	// Sandbox runs the Salesforce sandbox when no org is configured.
	Sandbox bool
	// SandboxOptions tune the sandbox (latency, budget, caps).
	SandboxOptions sfsandbox.Options
	// Worker runs the Temporal workers.
	Worker bool
	// HTTP runs the HTTP edge.
	HTTP bool
	// MetricsOnly serves /healthz and /metrics on MetricsAddr (worker).
	MetricsOnly bool
	// DevSecrets generates missing secrets into the data dir.
	DevSecrets bool
	// ConversationIdle overrides the conversation workflows' idle timeout.
	ConversationIdle time.Duration
	// ConversationFlushInterval sets the conversation workflows' shortest
	// time between two CRM batches under load (0: no wait).
	ConversationFlushInterval time.Duration
	// Inbox makes webhooks durable in the store's inbox (group commit)
	// and runs the relay that signals Temporal, one signal per
	// conversation per relay cycle.
	Inbox bool
	// RelayInterval overrides the relay's shortest cycle (ingest.Relay).
	RelayInterval time.Duration
}

// App is a running webcaresync process.
type App struct {
	Cfg      config.Config
	Log      *zap.Logger
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	Store    store.Store
	Keyring  *privacy.Keyring
	Hasher   *privacy.Hasher
	Temporal *temporalserver.Server
	Client   client.Client
	Sandbox  *sfsandbox.Sandbox
	// SandboxURL is the sandbox's base URL, when it runs.
	SandboxURL string
	Mapping    *mappings.Mapping
	CRM        crm.Connector
	Ingestor   *ingest.Ingestor
	Gate       *activities.BudgetGate
	Secrets    config.DevSecrets
	// SecretsFile is where dev secrets were written, when generated.
	SecretsFile string
	// HTTPAddr is the address the HTTP edge listens on, when it runs.
	HTTPAddr string
	Tokens   *edge.Tokens

	// Relay delivers the inbox to Temporal, when Parts.Inbox is set.
	Relay *ingest.Relay

	httpLn net.Listener

	masterKeys *privacy.MasterKeys
	closeOnce  sync.Once
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	workers    []worker.Worker
	closers    []func() error
	errc       chan error
}

// CRMTaskQueue is the task queue of CRM activities. Its rate limit caps
// the calls all workers together make to the CRM.
func (a *App) CRMTaskQueue() string { return a.Cfg.Temporal.TaskQueue + "-crm" }

// Start assembles and starts the parts. On error, everything started so
// far is stopped.
func Start(ctx context.Context, cfg config.Config, log *zap.Logger, parts Parts) (a *App, err error) {
	a = &App{Cfg: cfg, Log: log, Registry: prometheus.NewRegistry(), errc: make(chan error, 8)}
	defer func() {
		if err != nil {
			a.Close()
			a = nil
		}
	}()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Metrics = metrics.New(a.Registry)
	if parts.DevSecrets {
		a.Secrets, a.SecretsFile, err = config.EnsureDevSecrets(&a.Cfg)
		if err != nil {
			return a, err
		}
	}
	if err := os.MkdirAll(a.Cfg.DataDir, 0o700); err != nil {
		return a, fmt.Errorf("cannot create the data dir %s: %w", a.Cfg.DataDir, err)
	}
	if err := a.openCrypto(parts); err != nil {
		return a, err
	}
	st, err := store.Open(ctx, a.Cfg.DatabaseURL, a.Cfg.DataDir, log.Named("store"))
	if err != nil {
		return a, fmt.Errorf("cannot open the store: %w", err)
	}
	a.Store = st
	a.closers = append(a.closers, st.Close)
	// Every process serves the DSR gauges from the store, so an alert on
	// overdue requests works whether Prometheus scrapes serve or worker.
	a.Metrics.WatchDSRs(a.dsrCounts)
	a.Keyring = privacy.NewKeyring(keyStore{st}, a.masterKeys, log.Named("keyring"))

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	if parts.HTTP {
		// Listen before Temporal starts: the Web UI is configured with the
		// codec endpoint's address, which must be known (ephemeral ports)
		// and answer as soon as the UI does.
		if err := a.listenHTTP(parts); err != nil {
			return a, err
		}
	}
	if err := a.startTemporal(ctx, parts); err != nil {
		return a, err
	}
	if parts.Worker || parts.Sandbox || a.Cfg.Salesforce.Configured() {
		if err := a.startCRM(runCtx, parts); err != nil {
			return a, err
		}
	}
	a.Ingestor = &ingest.Ingestor{
		Client: a.Client, Store: a.Store, IDs: a.Hasher,
		TaskQueue: a.Cfg.Temporal.TaskQueue, CRMTaskQueue: a.CRMTaskQueue(),
		IdleTimeout: parts.ConversationIdle, BatchSize: a.Cfg.Sync.BatchSize,
		FlushInterval: parts.ConversationFlushInterval,
		Metrics:       a.Metrics, Log: log.Named("ingest"),
	}
	if parts.Inbox {
		a.Ingestor.Sealer = a.Keyring
		a.Ingestor.Temporal = &ingest.Health{}
		a.Relay = &ingest.Relay{Ingestor: a.Ingestor, Interval: parts.RelayInterval, Log: log.Named("relay")}
		a.wg.Add(2)
		go func() {
			defer a.wg.Done()
			_ = a.Relay.Run(runCtx)
		}()
		go func() {
			defer a.wg.Done()
			a.Ingestor.Temporal.Watch(runCtx, time.Second, func(ctx context.Context) error {
				_, err := a.Client.CheckHealth(ctx, &client.CheckHealthRequest{})
				return err
			})
		}()
	}
	if parts.Worker {
		if err := a.startWorkers(); err != nil {
			return a, err
		}
	}
	if parts.HTTP {
		if err := a.startHTTP(runCtx, parts); err != nil {
			return a, err
		}
	}
	if parts.MetricsOnly {
		if err := a.startMetrics(runCtx, parts); err != nil {
			return a, err
		}
	}
	return a, nil
}

func (a *App) openCrypto(parts Parts) error {
	var err error
	if parts.DevSecrets {
		a.masterKeys, err = privacy.LoadOrCreateMasterKeyFile(a.Cfg.Secrets.MasterKeyFile)
	} else {
		a.masterKeys, err = privacy.LoadMasterKeys(a.Cfg.Secrets.MasterKeyFile)
	}
	if err != nil {
		return fmt.Errorf("cannot load the master key: %w", err)
	}
	var pepper []byte
	if parts.DevSecrets {
		pepper, err = privacy.LoadOrCreatePepperFile(a.Cfg.Secrets.PepperFile)
	} else {
		pepper, err = privacy.LoadPepper(a.Cfg.Secrets.PepperFile)
	}
	if err != nil {
		return fmt.Errorf("cannot load the pepper: %w", err)
	}
	a.Hasher, err = privacy.NewHasher(pepper)
	return err
}

// searchAttributes are registered on the embedded server. Their values are
// fixed words, never data.
var searchAttributes = map[string]enumspb.IndexedValueType{
	ingest.SearchAttributeKind:     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	workflows.SearchAttributeFlags: enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}

func (a *App) startTemporal(ctx context.Context, parts Parts) error {
	address := a.Cfg.Temporal.Address
	if address == "" {
		if !parts.Embedded {
			return errors.New("no Temporal address: set WEBCARESYNC_TEMPORAL_ADDRESS to your cluster's frontend (host:port), or use `webcaresync dev` for the embedded server")
		}
		opts := temporalserver.Options{
			DataDir:          filepath.Join(a.Cfg.DataDir, "temporal"),
			FrontendPort:     a.Cfg.Temporal.Port,
			Namespace:        a.Cfg.Temporal.Namespace,
			SearchAttributes: searchAttributes,
			Logger:           a.Log.Named("temporal"),
		}
		if parts.InMemoryTemporal {
			opts.DataDir = ""
		}
		if parts.EphemeralPorts {
			opts.FrontendPort = 0
		}
		if parts.UI {
			opts.UIPort = a.Cfg.Temporal.UIPort
			if parts.EphemeralPorts {
				opts.UIPort = freePort()
			}
			// The UI appends /decode and cannot send a header, so the codec
			// token is a path element. It only decodes, and the UI listens on
			// loopback in dev.
			if a.httpLn != nil {
				opts.UICodecEndpoint = "http://" + browserHostPort(a.HTTPAddr) + "/codec/" + a.Secrets.CodecToken
			}
		}
		srv, err := temporalserver.Start(ctx, opts)
		if err != nil {
			return fmt.Errorf("cannot start the embedded Temporal server: %w", err)
		}
		a.Temporal = srv
		a.closers = append(a.closers, srv.Stop)
		address = srv.FrontendHostPort()
	}
	c, err := dialTemporal(ctx, a.Cfg, address, a.Keyring, a.Registry, a.Log)
	if err != nil {
		return err
	}
	a.Client = c
	a.closers = append(a.closers, func() error { c.Close(); return nil })
	return nil
}

func (a *App) startCRM(runCtx context.Context, parts Parts) error {
	m := mappings.Default()
	if a.Cfg.Mapping != "" {
		var err error
		if m, err = mappings.Load(a.Cfg.Mapping); err != nil {
			return fmt.Errorf("the mapping is invalid; run `webcaresync config check`:\n%w", err)
		}
	}
	a.Mapping = m
	sf := salesforce.Config{
		LoginURL:      a.Cfg.Salesforce.LoginURL,
		ClientID:      a.Cfg.Salesforce.ClientID,
		ClientSecret:  a.Cfg.Salesforce.ClientSecret,
		Username:      a.Cfg.Salesforce.Username,
		PrivateKeyPEM: a.Cfg.Salesforce.PrivateKeyPEM,
		APIVersion:    a.Cfg.Salesforce.APIVersion,
		HardDelete:    a.Cfg.Salesforce.HardDelete,
	}
	if a.Cfg.Salesforce.AutoAssign != nil {
		sf.AutoAssign = *a.Cfg.Salesforce.AutoAssign
	}
	if !a.Cfg.Salesforce.Configured() {
		if !parts.Sandbox {
			return errors.New("no Salesforce org configured: set WEBCARESYNC_SALESFORCE_LOGIN_URL, _CLIENT_ID and a private key or client secret")
		}
		if err := a.startSandbox(runCtx, parts); err != nil {
			return err
		}
		sf.LoginURL = a.SandboxURL
		sf.ClientID = a.Secrets.SandboxClientID
		sf.ClientSecret = a.Secrets.SandboxClientSecret
		sf.PrivateKeyPEM = nil
	}
	conn, err := salesforce.New(sf, m, a.Registry, a.Log.Named("salesforce"))
	if err != nil {
		return fmt.Errorf("cannot set up the Salesforce connector: %w", err)
	}
	a.CRM = conn
	a.Gate = activities.NewBudgetGate()
	a.Gate.OnChange = func(paused bool) {
		if paused {
			a.Metrics.SyncPaused.Set(1)
			a.Metrics.BudgetAlerts.Inc()
			a.Log.Error("the CRM's daily API budget is exhausted; syncing is paused and resumes by itself when the budget is back")
			return
		}
		a.Metrics.SyncPaused.Set(0)
		a.Log.Warn("the CRM accepts calls again; syncing resumed")
	}
	return nil
}

func (a *App) startSandbox(runCtx context.Context, parts Parts) error {
	opts := parts.SandboxOptions
	if opts.ClientID == "" {
		if a.Secrets.SandboxClientID == "" {
			a.Secrets.SandboxClientID = "sandbox-client"
			a.Secrets.SandboxClientSecret = "sandbox-secret"
		}
		opts.ClientID, opts.ClientSecret = a.Secrets.SandboxClientID, a.Secrets.SandboxClientSecret
	}
	if opts.DataDir == "" && !parts.InMemoryTemporal {
		opts.DataDir = filepath.Join(a.Cfg.DataDir, "sandbox")
	}
	for _, cf := range a.Mapping.CustomFields() {
		opts.CustomFields = append(opts.CustomFields, sfsandbox.CustomField{
			Object: cf.Object, Name: cf.Name, Type: cf.Type, Length: cf.Length, ExternalID: cf.ExternalID, Unique: cf.Unique,
		})
	}
	opts.Logger = a.Log.Named("sandbox")
	sb, err := sfsandbox.New(opts)
	if err != nil {
		return fmt.Errorf("cannot start the Salesforce sandbox: %w", err)
	}
	a.Sandbox = sb
	addr := a.Cfg.SandboxAddr
	if parts.EphemeralPorts {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen for the Salesforce sandbox on %s (set WEBCARESYNC_SANDBOX_ADDR): %w", addr, err)
	}
	a.SandboxURL = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	// The sandbox stops in Close's closers, after the workers, which may
	// still be calling it.
	go func() { _ = srv.Serve(ln) }()
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		return sb.Close()
	})
	return nil
}

// startWorkers starts the workflow worker and the CRM activity worker.
func (a *App) startWorkers() error {
	sync := &activities.Sync{CRM: a.CRM, Store: a.Store, Sealer: a.Keyring, Hasher: a.Hasher, Keys: a.Keyring, Gate: a.Gate, Metrics: a.Metrics, Log: a.Log.Named("sync")}
	identity := a.identityActivities()
	main := worker.New(a.Client, a.Cfg.Temporal.TaskQueue, worker.Options{
		// Eager activities skip a round trip through matching.
		DisableEagerActivities: false,
	})
	main.RegisterWorkflowWithOptions(workflows.Conversation, workflow.RegisterOptions{Name: "Conversation"})
	a.registerDSR(main)
	crmWorker := worker.New(a.Client, a.CRMTaskQueue(), worker.Options{
		// The rate limit is enforced by the Temporal server over every
		// worker polling this queue, so the CRM sees at most this many
		// calls a second in total.
		TaskQueueActivitiesPerSecond:       a.Cfg.Sync.CRMActivitiesPerSecond,
		MaxConcurrentActivityExecutionSize: 25,
	})
	crmWorker.RegisterActivity(sync)
	crmWorker.RegisterActivity(identity)
	// DSR activities run on the main queue: a request is rare and must not
	// wait behind the CRM rate limit of the conversation sync.
	a.registerDSRActivities(main)
	for _, w := range []worker.Worker{main, crmWorker} {
		if err := w.Start(); err != nil {
			return fmt.Errorf("cannot start a Temporal worker: %w", err)
		}
		a.workers = append(a.workers, w)
	}
	return nil
}

// Channels returns the webhook channels with the configured secrets.
func (a *App) Channels() []channels.Channel {
	return []channels.Channel{
		meta.New(a.Cfg.MetaAppSecret, a.Cfg.MetaVerifyToken),
		x.New(a.Cfg.XConsumerSecret),
		generic.New(a.Cfg.GenericSecret, time.Now),
	}
}

func (a *App) startHTTP(runCtx context.Context, parts Parts) error {
	a.Tokens = &edge.Tokens{}
	if a.Cfg.Secrets.APITokensFile != "" {
		t, err := edge.LoadTokens(a.Cfg.Secrets.APITokensFile)
		if err != nil {
			return err
		}
		a.Tokens = t
	}
	if a.Secrets.AdminToken != "" {
		a.Tokens.Add("admin", a.Secrets.AdminToken, edge.ScopeAdmin)
	}
	ln := a.httpLn
	if ln == nil {
		if err := a.listenHTTP(parts); err != nil {
			return err
		}
		ln = a.httpLn
	}
	srv := &edge.Server{
		Channels: a.Channels(),
		Ingest:   a.Ingestor,
		Tokens:   a.Tokens,
		DSR:      a.DSRService(),
		Reviews:  a.ReviewService(),
		Audit:    a.Store,
		Ready:    a.readyChecks(),
		Gatherer: a.Registry,
		Metrics:  a.Metrics,
		Extra:    map[string]http.Handler{"/codec/": http.StripPrefix("/codec", a.codecHandler())},
		Log:      a.Log.Named("http"),
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := edge.Serve(runCtx, ln, srv.Handler(), a.Log); err != nil {
			a.errc <- fmt.Errorf("the HTTP server stopped: %w", err)
		}
	}()
	return nil
}

// listenHTTP opens the HTTP edge's listener and sets HTTPAddr.
func (a *App) listenHTTP(parts Parts) error {
	addr := a.Cfg.HTTPAddr
	if parts.EphemeralPorts {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (set WEBCARESYNC_HTTP_ADDR): %w", addr, err)
	}
	a.httpLn = ln
	a.HTTPAddr = ln.Addr().String()
	a.closers = append(a.closers, func() error {
		// Serve closes the listener once it runs; this covers a start
		// that failed before it.
		_ = ln.Close()
		return nil
	})
	return nil
}

// browserHostPort turns a listen address into one a browser on the same
// machine can call: an unspecified host (0.0.0.0, ::) becomes 127.0.0.1.
func browserHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (a *App) readyChecks() []edge.Check {
	return []edge.Check{
		{Name: "temporal", Fn: func(ctx context.Context) error {
			_, err := a.Client.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
		{Name: "store", Fn: a.Store.Ping},
	}
}

// startMetrics serves /healthz, /readyz and /metrics for a worker process.
func (a *App) startMetrics(runCtx context.Context, parts Parts) error {
	addr := a.Cfg.MetricsAddr
	if parts.EphemeralPorts {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for metrics (set WEBCARESYNC_METRICS_ADDR): %w", addr, err)
	}
	srv := &edge.Server{Ready: a.readyChecks(), Gatherer: a.Registry, Metrics: a.Metrics, Log: a.Log}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = edge.Serve(runCtx, ln, srv.Handler(), a.Log)
	}()
	return nil
}

// Errors delivers fatal errors of background parts.
func (a *App) Errors() <-chan error { return a.errc }

// Close stops everything in reverse order: the HTTP edge first (it drains
// in-flight webhooks), then the workers (they finish running activities),
// then Temporal, the sandbox and the store.
func (a *App) Close() {
	a.closeOnce.Do(a.close)
}

func (a *App) close() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	for i := len(a.workers) - 1; i >= 0; i-- {
		a.workers[i].Stop()
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.Log.Warn("shutdown step failed", zap.Error(err))
		}
	}
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}
