package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ConversationStates keeps the last CRM state of each conversation, sealed,
// so that a conversation workflow run that starts after the previous one
// ended (idle timeout, termination) continues with the same case, personas,
// contact and reply-to links. The sqlite and postgres stores implement it;
// assert a Store to it.
type ConversationStates interface {
	// PutConversationState stores a conversation's state, replacing the one
	// stored before. The conversation must exist (UpsertConversation): when
	// it does not, because it was never recorded or was deleted or purged
	// meanwhile, nothing is written and the error is ErrNotFound, so that a
	// late write cannot bring back a state an erasure removed.
	PutConversationState(ctx context.Context, st ConversationState) error
	// GetConversationState returns a conversation's state or ErrNotFound.
	GetConversationState(ctx context.Context, conversationID string) (ConversationState, error)
	// DeleteConversationState forgets a conversation's state, so that its
	// next run starts without CRM records (an erasure is about to delete
	// them). A state that is not there is not an error.
	DeleteConversationState(ctx context.Context, conversationID string) error
}

// ConversationState is a conversation's CRM state as the store keeps it:
// ciphertext only, sealed under the data key KeyID (the conversation's),
// so that destroying the key shreds it.
type ConversationState struct {
	ConversationID string
	Sealed         []byte
	KeyID          string
	// UpdatedAt is when the state was stored; zero means now.
	UpdatedAt time.Time
}

// conversation_states rows are keyed by conversation, so DeleteConversation
// and PurgeSubject delete them with the conversation's other rows.
var _ ConversationStates = (*sqlStore)(nil)

// PutConversationState stores a conversation's sealed state.
func (s *sqlStore) PutConversationState(ctx context.Context, st ConversationState) error {
	if st.ConversationID == "" || len(st.Sealed) == 0 {
		return errors.New("store: put conversation state: conversation ID and sealed state are required")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// On PostgreSQL the share lock makes a concurrent DeleteConversation
		// or PurgeSubject either wait for this write and then delete it, or
		// finish first so that the conversation is seen gone here; SQLite
		// serialises writers anyway.
		lock := ""
		if s.backend == BackendPostgres {
			lock = " FOR SHARE"
		}
		var id string
		err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM conversations WHERE id = ?`+lock), st.ConversationID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO conversation_states (conversation_id, sealed, key_id, updated_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (conversation_id) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id,
				updated_at = excluded.updated_at`),
			st.ConversationID, st.Sealed, st.KeyID, ts(s.orNow(st.UpdatedAt)))
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: put conversation state: %w", err)
	}
	return nil
}

// GetConversationState returns a conversation's sealed state.
func (s *sqlStore) GetConversationState(ctx context.Context, conversationID string) (ConversationState, error) {
	var (
		st ConversationState
		at int64
	)
	err := s.r.QueryRowContext(ctx, s.q(`SELECT conversation_id, sealed, key_id, updated_at FROM conversation_states
		WHERE conversation_id = ?`), conversationID).Scan(&st.ConversationID, &st.Sealed, &st.KeyID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return ConversationState{}, ErrNotFound
	}
	if err != nil {
		return ConversationState{}, fmt.Errorf("store: get conversation state: %w", err)
	}
	st.UpdatedAt = fromTS(at)
	return st, nil
}

// DeleteConversationState deletes a conversation's state.
func (s *sqlStore) DeleteConversationState(ctx context.Context, conversationID string) error {
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM conversation_states WHERE conversation_id = ?`), conversationID); err != nil {
		return fmt.Errorf("store: delete conversation state: %w", err)
	}
	return nil
}
