package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// CreateSubject stores a subject, idempotent on ID.
func (s *sqlStore) CreateSubject(ctx context.Context, subj Subject) (Subject, error) {
	if subj.ID == "" {
		subj.ID = uuid.NewString()
	}
	subj.CreatedAt = s.orNow(subj.CreatedAt)
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO subjects (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`),
		subj.ID, ts(subj.CreatedAt)); err != nil {
		return Subject{}, fmt.Errorf("store: create subject: %w", err)
	}
	return s.getSubject(ctx, s.w, subj.ID)
}

// GetSubject returns one subject.
func (s *sqlStore) GetSubject(ctx context.Context, id string) (Subject, error) {
	return s.getSubject(ctx, s.r, id)
}

func (s *sqlStore) getSubject(ctx context.Context, db *sql.DB, id string) (Subject, error) {
	var (
		subj    Subject
		created int64
	)
	err := db.QueryRowContext(ctx, s.q(`SELECT id, created_at FROM subjects WHERE id = ?`), id).Scan(&subj.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Subject{}, ErrNotFound
	}
	if err != nil {
		return Subject{}, fmt.Errorf("store: get subject: %w", err)
	}
	subj.CreatedAt = fromTS(created)
	return subj, nil
}

const identifierCols = `subject_id, kind, hash, ciphertext, key_id, source_conversation_id, created_at`

func scanIdentifier(sc interface{ Scan(...any) error }) (Identifier, error) {
	var (
		id      Identifier
		created int64
	)
	if err := sc.Scan(&id.SubjectID, &id.Kind, &id.Hash, &id.Ciphertext, &id.KeyID, &id.SourceConversationID, &created); err != nil {
		return Identifier{}, err
	}
	id.CreatedAt = fromTS(created)
	return id, nil
}

// FindSubjectsByIdentifierHashes returns the subjects holding any hash.
func (s *sqlStore) FindSubjectsByIdentifierHashes(ctx context.Context, hashes []string) ([]string, error) {
	ids, err := s.IdentifiersByHashes(ctx, hashes)
	if err != nil {
		return nil, err
	}
	subjects := make([]string, 0, len(ids))
	for _, id := range ids {
		subjects = append(subjects, id.SubjectID)
	}
	return uniqueStrings(subjects), nil
}

// IdentifiersByHashes returns the identifiers with any of the hashes.
func (s *sqlStore) IdentifiersByHashes(ctx context.Context, hashes []string) ([]Identifier, error) {
	hashes = uniqueStrings(hashes)
	var out []Identifier
	for _, ch := range chunks(len(hashes), maxInList) {
		part := hashes[ch[0]:ch[1]]
		got, err := queryAll(ctx, s.r, s.q(`SELECT `+identifierCols+` FROM identifiers WHERE hash IN (`+placeholders(len(part))+`)
			ORDER BY subject_id, created_at, kind, hash`), stringArgs(part), scanIdentifier)
		if err != nil {
			return nil, fmt.Errorf("store: identifiers by hashes: %w", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

// AddIdentifiers stores identifiers, skipping ones already present.
func (s *sqlStore) AddIdentifiers(ctx context.Context, ids []Identifier) (int, error) {
	for _, id := range ids {
		if id.SubjectID == "" || id.Kind == "" || id.Hash == "" {
			return 0, errors.New("store: add identifiers: subject ID, kind and hash are required")
		}
	}
	added := 0
	now := s.now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		added = 0
		for _, id := range ids {
			created := id.CreatedAt
			if created.IsZero() {
				created = now
			}
			res, err := tx.ExecContext(ctx, s.q(`INSERT INTO identifiers (`+identifierCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (subject_id, kind, hash) DO NOTHING`),
				id.SubjectID, id.Kind, id.Hash, blob(id.Ciphertext), id.KeyID, id.SourceConversationID, ts(created))
			if err != nil {
				return err
			}
			n, err := rowsAffected(res)
			if err != nil {
				return err
			}
			added += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: add identifiers: %w", err)
	}
	return added, nil
}

// IdentifiersBySubject lists a subject's identifiers.
func (s *sqlStore) IdentifiersBySubject(ctx context.Context, subjectID string) ([]Identifier, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+identifierCols+` FROM identifiers WHERE subject_id = ? ORDER BY created_at, kind, hash`),
		[]any{subjectID}, scanIdentifier)
	if err != nil {
		return nil, fmt.Errorf("store: identifiers by subject: %w", err)
	}
	return out, nil
}

