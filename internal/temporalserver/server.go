// Package temporalserver runs an embedded, single-node Temporal server for
// webcaresync's dev and demo modes and for integration tests.
//
// The server persists in SQLite (WAL journal, synchronous=NORMAL) under a
// data directory, or in memory when no directory is given. It creates the
// namespace and registers search attributes on start, and can serve the
// Temporal Web UI next to the frontend.
//
// This is the only package in the module that imports go.temporal.io/server
// and the UI server. Everything else talks to Temporal through the SDK client
// and FrontendHostPort.
package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	sdkclient "go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
)

// Options configures an embedded Temporal server. The zero value starts an
// in-memory server on a free loopback port with the "default" namespace and no
// Web UI.
type Options struct {
	// DataDir is the directory that holds the SQLite database
	// (<DataDir>/temporal.db and its -wal and -shm files). It is created with
	// mode 0700 if missing. Default: "" (in-memory SQLite; nothing survives
	// Stop).
	DataDir string

	// IP is the address that the frontend, the internal services and the Web
	// UI bind to. Default: 127.0.0.1.
	IP string

	// FrontendPort is the frontend gRPC port that SDK clients dial.
	// Default: 0 (pick a free port; read it back with FrontendHostPort).
	FrontendPort int

	// UIPort is the port of the Temporal Web UI. Default: 0 (no Web UI).
	UIPort int

	// UICodecEndpoint is the URL of a remote codec server that the Web UI
	// calls to decode payloads. The UI sends the browser's credentials
	// (cookies) with those calls, so the codec server must answer CORS
	// requests from the UI's origin with credentials allowed.
	// Default: "" (no codec).
	UICodecEndpoint string

	// Namespace is created on first start; later starts leave it as it is.
	// Default: "default".
	Namespace string

	// SearchAttributes are custom search attributes registered in Namespace
	// on every start. Attributes that already exist are left alone, so this
	// is safe to repeat. Default: none.
	SearchAttributes map[string]enumspb.IndexedValueType

	// Logger receives the server's own logs at warn level and above.
	// Default: nil (discard).
	Logger *zap.Logger

	// DynamicConfig overrides Temporal dynamic configuration keys, for example
	// "limit.maxIDLength": 255. Values here win over this package's
	// single-node defaults (see defaultDynamicConfig). Default: none.
	DynamicConfig map[string]any

	// NumHistoryShards is the number of history shards. It is fixed when the
	// database is created; for an existing DataDir the stored count wins and
	// this value is ignored. One shard measured as fast as four for
	// SignalWithStart on SQLite (see BenchmarkSignalWithStart) and uses less
	// memory. Default: 1.
	NumHistoryShards int
}

// Server is a running embedded Temporal server. It is safe to call its
// methods from several goroutines.
type Server struct {
	opts         Options
	frontendHost string
	uiAddress    string

	server   temporal.Server
	stopping *atomic.Bool // quiets the server's warnings during Stop
	ui       *uiserver.Server
	uiDone   chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// startAttempts is how often Start retries when a port that it picked itself
// was taken by another process between picking and binding.
const startAttempts = 3

// readyTimeout bounds how long Start waits for the frontend, the namespace and
// the search attributes once the services are running.
const readyTimeout = 60 * time.Second

// Start starts an embedded Temporal server and returns once the frontend
// accepts calls, the namespace exists and the search attributes are
// registered. ctx bounds the whole start-up; cancelling it later has no effect
// on the running server. Call Stop to shut the server down.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range startAttempts {
		s, err := start(ctx, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		// Only a port race that we caused by picking ports is worth another
		// attempt; everything else fails the same way again.
		var race portRaceError
		if ctx.Err() != nil || !errors.As(err, &race) {
			break
		}
	}
	return nil, lastErr
}

// portRaceError marks a start-up failure that may be caused by a free port
// that this package picked being taken by someone else before the server
// could bind it.
type portRaceError struct{ err error }

func (e portRaceError) Error() string { return e.err.Error() }
func (e portRaceError) Unwrap() error { return e.err }

