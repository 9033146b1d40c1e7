package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the name of the SQLite database inside the data dir.
const FileName = "webcaresync.db"

// Backend names returned by Store.Backend.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("store: closed")

// Options tune a store. The zero value gives the defaults.
type Options struct {
	// InboxLease is how long a claimed inbox item stays invisible to other
	// claims before it is offered again. Default: 30 seconds.
	InboxLease time.Duration
	// GroupCommitWindow is how long the inbox committer waits for more
	// callers after the first one of a batch. Zero (the default) commits as
	// soon as the previous commit is done, batching every caller that
	// arrived in the meantime, which adds no latency to a lone caller.
	GroupCommitWindow time.Duration
	// GroupCommitMaxItems caps the items of one group commit. Default: 500.
	GroupCommitMaxItems int
	// NoGroupCommit makes EnqueueInbox commit each call in its own
	// transaction. It exists as the naive baseline for benchmarks.
	NoGroupCommit bool
	// SQLiteReaders is the size of the SQLite reader pool. Default: 4.
	SQLiteReaders int
	// PostgresMaxConns caps the PostgreSQL pool. Default: 16.
	PostgresMaxConns int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// BeforeInboxWrite, when set, runs inside every inbox commit after the
	// dedupe claims and before the inbox write; an error aborts the
	// commit. Tests inject crashes with it. Default: none.
	BeforeInboxWrite func(ctx context.Context) error
}

func (o Options) withDefaults() Options {
	if o.InboxLease <= 0 {
		o.InboxLease = 30 * time.Second
	}
	if o.GroupCommitMaxItems <= 0 {
		o.GroupCommitMaxItems = 500
	}
	if o.SQLiteReaders <= 0 {
		o.SQLiteReaders = 4
	}
	if o.PostgresMaxConns <= 0 {
		o.PostgresMaxConns = 16
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Open opens the store and runs its migrations. An empty dsn opens the
// SQLite file dataDir/webcaresync.db, creating the directory; a dsn starting
// with postgres:// or postgresql:// opens PostgreSQL. A nil logger logs
// nothing.
func Open(ctx context.Context, dsn, dataDir string, log *zap.Logger) (Store, error) {
	return OpenWithOptions(ctx, dsn, dataDir, log, Options{})
}

// OpenWithOptions is Open with tuning options.
func OpenWithOptions(ctx context.Context, dsn, dataDir string, log *zap.Logger, opts Options) (Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	opts = opts.withDefaults()
	var (
		s   *sqlStore
		err error
	)
	switch {
	case dsn == "":
		s, err = openSQLite(ctx, dataDir, opts)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(ctx, dsn, opts)
	default:
		return nil, errors.New("store: unsupported database URL; leave it empty for SQLite or use postgres://")
	}
	if err != nil {
		return nil, err
	}
	s.log = log
	if err := s.migrate(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.startCommitter()
	return s, nil
}

func openSQLite(ctx context.Context, dataDir string, opts Options) (*sqlStore, error) {
	if dataDir == "" {
		return nil, errors.New("store: empty data dir; set --data-dir or WEBCARESYNC_DATA_DIR")
	}
	if strings.ContainsRune(dataDir, '?') {
		return nil, errors.New("store: data dir path must not contain '?'; choose another --data-dir")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	path := filepath.Join(dataDir, FileName)
	// secure_delete zeroes freed space, so erased rows leave no bytes behind
	// in the database file (see shred for the WAL).
	// One writer connection serialises writes inside this process;
	// BEGIN IMMEDIATE plus busy_timeout serialise them against other
	// processes (an import next to a running server) without deadlocks.
	writerDSN := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=secure_delete(ON)&_txlock=immediate"
	w, err := sql.Open("sqlite", writerDSN)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite database in %s: %w", dataDir, err)
	}
	readerDSN := path + "?_pragma=busy_timeout(10000)&_pragma=query_only(1)"
	r, err := sql.Open("sqlite", readerDSN)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite readers: %w", err)
	}
	r.SetMaxOpenConns(opts.SQLiteReaders)
	r.SetMaxIdleConns(opts.SQLiteReaders)
	return newSQLStore(BackendSQLite, w, r, opts), nil
}

func openPostgres(ctx context.Context, dsn string, opts Options) (*sqlStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		// The error may echo the DSN, which can hold a password.
		return nil, errors.New("store: invalid PostgreSQL URL; check WEBCARESYNC_DATABASE_URL")
	}
	db.SetMaxOpenConns(opts.PostgresMaxConns)
	db.SetMaxIdleConns(opts.PostgresMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL (check WEBCARESYNC_DATABASE_URL and that the server runs): %w", redactDSNError(err, dsn))
	}
	return newSQLStore(BackendPostgres, db, db, opts), nil
}

// redactDSNError keeps a driver error but drops it when it quotes the DSN.
func redactDSNError(err error, dsn string) error {
	if strings.Contains(err.Error(), dsn) {
		return errors.New("connection failed")
	}
	return err
}

// sqlStore implements Store on database/sql for both backends. On SQLite
// w is a single-connection writer and r a read-only pool; on PostgreSQL
// both are the same pool.
type sqlStore struct {
	backend string
	w       *sql.DB
	r       *sql.DB
	log     *zap.Logger
	opts    Options

	enqueue   chan *enqueueReq
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func newSQLStore(backend string, w, r *sql.DB, opts Options) *sqlStore {
	return &sqlStore{
		backend: backend,
		w:       w,
		r:       r,
		opts:    opts,
		enqueue: make(chan *enqueueReq),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Backend names the backend.
func (s *sqlStore) Backend() string { return s.backend }

// Ping checks that the database answers.
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if s.r != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping readers: %w", err)
		}
	}
	return nil
}

// Close stops the inbox committer and closes the database.
func (s *sqlStore) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *sqlStore) closeDBs() error {
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// now returns the store clock's time in UTC.
func (s *sqlStore) now() time.Time { return s.opts.Now().UTC() }

// q rewrites ? placeholders into PostgreSQL's $n. The store's queries have
// no ? inside literals.
func (s *sqlStore) q(query string) string {
	if s.backend != BackendPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		fmt.Fprintf(&b, "$%d", n)
	}
	return b.String()
}