const linkCols = `id, subject_id, channel, persona_hash, crm_persona_id, crm_contact_id, rule, evidence_message_hash, approved_by, created_at, revoked_at`

func scanLink(sc interface{ Scan(...any) error }) (Link, error) {
	var (
		l       Link
		created int64
		revoked sql.NullInt64
	)
	if err := sc.Scan(&l.ID, &l.SubjectID, &l.Channel, &l.PersonaHash, &l.CRMPersonaID, &l.CRMContactID,
		&l.Rule, &l.EvidenceMessageHash, &l.ApprovedBy, &created, &revoked); err != nil {
		return Link{}, err
	}
	l.CreatedAt, l.RevokedAt = fromTS(created), fromTSPtr(revoked)
	return l, nil
}

// AddLink stores a link; see IdentityGraph.AddLink.
func (s *sqlStore) AddLink(ctx context.Context, l Link) (Link, error) {
	if l.SubjectID == "" || l.Channel == "" || l.PersonaHash == "" {
		return Link{}, errors.New("store: add link: subject ID, channel and persona hash are required")
	}
	if l.ID == "" {
		l.ID = uuid.NewString()
	}
	l.CreatedAt = s.orNow(l.CreatedAt)
	var out Link
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO links (`+linkCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`),
			l.ID, l.SubjectID, l.Channel, l.PersonaHash, l.CRMPersonaID, l.CRMContactID, l.Rule,
			l.EvidenceMessageHash, l.ApprovedBy, ts(l.CreatedAt), tsPtr(l.RevokedAt))
		if err != nil {
			return err
		}
		got, err := scanLink(tx.QueryRowContext(ctx, s.q(`SELECT `+linkCols+` FROM links WHERE id = ?`), l.ID))
		if errors.Is(err, sql.ErrNoRows) {
			// Nothing with this ID, so the active-persona index refused it.
			return ErrConflict
		}
		if err != nil {
			return err
		}
		if n, _ := rowsAffected(res); n == 0 && (got.SubjectID != l.SubjectID || got.Channel != l.Channel || got.PersonaHash != l.PersonaHash) {
			return ErrConflict
		}
		out = got
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return Link{}, ErrConflict
	}
	if err != nil {
		return Link{}, fmt.Errorf("store: add link: %w", err)
	}
	return out, nil
}

// LinksBySubject lists a subject's links.
func (s *sqlStore) LinksBySubject(ctx context.Context, subjectID string) ([]Link, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+linkCols+` FROM links WHERE subject_id = ? ORDER BY created_at, id`),
		[]any{subjectID}, scanLink)
	if err != nil {
		return nil, fmt.Errorf("store: links by subject: %w", err)
	}
	return out, nil
}

// LinkByPersona returns a persona's active link.
func (s *sqlStore) LinkByPersona(ctx context.Context, channel, personaHash string) (Link, error) {
	l, err := scanLink(s.r.QueryRowContext(ctx, s.q(`SELECT `+linkCols+` FROM links
		WHERE channel = ? AND persona_hash = ? AND revoked_at IS NULL`), channel, personaHash))
	if errors.Is(err, sql.ErrNoRows) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, fmt.Errorf("store: link by persona: %w", err)
	}
	return l, nil
}