func start(ctx context.Context, opts Options) (*Server, error) {
	if opts.FrontendPort != 0 {
		// The server exits the process when it cannot bind, so check first
		// and fail with an error that says what to do.
		if err := checkPortFree(opts.IP, opts.FrontendPort); err != nil {
			return nil, fmt.Errorf("temporal frontend port %d is not free: stop what uses it or choose another port: %w", opts.FrontendPort, err)
		}
	}
	if opts.UIPort != 0 {
		if err := checkPortFree(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal web UI port %d is not free: stop what uses it or choose another port: %w", opts.UIPort, err)
		}
	}
	sqlCfg, err := prepareStore(opts)
	if err != nil {
		return nil, err
	}
	ports, err := pickPorts(opts)
	if err != nil {
		return nil, err
	}
	stopping := &atomic.Bool{}
	srv, err := newTemporalServer(opts, sqlCfg, ports, stopping)
	if err != nil {
		return nil, portRaceError{fmt.Errorf("configure embedded temporal server: %w", err)}
	}
	if err := startTemporalServer(srv); err != nil {
		stopping.Store(true)
		stopTemporalServer(srv)
		return nil, portRaceError{fmt.Errorf("start embedded temporal server: %w", err)}
	}

	s := &Server{
		opts:         opts,
		frontendHost: hostPort(opts.IP, ports.frontend),
		server:       srv,
		stopping:     stopping,
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := s.waitReady(readyCtx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if opts.UIPort > 0 {
		if err := s.startUI(readyCtx); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// startTemporalServer starts srv, turning the server's fatal errors into an
// error.
func startTemporalServer(srv temporal.Server) (err error) {
	defer recoverFatal(&err)
	return srv.Start()
}

// stopTemporalServer stops a server that failed to start; a half-started
// server may fail to stop, which is ignored.
func stopTemporalServer(srv temporal.Server) {
	defer func() { _ = recover() }()
	_ = srv.Stop()
}

// checkPortFree reports an error when ip:port cannot be bound.
func checkPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", hostPort(ip, port))
	if err != nil {
		return err
	}
	return l.Close()
}

// FrontendHostPort returns the frontend's gRPC address as host:port, ready
// for client.Options.HostPort.
func (s *Server) FrontendHostPort() string { return s.frontendHost }

// UIAddress returns the Web UI's base URL, such as "http://127.0.0.1:8233",
// or "" when the server runs without a Web UI.
func (s *Server) UIAddress() string { return s.uiAddress }

// Namespace returns the namespace that Start created or found.
func (s *Server) Namespace() string { return s.opts.Namespace }

// Stop shuts down the Web UI and all Temporal services. It is safe to call
// more than once; later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		if err := s.server.Stop(); err != nil {
			s.stopErr = fmt.Errorf("stop embedded temporal server: %w", err)
		}
	})
	return s.stopErr
}

// waitReady waits until the frontend answers, the namespace is loaded and
// every requested search attribute is registered.
func (s *Server) waitReady(ctx context.Context) error {
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	err = retry(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.opts.Namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("wait for namespace on embedded temporal server: %w", err)
	}
	if len(s.opts.SearchAttributes) == 0 {
		return nil
	}
	return s.registerSearchAttributes(ctx, c)
}

// dial connects an SDK client to the frontend, retrying until the frontend
// accepts calls or ctx ends.
func (s *Server) dial(ctx context.Context) (sdkclient.Client, error) {
	var c sdkclient.Client
	err := retry(ctx, func() error {
		var err error
		c, err = sdkclient.DialContext(ctx, sdkclient.Options{
			HostPort:  s.frontendHost,
			Namespace: s.opts.Namespace,
			Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connect to embedded temporal frontend at %s: %w", s.frontendHost, err)
	}
	return c, nil
}

// registerSearchAttributes adds the search attributes that the namespace
// lacks and waits until the frontend reports all of them.
func (s *Server) registerSearchAttributes(ctx context.Context, c sdkclient.Client) error {
	op := c.OperatorService()
	for {
		resp, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.opts.Namespace})
		if err != nil {
			return fmt.Errorf("list search attributes on embedded temporal server: %w", err)
		}
		missing := map[string]enumspb.IndexedValueType{}
		for name, typ := range s.opts.SearchAttributes {
			have, ok := resp.GetCustomAttributes()[name]
			if !ok {
				missing[name] = typ
				continue
			}
			if have != typ {
				return fmt.Errorf("search attribute %q already exists with type %s, not %s: use a new attribute name", name, have, typ)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace:        s.opts.Namespace,
			SearchAttributes: missing,
		})
		var exists *serviceerror.AlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("add search attributes on embedded temporal server: %w", err)
		}
		// The namespace cache refreshes every few seconds; poll until the
		// new attributes show up.
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("wait for search attributes on embedded temporal server: %w", err)
		}
	}
}

// retry calls fn until it succeeds or ctx ends, returning fn's last error.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// hostPort joins an IP and a port, bracketing IPv6 addresses.
func hostPort(ip string, port int) string {
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// withDefaults validates o and fills in defaults.
func (o Options) withDefaults() (Options, error) {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if net.ParseIP(o.IP) == nil {
		return o, fmt.Errorf("temporal server IP %q is not an IP address: use e.g. 127.0.0.1", o.IP)
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.NumHistoryShards == 0 {
		o.NumHistoryShards = 1
	}
	if o.NumHistoryShards < 0 || o.NumHistoryShards > 1024 {
		return o, fmt.Errorf("temporal history shard count %d is out of range: use 1 to 1024", o.NumHistoryShards)
	}
	if err := checkPort("frontend", o.FrontendPort); err != nil {
		return o, err
	}
	if err := checkPort("web UI", o.UIPort); err != nil {
		return o, err
	}
	if o.UIPort > 0 && o.UIPort == o.FrontendPort {
		return o, fmt.Errorf("temporal web UI port %d equals the frontend port: choose two different ports", o.UIPort)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o, nil
}

func checkPort(what string, port int) error {
	if port < 0 || port > 65535 {
		return fmt.Errorf("temporal %s port %d is out of range: use 0-65535", what, port)
	}
	return nil
}
