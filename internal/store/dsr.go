package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// AddSuppressed adds hashes to the suppression list.
func (s *sqlStore) AddSuppressed(ctx context.Context, hashes []string, dsrID string) error {
	hashes = uniqueStrings(hashes)
	if len(hashes) == 0 {
		return nil
	}
	now := s.now().UnixMicro()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, ch := range chunks(len(hashes), maxInList/3) {
			part := hashes[ch[0]:ch[1]]
			args := make([]any, 0, 3*len(part))
			for _, h := range part {
				args = append(args, h, dsrID, now)
			}
			values := placeholderRows(len(part), 3)
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO suppression (hash, dsr_id, created_at) VALUES `+values+
				` ON CONFLICT (hash) DO NOTHING`), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add suppressed: %w", err)
	}
	return nil
}

// AnySuppressed reports whether any hash is on the suppression list.
func (s *sqlStore) AnySuppressed(ctx context.Context, hashes []string) (bool, error) {
	hashes = uniqueStrings(hashes)
	for _, ch := range chunks(len(hashes), maxInList) {
		part := hashes[ch[0]:ch[1]]
		var n int
		err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM suppression WHERE hash IN (`+placeholders(len(part))+`)`),
			stringArgs(part)...).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("store: any suppressed: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

const dsrCols = `id, type, status, subject_hash, received_at, deadline, extended, extension_reason, verified_by,
	verification_method, approved_by, approved_at, created_at, updated_at, report_json`

func scanDSR(sc interface{ Scan(...any) error }) (DSR, error) {
	var (
		d                                    DSR
		received, deadline, created, updated int64
		approved                             sql.NullInt64
	)
	if err := sc.Scan(&d.ID, &d.Type, &d.Status, &d.SubjectHash, &received, &deadline, &d.Extended, &d.ExtensionReason,
		&d.VerifiedBy, &d.VerificationMethod, &d.ApprovedBy, &approved, &created, &updated, &d.ReportJSON); err != nil {
		return DSR{}, err
	}
	d.ReceivedAt, d.Deadline, d.CreatedAt, d.UpdatedAt = fromTS(received), fromTS(deadline), fromTS(created), fromTS(updated)
	d.ApprovedAt = fromTSPtr(approved)
	return d, nil
}

// CreateDSR stores a new DSR.
func (s *sqlStore) CreateDSR(ctx context.Context, d DSR) (DSR, error) {
	if d.ID == "" {
		d.ID = uuid.NewString()
	}
	if d.Type != DSRAccess && d.Type != DSRErasure {
		return DSR{}, errors.New("store: create DSR: type must be access or erasure")
	}
	d.CreatedAt = s.orNow(d.CreatedAt)
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	res, err := s.w.ExecContext(ctx, s.q(`INSERT INTO dsrs (`+dsrCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`),
		d.ID, d.Type, d.Status, d.SubjectHash, ts(d.ReceivedAt), ts(d.Deadline), d.Extended, d.ExtensionReason,
		d.VerifiedBy, d.VerificationMethod, d.ApprovedBy, tsPtr(d.ApprovedAt), ts(d.CreatedAt), ts(d.UpdatedAt), blob(d.ReportJSON))
	if err != nil {
		return DSR{}, fmt.Errorf("store: create DSR: %w", err)
	}
	if n, err := rowsAffected(res); err != nil || n == 0 {
		if err != nil {
			return DSR{}, fmt.Errorf("store: create DSR: %w", err)
		}
		return DSR{}, fmt.Errorf("store: create DSR: ID exists: %w", ErrConflict)
	}
	return s.getDSR(ctx, s.w, d.ID)
}

// GetDSR returns one DSR.
func (s *sqlStore) GetDSR(ctx context.Context, id string) (DSR, error) {
	return s.getDSR(ctx, s.r, id)
}

func (s *sqlStore) getDSR(ctx context.Context, db querier, id string) (DSR, error) {
	rows, err := db.QueryContext(ctx, s.q(`SELECT `+dsrCols+` FROM dsrs WHERE id = ?`), id)
	if err != nil {
		return DSR{}, fmt.Errorf("store: get DSR: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return DSR{}, fmt.Errorf("store: get DSR: %w", err)
		}
		return DSR{}, ErrNotFound
	}
	d, err := scanDSR(rows)
	if err != nil {
		return DSR{}, fmt.Errorf("store: get DSR: %w", err)
	}
	return d, nil
}

// ListDSRs lists DSRs matching the filter.
func (s *sqlStore) ListDSRs(ctx context.Context, f DSRFilter) ([]DSR, error) {
	query := `SELECT ` + dsrCols + ` FROM dsrs WHERE 1 = 1`
	var args []any
	if f.Status != "" {
		query += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.Type != "" {
		query += ` AND type = ?`
		args = append(args, f.Type)
	}
	if f.SubjectHash != "" {
		query += ` AND subject_hash = ?`
		args = append(args, f.SubjectHash)
	}
	query += ` ORDER BY received_at, id`
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	out, err := queryAll(ctx, s.r, s.q(query), args, scanDSR)
	if err != nil {
		return nil, fmt.Errorf("store: list DSRs: %w", err)
	}
	return out, nil
}

// UpdateDSR writes a DSR, optimistically when d.UpdatedAt is set.
func (s *sqlStore) UpdateDSR(ctx context.Context, d DSR) (DSR, error) {
	var out DSR
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.getDSR(ctx, tx, d.ID)
		if err != nil {
			return err
		}
		if !d.UpdatedAt.IsZero() && ts(d.UpdatedAt) != ts(cur.UpdatedAt) {
			return ErrConflict
		}
		// UpdatedAt doubles as the version, so it must always move forward.
		updated := s.now()
		if !updated.After(cur.UpdatedAt) {
			updated = cur.UpdatedAt.Add(time.Microsecond)
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE dsrs SET type = ?, status = ?, subject_hash = ?, received_at = ?, deadline = ?,
			extended = ?, extension_reason = ?, verified_by = ?, verification_method = ?, approved_by = ?, approved_at = ?,
			updated_at = ?, report_json = ?
			WHERE id = ? AND updated_at = ?`),
			d.Type, d.Status, d.SubjectHash, ts(d.ReceivedAt), ts(d.Deadline), d.Extended, d.ExtensionReason,
			d.VerifiedBy, d.VerificationMethod, d.ApprovedBy, tsPtr(d.ApprovedAt), ts(updated), blob(d.ReportJSON),
			d.ID, ts(cur.UpdatedAt))
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return ErrConflict
		}
		out, err = s.getDSR(ctx, tx, d.ID)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return DSR{}, ErrNotFound
	case errors.Is(err, ErrConflict):
		return DSR{}, fmt.Errorf("store: update DSR: changed since it was read; read it again: %w", ErrConflict)
	case err != nil:
		return DSR{}, fmt.Errorf("store: update DSR: %w", err)
	}
	return out, nil
}