// inTx runs fn in a write transaction and commits it when fn succeeds.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// maxInList caps the placeholders of one IN list or multi-row insert chunk.
const maxInList = 500

// chunks splits n items into ranges of at most size.
func chunks(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		out = append(out, [2]int{lo, hi})
	}
	return out
}

// placeholders returns "?, ?, ?" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// stringArgs converts strings into query arguments.
func stringArgs(v []string) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// uniqueStrings returns v without duplicates and empty strings, sorted.
func uniqueStrings(v []string) []string {
	seen := make(map[string]struct{}, len(v))
	out := make([]string, 0, len(v))
	for _, x := range v {
		if x == "" {
			continue
		}
		if _, ok := seen[x]; ok {
			continue
		}
		seen[x] = struct{}{}
		out = append(out, x)
	}
	slices.Sort(out)
	return out
}

// Times are stored as unix microseconds; 0 stands for the zero time.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromTS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromTSPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMicro(v.Int64).UTC()
	return &t
}

// orNow returns t, or now when t is zero, in UTC and cut to microseconds.
func (s *sqlStore) orNow(t time.Time) time.Time {
	if t.IsZero() {
		t = s.now()
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// blob binds a byte slice, keeping nil as NULL.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// rowsAffected reads a result's row count.
func rowsAffected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	return int(n), err
}

var _ Store = (*sqlStore)(nil)

// placeholderRows returns n rows of cols marks: "(?, ?), (?, ?)".
func placeholderRows(n, cols int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}
