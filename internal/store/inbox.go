package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// enqueueReq is one EnqueueInbox or ClaimEnqueueInbox call waiting for its
// group commit.
type enqueueReq struct {
	entries []InboxEntry
	// out receives the outcome of each entry's claims when the commit
	// succeeds; the caller reads it after done.
	out  [][]ClaimOutcome
	done chan error // buffered, so the committer never blocks on it
}

// startCommitter starts the group-commit goroutine of the inbox.
func (s *sqlStore) startCommitter() {
	go s.runCommitter()
}

// runCommitter takes the first waiting caller, gathers every other caller
// that is waiting (and, with a window, those that arrive within it), commits
// all their claims and items in one transaction and tells each caller the
// outcome. While one commit runs, new callers queue up on the unbuffered
// channel and form the next batch, so batches grow with load on their own.
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
		n := len(first.entries)
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
					n += len(r.entries)
				default:
					break gather
				}
				continue
			}
			select {
			case r := <-s.enqueue:
				batch = append(batch, r)
				n += len(r.entries)
			case <-timer.C:
				break gather
			case <-s.stop:
				break gather
			}
		}
		if timer != nil {
			timer.Stop()
		}
		// The commit must not depend on any one caller's context: the
		// others are waiting for it too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := s.commitInbox(ctx, batch)
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
	entries := make([]InboxEntry, len(items))
	for i, it := range items {
		entries[i].Item = it
	}
	if _, err := s.submit(ctx, entries); err != nil {
		return fmt.Errorf("store: enqueue inbox: %w", err)
	}
	return nil
}

// ClaimEnqueueInbox claims the entries' dedupe keys and appends the items
// of the entries it claimed every key of, in one transaction shared with
// concurrent callers.
func (s *sqlStore) ClaimEnqueueInbox(ctx context.Context, entries []InboxEntry) ([][]ClaimOutcome, error) {
	for _, e := range entries {
		for _, c := range e.Claims {
			if c.Key == "" {
				return nil, errors.New("store: claim and enqueue inbox: empty key; pass the keyed hash of channel and message ID")
			}
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	out, err := s.submit(ctx, entries)
	if err != nil {
		return nil, fmt.Errorf("store: claim and enqueue inbox: %w", err)
	}
	return out, nil
}

// submit commits entries, in a group commit unless that is turned off.
func (s *sqlStore) submit(ctx context.Context, entries []InboxEntry) ([][]ClaimOutcome, error) {
	// A caller that has already given up must not get its entries stored
	// behind its back.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := &enqueueReq{entries: entries, done: make(chan error, 1)}
	if s.opts.NoGroupCommit {
		if err := s.commitInbox(ctx, []*enqueueReq{req}); err != nil {
			return nil, err
		}
		return req.out, nil
	}
	select {
	case s.enqueue <- req:
	case <-s.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-req.done:
		if err != nil {
			return nil, err
		}
		return req.out, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// entryRef names one entry of one request in a batch.
type entryRef struct{ req, entry int }

// commitInbox writes one batch in one transaction: it claims every key
// (the first entry of the batch that names a key owns it), keeps the
// entries that won all of their keys, gives back the keys of the others,
// and appends the kept entries' items. So an entry's events are either
// claimed and in the inbox, or neither.
func (s *sqlStore) commitInbox(ctx context.Context, batch []*enqueueReq) error {
	owner := map[string]entryRef{}
	var uniq []EventClaim
	for ri, r := range batch {
		for ei, e := range r.entries {
			for _, c := range e.Claims {
				if _, ok := owner[c.Key]; !ok {
					owner[c.Key] = entryRef{ri, ei}
					uniq = append(uniq, c)
				}
			}
		}
	}
	// Inserting in key order keeps concurrent PostgreSQL transactions from
	// deadlocking on each other's keys.
	slices.SortFunc(uniq, func(a, b EventClaim) int { return strings.Compare(a.Key, b.Key) })
	now := s.now().UnixMicro()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		won, err := s.claimKeys(ctx, tx, uniq, now)
		if err != nil {
			return err
		}
		kept := make([][]bool, len(batch))
		var items []InboxItem
		var release []string
		for ri, r := range batch {
			kept[ri] = make([]bool, len(r.entries))
			for ei, e := range r.entries {
				ok := true
				for _, c := range e.Claims {
					if !won[c.Key] || owner[c.Key] != (entryRef{ri, ei}) {
						ok = false
					}
				}
				kept[ri][ei] = ok
				if ok {
					items = append(items, e.Item)
					continue
				}
				for _, c := range e.Claims {
					if won[c.Key] && owner[c.Key] == (entryRef{ri, ei}) {
						release = append(release, c.Key)
					}
				}
			}
		}
		if s.opts.BeforeInboxWrite != nil {
			if err := s.opts.BeforeInboxWrite(ctx); err != nil {
				return err
			}
		}
		slices.Sort(release)
		release = slices.Compact(release)
		for _, ch := range chunks(len(release), maxInList) {
			args := make([]any, 0, ch[1]-ch[0])
			for _, k := range release[ch[0]:ch[1]] {
				args = append(args, k)
			}
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM events WHERE key IN (`+placeholders(len(args))+`)`), args...); err != nil {
				return err
			}
		}
		if err := s.insertInboxTx(ctx, tx, items); err != nil {
			return err
		}
		for ri, r := range batch {
			r.out = make([][]ClaimOutcome, len(r.entries))
			for ei, e := range r.entries {
				out := make([]ClaimOutcome, len(e.Claims))
				for ci, c := range e.Claims {
					o := owner[c.Key]
					switch {
					case kept[ri][ei]:
						out[ci] = ClaimEnqueued
					case !won[c.Key]:
						// Claimed before this batch.
						out[ci] = ClaimDuplicate
					case kept[o.req][o.entry]:
						// Another entry of this batch holds it.
						out[ci] = ClaimDuplicate
					default:
						// Given back with the entry that owned it.
						out[ci] = ClaimRetry
					}
				}
				r.out[ei] = out
			}
		}
		return nil
	})
}

// insertInboxTx appends items within tx.
func (s *sqlStore) insertInboxTx(ctx context.Context, tx *sql.Tx, items []InboxItem) error {
	now := s.now().UnixMicro()
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
