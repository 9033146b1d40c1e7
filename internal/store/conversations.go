package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ClaimEvents claims dedupe keys that belong to no recorded conversation.
func (s *sqlStore) ClaimEvents(ctx context.Context, keys []string) ([]bool, error) {
	claims := make([]EventClaim, len(keys))
	for i, k := range keys {
		claims[i] = EventClaim{Key: k}
	}
	return s.ClaimConversationEvents(ctx, claims)
}

// ClaimConversationEvents claims dedupe keys and records their conversation.
func (s *sqlStore) ClaimConversationEvents(ctx context.Context, claims []EventClaim) ([]bool, error) {
	fresh := make([]bool, len(claims))
	if len(claims) == 0 {
		return fresh, nil
	}
	first := make(map[string]int, len(claims))
	uniq := make([]EventClaim, 0, len(claims))
	for i, c := range claims {
		if c.Key == "" {
			return nil, errors.New("store: claim events: empty key; pass the keyed hash of channel and message ID")
		}
		if _, ok := first[c.Key]; ok {
			continue
		}
		first[c.Key] = i
		uniq = append(uniq, c)
	}
	// Inserting in key order keeps concurrent PostgreSQL transactions from
	// deadlocking on each other's keys.
	slices.SortFunc(uniq, func(a, b EventClaim) int { return strings.Compare(a.Key, b.Key) })
	now := s.now().UnixMicro()
	var won map[string]bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		won, err = s.claimKeys(ctx, tx, uniq, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim events: %w", err)
	}
	for k := range won {
		fresh[first[k]] = true
	}
	return fresh, nil
}

