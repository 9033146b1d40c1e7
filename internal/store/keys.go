package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

const dataKeyCols = `id, subject_id, wrapped, master_key_id, created_at, destroyed_at`

func scanDataKey(sc interface{ Scan(...any) error }) (DataKey, error) {
	var (
		k         DataKey
		created   int64
		destroyed sql.NullInt64
	)
	if err := sc.Scan(&k.ID, &k.SubjectID, &k.Wrapped, &k.MasterKeyID, &created, &destroyed); err != nil {
		return DataKey{}, err
	}
	k.CreatedAt, k.DestroyedAt = fromTS(created), fromTSPtr(destroyed)
	if k.DestroyedAt != nil {
		k.Wrapped = nil
	}
	return k, nil
}

// PutDataKey stores a data key, never overwriting one.
func (s *sqlStore) PutDataKey(ctx context.Context, k DataKey) error {
	if k.ID == "" {
		return errors.New("store: put data key: empty key ID")
	}
	if k.DestroyedAt == nil && len(k.Wrapped) == 0 {
		return errors.New("store: put data key: empty wrapped key")
	}
	wrapped := blob(k.Wrapped)
	if k.DestroyedAt != nil {
		wrapped = nil
	}
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO data_keys (`+dataKeyCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`),
		k.ID, k.SubjectID, wrapped, k.MasterKeyID, ts(s.orNow(k.CreatedAt)), tsPtr(k.DestroyedAt)); err != nil {
		return fmt.Errorf("store: put data key: %w", err)
	}
	return nil
}

// GetDataKey returns a data key.
func (s *sqlStore) GetDataKey(ctx context.Context, id string) (DataKey, error) {
	k, err := scanDataKey(s.r.QueryRowContext(ctx, s.q(`SELECT `+dataKeyCols+` FROM data_keys WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return DataKey{}, ErrNotFound
	}
	if err != nil {
		return DataKey{}, fmt.Errorf("store: get data key: %w", err)
	}
	return k, nil
}

// DataKeysBySubject lists a subject's data keys.
func (s *sqlStore) DataKeysBySubject(ctx context.Context, subjectID string) ([]DataKey, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+dataKeyCols+` FROM data_keys WHERE subject_id = ? ORDER BY created_at, id`),
		[]any{subjectID}, scanDataKey)
	if err != nil {
		return nil, fmt.Errorf("store: data keys by subject: %w", err)
	}
	return out, nil
}

// AssignDataKeys makes the keys belong to the subject.
func (s *sqlStore) AssignDataKeys(ctx context.Context, keyIDs []string, subjectID string) error {
	keyIDs = uniqueStrings(keyIDs)
	if len(keyIDs) == 0 {
		return nil
	}
	if subjectID == "" {
		return errors.New("store: assign data keys: empty subject ID")
	}
	matched := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		matched = 0
		for _, ch := range chunks(len(keyIDs), maxInList) {
			part := keyIDs[ch[0]:ch[1]]
			args := append([]any{subjectID}, stringArgs(part)...)
			res, err := tx.ExecContext(ctx, s.q(`UPDATE data_keys SET subject_id = ? WHERE id IN (`+placeholders(len(part))+`)`), args...)
			if err != nil {
				return err
			}
			n, err := rowsAffected(res)
			if err != nil {
				return err
			}
			matched += n
		}
		if matched != len(keyIDs) {
			return ErrNotFound
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: assign data keys: %d of %d keys do not exist: %w", len(keyIDs)-matched, len(keyIDs), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: assign data keys: %w", err)
	}
	return nil
}

// DestroyDataKeys crypto-shreds a subject's keys, keeping tombstones.
func (s *sqlStore) DestroyDataKeys(ctx context.Context, subjectID string) (int, error) {
	if subjectID == "" {
		return 0, errors.New("store: destroy data keys: empty subject ID")
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE data_keys SET wrapped = NULL, destroyed_at = ?
		WHERE subject_id = ? AND destroyed_at IS NULL`), s.now().UnixMicro(), subjectID)
	if err != nil {
		return 0, fmt.Errorf("store: destroy data keys: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return 0, fmt.Errorf("store: destroy data keys: %w", err)
	}
	if n > 0 {
		s.shred(ctx)
	}
	return n, nil
}

// DataKeysByMaster lists live keys wrapped by a master key.
func (s *sqlStore) DataKeysByMaster(ctx context.Context, masterKeyID string, limit int) ([]DataKey, error) {
	query := `SELECT ` + dataKeyCols + ` FROM data_keys WHERE master_key_id = ? AND destroyed_at IS NULL AND wrapped IS NOT NULL ORDER BY id`
	args := []any{masterKeyID}
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	out, err := queryAll(ctx, s.r, s.q(query), args, scanDataKey)
	if err != nil {
		return nil, fmt.Errorf("store: data keys by master: %w", err)
	}
	return out, nil
}

// RewrapDataKey replaces a live key's wrapping.
func (s *sqlStore) RewrapDataKey(ctx context.Context, id string, wrapped []byte, masterKeyID string) error {
	if len(wrapped) == 0 {
		return errors.New("store: rewrap data key: empty wrapped key")
	}
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE data_keys SET wrapped = ?, master_key_id = ?
		WHERE id = ? AND destroyed_at IS NULL AND wrapped IS NOT NULL`), wrapped, masterKeyID, id)
	if err != nil {
		return fmt.Errorf("store: rewrap data key: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("store: rewrap data key: %w", err)
	}
	if n == 1 {
		return nil
	}
	var exists int
	if err := s.w.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM data_keys WHERE id = ?`), id).Scan(&exists); err != nil {
		return fmt.Errorf("store: rewrap data key: %w", err)
	}
	if exists == 0 {
		return ErrNotFound
	}
	return fmt.Errorf("store: rewrap data key: key was destroyed: %w", ErrConflict)
}

// shred makes erased bytes unrecoverable from the SQLite files. The writer
// runs with secure_delete, so freed space in the database is zeroed; the
// WAL still holds the old page images until it is checkpointed, so this
// checkpoints it and truncates it to zero bytes. It is best effort: when a
// long read blocks the checkpoint, the next one (automatic or at the next
// erasure) completes it. PostgreSQL keeps old row versions until VACUUM and
// in its own WAL; there crypto-shredding relies on master key rotation.
func (s *sqlStore) shred(ctx context.Context) {
	if s.backend != BackendSQLite {
		return
	}
	var busy, logFrames, checkpointed int
	err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed)
	if err != nil || busy != 0 {
		s.log.Warn("store: could not truncate the SQLite WAL after an erasure; it will be checkpointed later", zap.Error(err))
	}
}
