// Package storetest opens isolated stores for tests: SQLite in a temporary
// directory always, and PostgreSQL in a fresh schema when the environment
// variable WEBCARESYNC_TEST_POSTGRES holds a postgres:// URL. Everything a
// test opens is closed and dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/webcaresync/webcaresync/internal/store"
)

// EnvPostgres names the environment variable with the PostgreSQL URL that
// enables the PostgreSQL runs, e.g. postgres://root@127.0.0.1:5432/test.
const EnvPostgres = "WEBCARESYNC_TEST_POSTGRES"

// Backend is one isolated database. Opening it twice opens the same data,
// which is how tests check that data survives a reopen.
type Backend struct {
	// Name is store.BackendSQLite or store.BackendPostgres.
	Name string
	// DSN is the store DSN: empty for SQLite, a postgres:// URL whose
	// search_path selects the test's own schema for PostgreSQL.
	DSN string
	// DataDir is the data dir (used by SQLite).
	DataDir string
}

// Open opens the backend's store with the options and closes it when the
// test ends.
func (b Backend) Open(t testing.TB, opts store.Options) store.Store {
	t.Helper()
	s, err := store.OpenWithOptions(context.Background(), b.DSN, b.DataDir, nil, opts)
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// DB opens a raw database/sql handle on the backend's data, for tests that
// must look underneath the Store interface. It is closed when the test ends.
func (b Backend) DB(t testing.TB) *sql.DB {
	t.Helper()
	var (
		db  *sql.DB
		err error
	)
	if b.Name == store.BackendPostgres {
		db, err = sql.Open("pgx", b.DSN)
	} else {
		db, err = sql.Open("sqlite", filepath.Join(b.DataDir, store.FileName)+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatalf("open raw %s database: %v", b.Name, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// SQLite returns a SQLite backend in a fresh temporary directory.
func SQLite(t testing.TB) Backend {
	t.Helper()
	return Backend{Name: store.BackendSQLite, DataDir: t.TempDir()}
}

// Postgres returns a PostgreSQL backend in a fresh schema, dropped when the
// test ends. It reports false when WEBCARESYNC_TEST_POSTGRES is not set.
func Postgres(t testing.TB) (Backend, bool) {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		return Backend{}, false
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL", EnvPostgres)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatalf("random schema name: %v", err)
	}
	schema := "wcs_test_" + hex.EncodeToString(raw[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open PostgreSQL from %s: %v", EnvPostgres, err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create test schema (is PostgreSQL running at %s?): %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return Backend{Name: store.BackendPostgres, DSN: u.String(), DataDir: t.TempDir()}, true
}

// Backends returns SQLite and, when WEBCARESYNC_TEST_POSTGRES is set,
// PostgreSQL, each isolated.
func Backends(t testing.TB) []Backend {
	t.Helper()
	out := []Backend{SQLite(t)}
	if pg, ok := Postgres(t); ok {
		out = append(out, pg)
	}
	return out
}

// New opens a SQLite store in a temporary directory, closed when the test
// ends. It is the quick way for other packages to get a real store.
func New(t testing.TB) store.Store {
	t.Helper()
	return SQLite(t).Open(t, store.Options{})
}

// Run runs fn as a subtest per backend, each with its own fresh database:
// "sqlite" always, "postgres" when WEBCARESYNC_TEST_POSTGRES is set (and
// skipped otherwise).
func Run(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run(store.BackendSQLite, func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run(store.BackendPostgres, func(t *testing.T) {
		b, ok := Postgres(t)
		if !ok {
			t.Skip("set " + EnvPostgres + " to run against PostgreSQL")
		}
		fn(t, b)
	})
}
