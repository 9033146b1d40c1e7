package temporalserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DatabaseFile is the name of the SQLite database inside Options.DataDir.
const DatabaseFile = "temporal.db"

const (
	storeName   = "sqlite-default"
	clusterName = "active"
	// sqliteBusyTimeout is how long (ms) SQLite waits on a locked database
	// before it gives up with SQLITE_BUSY.
	sqliteBusyTimeout = "10000"
)

// ports holds the ports of one server instance.
type ports struct {
	frontend     int
	frontendHTTP int
	history      int
	matching     int
	worker       int
}

// pickPorts returns the frontend port from opts (or a free one) and free
// ports for the frontend's HTTP API and the internal services.
func pickPorts(opts Options) (ports, error) {
	var p ports
	p.frontend = opts.FrontendPort
	targets := []*int{&p.frontendHTTP, &p.history, &p.matching, &p.worker}
	if p.frontend == 0 {
		targets = append(targets, &p.frontend)
	}
	// Hold all listeners until every port is picked, so that no two picks
	// return the same port.
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for _, t := range targets {
		l, err := net.Listen("tcp", hostPort(opts.IP, 0))
		if err != nil {
			return p, fmt.Errorf("find a free port on %s for the embedded temporal server: %w", opts.IP, err)
		}
		listeners = append(listeners, l)
		*t = l.Addr().(*net.TCPAddr).Port
	}
	return p, nil
}

// prepareStore returns the SQLite configuration for opts. In file mode it
// creates the data directory and, on first start, the schema; in both modes
// it creates the namespace if it does not exist yet.
func prepareStore(opts Options) (*config.SQL, error) {
	var cfg *config.SQL
	if opts.DataDir == "" {
		cfg = memoryStoreConfig()
	} else {
		var err error
		cfg, err = fileStoreConfig(opts.DataDir)
		if err != nil {
			return nil, err
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("configure temporal namespace %q: %w", opts.Namespace, err)
	}
	// The namespace is seven days of history retention: enough to inspect
	// finished workflows in dev, short enough to keep the file small.
	ns.Detail.Config.Retention = durationpb.New(7 * 24 * time.Hour)
	if err := sqliteschema.CreateNamespaces(cfg, ns); err != nil {
		return nil, fmt.Errorf("create temporal namespace %q: %w", opts.Namespace, err)
	}
	return cfg, nil
}

// memoryStoreConfig returns a configuration for a fresh, uniquely named
// in-memory database. The SQLite plugin creates the schema itself.
func memoryStoreConfig() *config.SQL {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: "webcaresync-" + hex.EncodeToString(b[:]),
		ConnectAttributes: map[string]string{
			"mode":         "memory",
			"cache":        "shared",
			"busy_timeout": sqliteBusyTimeout,
		},
	}
}

// fileStoreConfig returns the configuration for <dir>/temporal.db, creating
// the directory and the schema when the database does not exist yet.
//
// The schema is written to a temporary file that is renamed into place, so
// that a crash during the first start never leaves a half-created database
// behind.
func fileStoreConfig(dir string) (*config.SQL, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve temporal data dir: %w", err)
	}
	if strings.ContainsAny(abs, "?#%") {
		return nil, fmt.Errorf("temporal data dir %q contains '?', '#' or '%%': choose a plain directory path", dir)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create temporal data dir: %w", err)
	}
	path := filepath.Join(abs, DatabaseFile)
	cfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: path,
		// Keys other than SQLite URI parameters become PRAGMAs on every
		// connection. WAL with synchronous=NORMAL survives process crashes
		// (SIGKILL) without an fsync per commit; only an OS crash or power
		// loss can lose the last few commits. secure_delete=fast zeroes
		// deleted rows inside the pages a delete writes anyway (no extra
		// I/O), so an erased subject's ciphertexts and workflow ids do not
		// linger in free space; payloads are encrypted regardless.
		ConnectAttributes: map[string]string{
			"mode":          "rwc",
			"journal_mode":  "wal",
			"synchronous":   "normal",
			"busy_timeout":  sqliteBusyTimeout,
			"secure_delete": "fast",
		},
		// One connection: SQLite has a single writer anyway, and Temporal's
		// read-then-write transactions would otherwise race for the write
		// lock and fail with SQLITE_BUSY.
		MaxConns:     1,
		MaxIdleConns: 1,
	}
	_, err = os.Stat(path)
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("check temporal database: %w", err)
	}
	if err := createSchema(path); err != nil {
		return nil, err
	}
	return cfg, nil
}

// createSchema creates a new database with Temporal's schema at path.
func createSchema(path string) error {
	tmp := path + ".init-" + strconv.Itoa(os.Getpid())
	_ = os.Remove(tmp)
	// Nobody else sees the temporary file, so it is written without a
	// rollback journal on disk or an fsync per statement, then synced once
	// before it is renamed into place.
	tmpCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      tmp,
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "memory", "synchronous": "off"},
	}
	if err := sqliteschema.SetupSchema(tmpCfg); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("create temporal database schema: %w", err)
	}
	if err := syncPath(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write temporal database schema: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("move new temporal database into place: %w", err)
	}
	if err := syncPath(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write temporal data dir: %w", err)
	}
	return nil
}