// RevokeLink marks a link revoked.
func (s *sqlStore) RevokeLink(ctx context.Context, id string, at time.Time) error {
	at = s.orNow(at)
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE links SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), ts(at), id)
	if err != nil {
		return fmt.Errorf("store: revoke link: %w", err)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return fmt.Errorf("store: revoke link: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// MergeSubjects moves everything of from to into and deletes from.
func (s *sqlStore) MergeSubjects(ctx context.Context, from, into string) error {
	if from == "" || into == "" {
		return errors.New("store: merge subjects: both subject IDs are required")
	}
	if from == into {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Both rows, in ID order: a merge into a subject that is itself
		// being merged elsewhere must wait for that merge, or it would move
		// rows onto a subject that is deleted the moment it commits.
		if err := s.lockSubjects(ctx, tx, from, into); err != nil {
			return err
		}
		var exists int
		err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM subjects WHERE id = ?`), into).Scan(&exists)
		if err != nil {
			return err
		}
		if exists == 0 {
			return ErrNotFound
		}
		// Identifiers that into already holds are dropped from from; the
		// rest move over with one UPDATE, so nothing committed meanwhile is
		// deleted without being moved.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM identifiers WHERE subject_id = ? AND EXISTS (
			SELECT 1 FROM identifiers AS mine WHERE mine.subject_id = ?
				AND mine.kind = identifiers.kind AND mine.hash = identifiers.hash)`), from, into); err != nil {
			return err
		}
		// The same for participations: into may have written in the same
		// conversation.
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM participants WHERE subject_id = ? AND EXISTS (
			SELECT 1 FROM participants AS mine WHERE mine.subject_id = ?
				AND mine.conversation_id = participants.conversation_id)`), from, into); err != nil {
			return err
		}
		stmts := []string{
			`UPDATE identifiers SET subject_id = ? WHERE subject_id = ?`,
			`UPDATE participants SET subject_id = ? WHERE subject_id = ?`,
			`UPDATE links SET subject_id = ? WHERE subject_id = ?`,
			`UPDATE conversations SET subject_id = ? WHERE subject_id = ?`,
			`UPDATE data_keys SET subject_id = ? WHERE subject_id = ?`,
			`UPDATE reviews SET subject_id = ? WHERE subject_id = ?`,
			`DELETE FROM subjects WHERE id = ?`,
		}
		for _, st := range stmts {
			args := []any{into, from}
			if strings.HasPrefix(st, "DELETE") {
				args = []any{from}
			}
			if _, err := tx.ExecContext(ctx, s.q(st), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: merge subjects: %w", err)
	}
	return nil
}

// lockSubject locks a subject's row for update on PostgreSQL, before a
// merge or purge moves or deletes the rows that name it, so that
// AddParticipants (which share-locks the subject) cannot slip a row in
// between. A missing subject is not an error. SQLite serialises writers.
func (s *sqlStore) lockSubject(ctx context.Context, tx *sql.Tx, id string) error {
	if s.backend != BackendPostgres {
		return nil
	}
	var got string
	err := tx.QueryRowContext(ctx, `SELECT id FROM subjects WHERE id = $1 FOR UPDATE`, id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// lockSubjects locks several subjects' rows for update on PostgreSQL, in
// ID order so that concurrent merges cannot deadlock. Missing subjects are
// not an error. SQLite serialises writers.
func (s *sqlStore) lockSubjects(ctx context.Context, tx *sql.Tx, ids ...string) error {
	if s.backend != BackendPostgres {
		return nil
	}
	ids = uniqueStrings(ids)
	rows, err := tx.QueryContext(ctx, `SELECT id FROM subjects WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// PurgeSubject deletes everything about a subject except ledger and audit.
func (s *sqlStore) PurgeSubject(ctx context.Context, subjectID string) (PurgeCounts, error) {
	if subjectID == "" {
		return nil, errors.New("store: purge subject: empty subject ID")
	}
	var counts PurgeCounts
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		counts = PurgeCounts{}
		if err := s.lockSubject(ctx, tx, subjectID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM conversations WHERE subject_id = ?`), subjectID)
		if err != nil {
			return err
		}
		var convs []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			convs = append(convs, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := s.deleteConversations(ctx, tx, convs, counts); err != nil {
			return err
		}
		for _, table := range []string{"reviews", "identifiers", "links", "participants"} {
			res, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE subject_id = ?`), subjectID)
			if err != nil {
				return err
			}
			n, err := rowsAffected(res)
			if err != nil {
				return err
			}
			counts[table] += n
		}
		// Keys stay as tombstones so that decoding reports "erased", but
		// they no longer name the subject.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE data_keys SET wrapped = NULL, subject_id = '',
			destroyed_at = COALESCE(destroyed_at, ?) WHERE subject_id = ?`), s.now().UnixMicro(), subjectID)
		if err != nil {
			return err
		}
		if counts["data_keys"], err = rowsAffected(res); err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, s.q(`DELETE FROM subjects WHERE id = ?`), subjectID)
		if err != nil {
			return err
		}
		counts["subjects"], err = rowsAffected(res)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: purge subject: %w", err)
	}
	s.shred(ctx)
	return counts, nil
}
