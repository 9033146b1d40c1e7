package privacyscan

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// PostgresTables returns one reader per table of the connection's current
// schema, holding each row as PostgreSQL's text form of the row (bytea
// columns appear as \x-prefixed hex, which the hex encoding of a needle
// matches). Use it for a store on PostgreSQL, whose files are not in the
// data dir. Readers are named "postgres:<table>".
func PostgresTables(ctx context.Context, db *sql.DB) ([]NamedReader, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return nil, fmt.Errorf("list the store's tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list the store's tables: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the store's tables: %w", err)
	}
	var out []NamedReader
	for _, t := range tables {
		var buf bytes.Buffer
		quoted := `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
		rs, err := db.QueryContext(ctx, `SELECT t::text FROM `+quoted+` t`)
		if err != nil {
			return nil, fmt.Errorf("read table %s: %w", t, err)
		}
		for rs.Next() {
			var row string
			if err := rs.Scan(&row); err != nil {
				rs.Close()
				return nil, fmt.Errorf("read table %s: %w", t, err)
			}
			buf.WriteString(row)
			buf.WriteByte('\n')
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("read table %s: %w", t, err)
		}
		out = append(out, NamedReader{Name: "postgres:" + t, R: &buf})
	}
	return out, nil
}