// syncPath flushes a file or directory to stable storage.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	return f.Sync()
}

// defaultDynamicConfig holds dynamic configuration for a single-node server
// that one application drives hard (hundreds of signals per second).
func defaultDynamicConfig() map[string]any {
	return map[string]any{
		// Rate limits: one node serves everything, so the per-instance
		// limits are the cluster limits.
		"frontend.rps":                         10000,
		"frontend.namespaceRPS":                10000,
		"frontend.namespaceBurstRatio":         2.0,
		"frontend.namespaceRPS.visibility":     200,
		"frontend.persistenceMaxQPS":           20000,
		"history.rps":                          20000,
		"history.persistenceMaxQPS":            20000,
		"matching.rps":                         20000,
		"matching.persistenceMaxQPS":           20000,
		"worker.persistenceMaxQPS":             5000,
		"system.namespaceCacheRefreshInterval": time.Second,
		// A deleted execution is removed only once the queue checkpoint
		// that acknowledges its close task is taken: every 30 s by
		// default, so a GDPR erasure waited up to 30 s per conversation.
		// One checkpoint a second is one small write on a single node.
		"history.transferProcessorUpdateAckInterval":   time.Second,
		"history.visibilityProcessorUpdateAckInterval": time.Second,
		// Keep more workflows in the mutable state cache; the host is the
		// whole cluster.
		"history.hostLevelCacheMaxSize": 8192,
		// One matching node: extra task queue partitions only add
		// forwarding hops.
		"matching.numTaskqueueReadPartitions":  1,
		"matching.numTaskqueueWritePartitions": 1,
		// The server never stops the SDK workers of the parent-close-policy
		// processor and of the scanners, so every Stop would leak them
		// (about 100 goroutines per start/stop cycle). History applies
		// parent close policies itself below the threshold, which we raise;
		// the scanners only tidy up old task queues and orphaned history
		// branches, which a single-node dev database can do without.
		"system.enableParentClosePolicyWorker": false,
		"history.parentClosePolicyThreshold":   1000000,
		"worker.taskQueueScannerEnabled":       false,
		"worker.historyScannerEnabled":         false,
	}
}

// newTemporalServer builds, but does not start, the Temporal server.
func newTemporalServer(opts Options, sqlCfg *config.SQL, p ports, stopping *atomic.Bool) (_ temporal.Server, err error) {
	defer recoverFatal(&err)
	cfg := serverConfig(opts, sqlCfg, p)
	dc := dynamicconfig.StaticClient{}
	for k, v := range defaultDynamicConfig() {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	for k, v := range opts.DynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	host := func(port int) static.Hosts { return static.SingleLocalHost(hostPort(opts.IP, port)) }
	return temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: host(p.frontend),
			primitives.HistoryService:  host(p.history),
			primitives.MatchingService: host(p.matching),
			primitives.WorkerService:   host(p.worker),
		}),
		temporal.WithLogger(newServerLogger(opts.Logger, stopping)),
		temporal.WithDynamicConfigClient(dc),
	)
}

// serverConfig builds the static server configuration.
func serverConfig(opts Options, sqlCfg *config.SQL, p ports) *config.Config {
	frontend := hostPort(opts.IP, p.frontend)
	service := func(grpcPort, httpPort int) config.Service {
		var s config.Service
		s.RPC.GRPCPort = grpcPort
		s.RPC.HTTPPort = httpPort
		s.RPC.BindOnIP = opts.IP
		return s
	}
	cfg := &config.Config{}
	cfg.Global.Membership.MaxJoinDuration = 30 * time.Second
	cfg.Global.Membership.BroadcastAddress = opts.IP
	cfg.Persistence.DefaultStore = storeName
	cfg.Persistence.VisibilityStore = storeName
	cfg.Persistence.NumHistoryShards = int32(opts.NumHistoryShards)
	cfg.Persistence.DataStores = map[string]config.DataStore{storeName: {SQL: sqlCfg}}
	cfg.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            hostPort(opts.IP, p.frontendHTTP),
				// Used only when the database is new; afterwards the stored
				// cluster metadata wins.
				ClusterID: uuid.NewString(),
			},
		},
	}
	cfg.DCRedirectionPolicy.Policy = "noop"
	cfg.Services = map[string]config.Service{
		string(primitives.FrontendService): service(p.frontend, p.frontendHTTP),
		string(primitives.HistoryService):  service(p.history, 0),
		string(primitives.MatchingService): service(p.matching, 0),
		string(primitives.WorkerService):   service(p.worker, 0),
	}
	cfg.Archival.History.State = "disabled"
	cfg.Archival.Visibility.State = "disabled"
	cfg.NamespaceDefaults.Archival.History.State = "disabled"
	cfg.NamespaceDefaults.Archival.Visibility.State = "disabled"
	cfg.PublicClient.HostPort = frontend
	return cfg
}