// claimKeys inserts the claims (unique keys, in key order) that are not in
// the events table yet, within tx, and returns the keys it inserted.
func (s *sqlStore) claimKeys(ctx context.Context, tx *sql.Tx, uniq []EventClaim, now int64) (map[string]bool, error) {
	won := make(map[string]bool, len(uniq))
	for _, ch := range chunks(len(uniq), maxInList/3) {
		part := uniq[ch[0]:ch[1]]
		args := make([]any, 0, 3*len(part))
		for _, c := range part {
			args = append(args, c.Key, c.ConversationID, now)
		}
		rows, err := tx.QueryContext(ctx, s.q(`INSERT INTO events (key, conversation_id, claimed_at) VALUES `+
			placeholderRows(len(part), 3)+` ON CONFLICT (key) DO NOTHING RETURNING key`), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			won[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return won, nil
}

// ReleaseEvents removes dedupe claims.
func (s *sqlStore) ReleaseEvents(ctx context.Context, keys []string) error {
	keys = uniqueStrings(keys)
	if len(keys) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, ch := range chunks(len(keys), maxInList) {
			part := keys[ch[0]:ch[1]]
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM events WHERE key IN (`+placeholders(len(part))+`)`), stringArgs(part)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: release events: %w", err)
	}
	return nil
}

// ForgetEvents removes every dedupe claim of a conversation.
func (s *sqlStore) ForgetEvents(ctx context.Context, conversationID string) (int, error) {
	if conversationID == "" {
		return 0, errors.New("store: forget events: empty conversation ID")
	}
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM events WHERE conversation_id = ?`), conversationID)
	if err != nil {
		return 0, fmt.Errorf("store: forget events: %w", err)
	}
	return rowsAffected(res)
}

// ConversationsOfEvents returns the conversations that claimed the keys.
func (s *sqlStore) ConversationsOfEvents(ctx context.Context, keys []string) ([]string, error) {
	keys = uniqueStrings(keys)
	var out []string
	for _, ch := range chunks(len(keys), maxInList) {
		part := keys[ch[0]:ch[1]]
		got, err := queryAll(ctx, s.r, s.q(`SELECT DISTINCT conversation_id FROM events
			WHERE key IN (`+placeholders(len(part))+`) AND conversation_id <> ''`), stringArgs(part),
			func(sc interface{ Scan(...any) error }) (string, error) {
				var id string
				err := sc.Scan(&id)
				return id, err
			})
		if err != nil {
			return nil, fmt.Errorf("store: conversations of events: %w", err)
		}
		out = append(out, got...)
	}
	return uniqueStrings(out), nil
}

// EventConversations returns the conversation recorded with each claimed
// key.
func (s *sqlStore) EventConversations(ctx context.Context, keys []string) (map[string]string, error) {
	keys = uniqueStrings(keys)
	out := make(map[string]string, len(keys))
	for _, ch := range chunks(len(keys), maxInList) {
		part := keys[ch[0]:ch[1]]
		pairs, err := queryAll(ctx, s.r, s.q(`SELECT key, conversation_id FROM events
			WHERE key IN (`+placeholders(len(part))+`) AND conversation_id <> ''`), stringArgs(part),
			func(sc interface{ Scan(...any) error }) ([2]string, error) {
				var p [2]string
				err := sc.Scan(&p[0], &p[1])
				return p, err
			})
		if err != nil {
			return nil, fmt.Errorf("store: event conversations: %w", err)
		}
		for _, p := range pairs {
			out[p[0]] = p[1]
		}
	}
	return out, nil
}

// UpsertConversation creates or updates a conversation.
func (s *sqlStore) UpsertConversation(ctx context.Context, c Conversation) error {
	if c.ID == "" {
		return errors.New("store: upsert conversation: empty ID")
	}
	created := s.orNow(c.CreatedAt)
	last := c.LastEventAt
	if last.IsZero() {
		last = created
	}
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO conversations (id, channel, subject_id, key_id, created_at, last_event_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			channel = CASE WHEN excluded.channel <> '' THEN excluded.channel ELSE conversations.channel END,
			subject_id = CASE WHEN excluded.subject_id <> '' THEN excluded.subject_id ELSE conversations.subject_id END,
			key_id = CASE WHEN excluded.key_id <> '' THEN excluded.key_id ELSE conversations.key_id END,
			last_event_at = CASE WHEN excluded.last_event_at > conversations.last_event_at
				THEN excluded.last_event_at ELSE conversations.last_event_at END`),
		c.ID, c.Channel, c.SubjectID, c.KeyID, ts(created), ts(last))
	if err != nil {
		return fmt.Errorf("store: upsert conversation: %w", err)
	}
	return nil
}

const conversationCols = `id, channel, subject_id, key_id, created_at, last_event_at`

func scanConversation(sc interface{ Scan(...any) error }) (Conversation, error) {
	var (
		c             Conversation
		created, last int64
	)
	if err := sc.Scan(&c.ID, &c.Channel, &c.SubjectID, &c.KeyID, &created, &last); err != nil {
		return Conversation{}, err
	}
	c.CreatedAt, c.LastEventAt = fromTS(created), fromTS(last)
	return c, nil
}

// GetConversation returns one conversation.
func (s *sqlStore) GetConversation(ctx context.Context, id string) (Conversation, error) {
	c, err := scanConversation(s.r.QueryRowContext(ctx, s.q(`SELECT `+conversationCols+` FROM conversations WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Conversation{}, ErrNotFound
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("store: get conversation: %w", err)
	}
	return c, nil
}

// ConversationsBySubject lists a subject's conversations.
func (s *sqlStore) ConversationsBySubject(ctx context.Context, subjectID string) ([]Conversation, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT `+conversationCols+` FROM conversations WHERE subject_id = ? ORDER BY created_at, id`),
		[]any{subjectID}, scanConversation)
	if err != nil {
		return nil, fmt.Errorf("store: conversations by subject: %w", err)
	}
	return out, nil
}

// SetConversationSubject assigns a conversation to a subject.
func (s *sqlStore) SetConversationSubject(ctx context.Context, conversationID, subjectID string) error {
	res, err := s.w.ExecContext(ctx, s.q(`UPDATE conversations SET subject_id = ? WHERE id = ?`), subjectID, conversationID)
	if err != nil {
		return fmt.Errorf("store: set conversation subject: %w", err)
	}
	if n, err := rowsAffected(res); err != nil || n == 0 {
		if err != nil {
			return fmt.Errorf("store: set conversation subject: %w", err)
		}
		return ErrNotFound
	}
	return nil
}

// DeleteConversation removes a conversation and everything keyed by it.
func (s *sqlStore) DeleteConversation(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("store: delete conversation: empty ID")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.deleteConversations(ctx, tx, []string{id}, PurgeCounts{})
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete conversation: %w", err)
	}
	return nil
}

// conversationTables are the tables whose rows are keyed by conversation.
var conversationTables = []string{"conversation_states", "events", "parked", "inbox", "reviews", "participants", "conversations"}

// deleteConversations deletes the conversations and their rows in every
// conversation-keyed table, adding the counts to counts.
func (s *sqlStore) deleteConversations(ctx context.Context, tx *sql.Tx, ids []string, counts PurgeCounts) (PurgeCounts, error) {
	for _, ch := range chunks(len(ids), maxInList) {
		part := ids[ch[0]:ch[1]]
		in := placeholders(len(part))
		for _, table := range conversationTables {
			col := "conversation_id"
			if table == "conversations" {
				col = "id"
			}
			res, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE `+col+` IN (`+in+`)`), stringArgs(part)...)
			if err != nil {
				return counts, err
			}
			n, err := rowsAffected(res)
			if err != nil {
				return counts, err
			}
			counts[table] += n
		}
	}
	return counts, nil
}

