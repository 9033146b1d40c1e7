package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// enqueueReq is one EnqueueInbox call waiting for its group commit.
type enqueueReq struct {
	items []InboxItem
	done  chan error // buffered, so the committer never blocks on it
}

// startCommitter starts the group-commit goroutine of the inbox.
func (s *sqlStore) startCommitter() {
	go s.runCommitter()
}

// runCommitter takes the first waiting caller, gathers every other caller
// that is waiting (and, with a window, those that arrive within it), commits
// all their items in one transaction and tells each caller the outcome.
// While one commit runs, new callers queue up on the unbuffered channel and
// form the next batch, so batches grow with load on their own.
func (s *sqlStore) runCommitter() {
	defer close(s.done)
	for {
		var first *enqueueReq
		select {
		case first = <-s.enqueue:
		case <-s.stop:
			return
		}
		batch := []*enqueueReq{first}
		n := len(first.items)
		var timer *time.Timer
		if s.opts.GroupCommitWindow > 0 {
			timer = time.NewTimer(s.opts.GroupCommitWindow)
		}
	gather:
		for n < s.opts.GroupCommitMaxItems {
			if timer == nil {
				select {
				case r := <-s.enqueue:
					batch = append(batch, r)
					n += len(r.items)
				default:
					break gather
				}
				continue
			}
			select {
			case r := <-s.enqueue:
				batch = append(batch, r)
				n += len(r.items)
			case <-timer.C:
				break gather
			case <-s.stop:
				break gather
			}
		}
		if timer != nil {
			timer.Stop()
		}
		items := make([]InboxItem, 0, n)
		for _, r := range batch {
			items = append(items, r.items...)
		}
		// The commit must not depend on any one caller's context: the
		// others are waiting for it too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := s.insertInbox(ctx, items)
		cancel()
		for _, r := range batch {
			r.done <- err
		}
	}
}

// EnqueueInbox durably appends items, combined with concurrent callers.
func (s *sqlStore) EnqueueInbox(ctx context.Context, items []InboxItem) error {
	if len(items) == 0 {
		return nil
	}
	if s.opts.NoGroupCommit {
		return s.insertInbox(ctx, items)
	}
	req := &enqueueReq{items: items, done: make(chan error, 1)}
	select {
	case s.enqueue <- req:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// insertInbox writes items in one transaction.
func (s *sqlStore) insertInbox(ctx context.Context, items []InboxItem) error {
	now := s.now().UnixMicro()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, ch := range chunks(len(items), maxInList/4) {
			part := items[ch[0]:ch[1]]
			args := make([]any, 0, 4*len(part))
			for _, it := range part {
				args = append(args, it.ConversationID, it.KeyID, blob(it.Payload), now)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO inbox (conversation_id, key_id, payload, enqueued_at) VALUES `+
				placeholderRows(len(part), 4)), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: enqueue inbox: %w", err)
	}
	return nil
}

// ClaimInbox leases up to limit unleased items, oldest first.
func (s *sqlStore) ClaimInbox(ctx context.Context, limit int) ([]InboxItem, error) {
	if limit <= 0 {
		return nil, errors.New("store: claim inbox: limit must be positive")
	}
	now := s.now()
	lock := ""
	if s.backend == BackendPostgres {
		// Several relays (one per serve process) share the inbox.
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []InboxItem
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, s.q(`UPDATE inbox SET claimed_until = ?
			WHERE seq IN (SELECT seq FROM inbox WHERE claimed_until <= ? ORDER BY seq LIMIT ?`+lock+`)
			RETURNING seq, conversation_id, key_id, payload, enqueued_at`),
			[]any{now.Add(s.opts.InboxLease).UnixMicro(), now.UnixMicro(), limit},
			func(sc interface{ Scan(...any) error }) (InboxItem, error) {
				var (
					it InboxItem
					at int64
				)
				if err := sc.Scan(&it.Seq, &it.ConversationID, &it.KeyID, &it.Payload, &at); err != nil {
					return InboxItem{}, err
				}
				it.EnqueuedAt = fromTS(at)
				return it, nil
			})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim inbox: %w", err)
	}
	slices.SortFunc(out, func(a, b InboxItem) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out, nil
}

// AckInbox deletes delivered items.
func (s *sqlStore) AckInbox(ctx context.Context, seqs []int64) error {
	if err := s.execSeqs(ctx, `DELETE FROM inbox WHERE seq IN (%s)`, nil, seqs); err != nil {
		return fmt.Errorf("store: ack inbox: %w", err)
	}
	return nil
}

// ReleaseInbox ends the lease of items.
func (s *sqlStore) ReleaseInbox(ctx context.Context, seqs []int64) error {
	if err := s.execSeqs(ctx, `UPDATE inbox SET claimed_until = 0 WHERE seq IN (%s)`, nil, seqs); err != nil {
		return fmt.Errorf("store: release inbox: %w", err)
	}
	return nil
}

// execSeqs runs a statement with an IN list of sequence numbers, in chunks,
// in one transaction.
func (s *sqlStore) execSeqs(ctx context.Context, format string, prefix []any, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, ch := range chunks(len(seqs), maxInList) {
			part := seqs[ch[0]:ch[1]]
			args := append([]any(nil), prefix...)
			for _, v := range part {
				args = append(args, v)
			}
			if _, err := tx.ExecContext(ctx, s.q(fmt.Sprintf(format, placeholders(len(part)))), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// InboxDepth returns how many items are in the inbox.
func (s *sqlStore) InboxDepth(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM inbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: inbox depth: %w", err)
	}
	return n, nil
}