const ledgerCols = `seq, entry_id, dsr_id, system, action, count, detail, policy, at`

func scanLedger(sc interface{ Scan(...any) error }) (LedgerEntry, error) {
	var (
		e  LedgerEntry
		id sql.NullString
		at int64
	)
	if err := sc.Scan(&e.Seq, &id, &e.DSRID, &e.System, &e.Action, &e.Count, &e.Detail, &e.Policy, &at); err != nil {
		return LedgerEntry{}, err
	}
	e.ID, e.At = id.String, fromTS(at)
	return e, nil
}

// AppendLedger appends a ledger entry, once per non-empty ID.
func (s *sqlStore) AppendLedger(ctx context.Context, e LedgerEntry) error {
	if e.DSRID == "" || e.System == "" || e.Action == "" {
		return errors.New("store: append ledger: DSR ID, system and action are required")
	}
	var id any
	if e.ID != "" {
		id = e.ID
	}
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO dsr_ledger (entry_id, dsr_id, system, action, count, detail, policy, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entry_id) DO NOTHING`),
		id, e.DSRID, e.System, e.Action, e.Count, e.Detail, e.Policy, ts(s.orNow(e.At))); err != nil {
		return fmt.Errorf("store: append ledger: %w", err)
	}
	return nil
}

// LedgerByDSR lists a DSR's ledger in append order.
func (s *sqlStore) LedgerByDSR(ctx context.Context, dsrID string) ([]LedgerEntry, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+ledgerCols+` FROM dsr_ledger WHERE dsr_id = ? ORDER BY seq`), []any{dsrID}, scanLedger)
	if err != nil {
		return nil, fmt.Errorf("store: ledger by DSR: %w", err)
	}
	return out, nil
}

// AppendAudit appends an audit entry.
func (s *sqlStore) AppendAudit(ctx context.Context, e AuditEntry) error {
	if e.Action == "" {
		return errors.New("store: append audit: action is required")
	}
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO audit (at, actor, action, target, outcome, remote_addr) VALUES (?, ?, ?, ?, ?, ?)`),
		ts(s.orNow(e.At)), e.Actor, e.Action, e.Target, e.Outcome, e.RemoteAddr); err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

// ListAudit lists audit entries at or after since.
func (s *sqlStore) ListAudit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error) {
	query := `SELECT seq, at, actor, action, target, outcome, remote_addr FROM audit WHERE at >= ? ORDER BY seq`
	args := []any{ts(since)}
	if since.IsZero() {
		args = []any{int64(-1 << 62)}
	}
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	out, err := queryAll(ctx, s.r, s.q(query), args, func(sc interface{ Scan(...any) error }) (AuditEntry, error) {
		var (
			e  AuditEntry
			at int64
		)
		if err := sc.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.RemoteAddr); err != nil {
			return AuditEntry{}, err
		}
		e.At = fromTS(at)
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return out, nil
}
