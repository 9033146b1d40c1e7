package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// migrationFiles holds one directory of numbered SQL files per backend:
// migrations/<backend>/NNNN_name.sql. Both directories carry the same
// versions; only the dialect differs.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one versioned schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the backend's migrations in version order.
func loadMigrations(backend string) ([]migration, error) {
	dir := path.Join("migrations", backend)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read %s migrations: %w", backend, err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		if !ok {
			return nil, fmt.Errorf("store: migration %s: name must be NNNN_name.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %s: name must start with a positive version", name)
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("store: two %s migrations have version %d", backend, out[i].version)
		}
	}
	return out, nil
}

// migrate applies every migration that is not in schema_migrations yet, all
// in one transaction. On PostgreSQL a transaction-scoped advisory lock per
// schema makes concurrent starts safe; on SQLite BEGIN IMMEDIATE does.
func (s *sqlStore) migrate(ctx context.Context) error {
	migs, err := loadMigrations(s.backend)
	if err != nil {
		return err
	}
	var applied []int
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.backend == BackendPostgres {
			if _, err := tx.ExecContext(ctx,
				`SELECT pg_advisory_xact_lock(hashtext('webcaresync.store.migrate.' || current_schema()))`); err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version     BIGINT PRIMARY KEY,
			name        TEXT NOT NULL,
			applied_at  BIGINT NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		done := map[int]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		maxDone := 0
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			done[v] = true
			maxDone = max(maxDone, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if n := len(migs); n > 0 && maxDone > migs[n-1].version {
			return fmt.Errorf("database schema version %d is newer than this binary knows (%d); upgrade webcaresync", maxDone, migs[n-1].version)
		}
		for _, m := range migs {
			if done[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, s.now().UnixMicro()); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
			applied = append(applied, m.version)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: migrate %s schema: %w", s.backend, err)
	}
	if len(applied) > 0 {
		s.log.Info("store schema migrated", zap.String("backend", s.backend), zap.Ints("versions", applied))
	}
	return nil
}

// SchemaVersion returns the highest migration version known to this binary
// for the backend.
func SchemaVersion(backend string) (int, error) {
	migs, err := loadMigrations(backend)
	if err != nil {
		return 0, err
	}
	if len(migs) == 0 {
		return 0, nil
	}
	return migs[len(migs)-1].version, nil
}
