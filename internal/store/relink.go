package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
)

// Relinker corrects the identity graph after a wrong link: it takes one
// conversation's customer out of the subject a link merged it into. The
// SQL store implements it; callers type-assert a Store to it.
type Relinker interface {
	// MoveConversation moves the conversation's part of subject From to
	// subject To in one transaction, and returns the IDs of the
	// conversations it moved, sorted. What moves:
	//   - the identifiers From holds that were recorded from the
	//     conversation (SourceConversationID), and those of kind handle
	//     whose hash is among HandleHashes (the customer's personas);
	//   - the conversation itself, and the conversations where those
	//     handles were first recorded, when From is their subject;
	//   - the participations of From in the moved conversations, and their
	//     reviews.
	// Links stay where they are: a revoked link is the evidence of the
	// wrong link and belongs to the subject it named. Data keys are the
	// caller's (privacy.Keyring.Merge), so that its cache follows.
	// Identifiers To already holds are dropped from From. Moving again is
	// harmless. A missing To is ErrNotFound; From == To moves nothing.
	MoveConversation(ctx context.Context, m ConversationMove) ([]string, error)
}

// ConversationMove names a conversation, the subject it leaves and the
// subject it joins.
type ConversationMove struct {
	ConversationID string
	From           string
	To             string
	// HandleHashes are the keyed handle hashes (KindHandle) of the
	// conversation's customer.
	HandleHashes []string
}

var _ Relinker = (*sqlStore)(nil)

// MoveConversation implements Relinker.
func (s *sqlStore) MoveConversation(ctx context.Context, m ConversationMove) ([]string, error) {
	if m.ConversationID == "" || m.From == "" || m.To == "" {
		return nil, errors.New("store: move conversation: the conversation and both subject IDs are required")
	}
	if m.From == m.To {
		return nil, nil
	}
	var moved []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		moved = nil
		if err := s.lockSubject(ctx, tx, m.From); err != nil {
			return err
		}
		var exists int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM subjects WHERE id = ?`), m.To).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return ErrNotFound
		}
		convs, err := s.movedConversations(ctx, tx, m)
		if err != nil {
			return err
		}
		// The identifiers that leave: recorded from a moved conversation,
		// or one of the customer's handles.
		args := []any{m.From}
		where := `(source_conversation_id IN (` + placeholders(len(convs)) + `)`
		for _, c := range convs {
			args = append(args, c)
		}
		if len(m.HandleHashes) > 0 {
			where += ` OR (kind = ? AND hash IN (` + placeholders(len(m.HandleHashes)) + `))`
			args = append(args, KindHandle)
			for _, h := range m.HandleHashes {
				args = append(args, h)
			}
		}
		sel := `subject_id = ? AND ` + where + `)`
		// Those To already holds are dropped; the rest move.
		dropArgs := append(append([]any(nil), args...), m.To)
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM identifiers WHERE `+sel+` AND EXISTS (
			SELECT 1 FROM identifiers AS theirs WHERE theirs.subject_id = ?
				AND theirs.kind = identifiers.kind AND theirs.hash = identifiers.hash)`), dropArgs...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE identifiers SET subject_id = ? WHERE `+sel),
			append([]any{m.To}, args...)...); err != nil {
			return err
		}
		for _, c := range convs {
			res, err := tx.ExecContext(ctx, s.q(`UPDATE conversations SET subject_id = ? WHERE id = ? AND subject_id = ?`), m.To, c, m.From)
			if err != nil {
				return err
			}
			n, err := rowsAffected(res)
			if err != nil {
				return err
			}
			if n > 0 {
				moved = append(moved, c)
			}
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM participants WHERE conversation_id = ? AND subject_id = ? AND EXISTS (
				SELECT 1 FROM participants AS theirs WHERE theirs.conversation_id = participants.conversation_id AND theirs.subject_id = ?)`),
				c, m.From, m.To); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE participants SET subject_id = ? WHERE conversation_id = ? AND subject_id = ?`), m.To, c, m.From); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE reviews SET subject_id = ? WHERE conversation_id = ? AND subject_id = ?`), m.To, c, m.From); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: move conversation: %w", err)
	}
	sort.Strings(moved)
	return moved, nil
}

// movedConversations returns the conversation and the conversations where
// the customer's handles held by From were first recorded, sorted.
func (s *sqlStore) movedConversations(ctx context.Context, tx *sql.Tx, m ConversationMove) ([]string, error) {
	set := map[string]bool{m.ConversationID: true}
	for _, ch := range chunks(len(m.HandleHashes), maxInList) {
		part := m.HandleHashes[ch[0]:ch[1]]
		args := append([]any{m.From, KindHandle}, stringArgs(part)...)
		rows, err := tx.QueryContext(ctx, s.q(`SELECT source_conversation_id FROM identifiers
			WHERE subject_id = ? AND kind = ? AND hash IN (`+placeholders(len(part))+`)`), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			if id != "" {
				set[id] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}