// AddParticipants records that the subjects wrote in the conversation.
func (s *sqlStore) AddParticipants(ctx context.Context, conversationID string, subjectIDs []string) (int, error) {
	if conversationID == "" {
		return 0, errors.New("store: add participants: empty conversation ID")
	}
	// Sorted and unique, so that concurrent PostgreSQL transactions take
	// the rows' locks in one order.
	subjectIDs = uniqueStrings(subjectIDs)
	if len(subjectIDs) == 0 {
		return 0, nil
	}
	now := s.now().UnixMicro()
	added := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		added = 0
		// A participation must name a subject that exists. On PostgreSQL
		// the share locks make a concurrent MergeSubjects or PurgeSubject
		// (which lock the subject for update first) either wait for this
		// insert and then move or delete its rows, or finish first so that
		// the subject is seen gone here; SQLite serialises writers anyway.
		lock := ""
		if s.backend == BackendPostgres {
			lock = " FOR SHARE"
		}
		for _, ch := range chunks(len(subjectIDs), maxInList) {
			part := subjectIDs[ch[0]:ch[1]]
			rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM subjects WHERE id IN (`+placeholders(len(part))+`) ORDER BY id`+lock), stringArgs(part)...)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if n != len(part) {
				return ErrNotFound
			}
		}
		for _, ch := range chunks(len(subjectIDs), maxInList/3) {
			part := subjectIDs[ch[0]:ch[1]]
			args := make([]any, 0, 3*len(part))
			for _, id := range part {
				args = append(args, conversationID, id, now)
			}
			res, err := tx.ExecContext(ctx, s.q(`INSERT INTO participants (conversation_id, subject_id, created_at) VALUES `+
				placeholderRows(len(part), 3)+` ON CONFLICT (conversation_id, subject_id) DO NOTHING`), args...)
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
	if errors.Is(err, ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("store: add participants: %w", err)
	}
	return added, nil
}

// ConversationsByParticipant lists the conversations a subject wrote in.
func (s *sqlStore) ConversationsByParticipant(ctx context.Context, subjectID string) ([]string, error) {
	out, err := queryAll(ctx, s.r, s.q(`SELECT conversation_id FROM participants WHERE subject_id = ? ORDER BY created_at, conversation_id`),
		[]any{subjectID}, func(sc interface{ Scan(...any) error }) (string, error) {
			var id string
			err := sc.Scan(&id)
			return id, err
		})
	if err != nil {
		return nil, fmt.Errorf("store: conversations by participant: %w", err)
	}
	return out, nil
}

// querier is what *sql.DB and *sql.Tx share for queries.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryAll runs a query and scans every row with scan.
func queryAll[T any](ctx context.Context, db querier, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
