package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

const parkedCols = `id, conversation_id, platform_message_hash, payload, key_id, error_code, reason, fields, parked_at`

func scanParked(sc interface{ Scan(...any) error }) (ParkedMessage, error) {
	var (
		m      ParkedMessage
		fields string
		at     int64
	)
	if err := sc.Scan(&m.ID, &m.ConversationID, &m.PlatformMessageHash, &m.Payload, &m.KeyID, &m.ErrorCode, &m.Reason,
		&fields, &at); err != nil {
		return ParkedMessage{}, err
	}
	if err := json.Unmarshal([]byte(fields), &m.Fields); err != nil {
		return ParkedMessage{}, fmt.Errorf("decode parked fields: %w", err)
	}
	m.ParkedAt = fromTS(at)
	return m, nil
}

// Park stores a parked message, replacing one with the same ID.
func (s *sqlStore) Park(ctx context.Context, m ParkedMessage) error {
	if m.ID == "" {
		return errors.New("store: park: empty message ID")
	}
	fields := m.Fields
	if fields == nil {
		fields = []string{}
	}
	fj, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("store: park: encode fields: %w", err)
	}
	_, err = s.w.ExecContext(ctx, s.q(`INSERT INTO parked (`+parkedCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET conversation_id = excluded.conversation_id,
			platform_message_hash = excluded.platform_message_hash, payload = excluded.payload,
			key_id = excluded.key_id, error_code = excluded.error_code, reason = excluded.reason,
			fields = excluded.fields, parked_at = excluded.parked_at`),
		m.ID, m.ConversationID, m.PlatformMessageHash, blob(m.Payload), m.KeyID, m.ErrorCode, m.Reason, string(fj),
		ts(s.orNow(m.ParkedAt)))
	if err != nil {
		return fmt.Errorf("store: park: %w", err)
	}
	return nil
}

// ListParked lists parked messages, oldest first.
func (s *sqlStore) ListParked(ctx context.Context, limit int) ([]ParkedMessage, error) {
	query, args := `SELECT `+parkedCols+` FROM parked ORDER BY parked_at, id`, []any(nil)
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	out, err := queryAll(ctx, s.r, s.q(query), args, scanParked)
	if err != nil {
		return nil, fmt.Errorf("store: list parked: %w", err)
	}
	return out, nil
}

// GetParked returns one parked message.
func (s *sqlStore) GetParked(ctx context.Context, id string) (ParkedMessage, error) {
	m, err := scanParked(s.r.QueryRowContext(ctx, s.q(`SELECT `+parkedCols+` FROM parked WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return ParkedMessage{}, ErrNotFound
	}
	if err != nil {
		return ParkedMessage{}, fmt.Errorf("store: get parked: %w", err)
	}
	return m, nil
}

// DeleteParked removes a parked message.
func (s *sqlStore) DeleteParked(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM parked WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("store: delete parked: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("store: delete parked: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// CountParked returns how many messages are parked.
func (s *sqlStore) CountParked(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM parked`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count parked: %w", err)
	}
	return n, nil
}

// GetCheckpoint returns a stored offset, or 0.
func (s *sqlStore) GetCheckpoint(ctx context.Context, name string) (int64, error) {
	var off int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT "offset" FROM checkpoints WHERE name = ?`), name).Scan(&off)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: get checkpoint: %w", err)
	}
	return off, nil
}

// SetCheckpoint stores an offset.
func (s *sqlStore) SetCheckpoint(ctx context.Context, name string, offset int64) error {
	if name == "" {
		return errors.New("store: set checkpoint: empty name")
	}
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO checkpoints (name, "offset", updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET "offset" = excluded."offset", updated_at = excluded.updated_at`),
		name, offset, s.now().UnixMicro()); err != nil {
		return fmt.Errorf("store: set checkpoint: %w", err)
	}
	return nil
}
