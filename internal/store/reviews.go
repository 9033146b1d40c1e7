package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

const reviewCols = `id, conversation_id, subject_id, status, candidates_ciphertext, reason, rule, created_at, resolved_at, resolved_by, resolved_contact_id`

func scanReview(sc interface{ Scan(...any) error }) (Review, error) {
	var (
		r        Review
		created  int64
		resolved sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.ConversationID, &r.SubjectID, &r.Status, &r.CandidatesCiphertext, &r.Reason, &r.Rule,
		&created, &resolved, &r.ResolvedBy, &r.ResolvedContactID); err != nil {
		return Review{}, err
	}
	r.CreatedAt, r.ResolvedAt = fromTS(created), fromTSPtr(resolved)
	return r, nil
}

// CreateReview stores a review, idempotent on ID.
func (s *sqlStore) CreateReview(ctx context.Context, r Review) (Review, error) {
	if r.ID == "" {
		r.ID = uuid.NewString()
	}
	if r.Status == "" {
		r.Status = ReviewOpen
	}
	if !validReviewStatus(r.Status) {
		return Review{}, errors.New("store: create review: status must be open, resolved or rejected")
	}
	r.CreatedAt = s.orNow(r.CreatedAt)
	if _, err := s.w.ExecContext(ctx, s.q(`INSERT INTO reviews (`+reviewCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`),
		r.ID, r.ConversationID, r.SubjectID, r.Status, blob(r.CandidatesCiphertext), r.Reason, r.Rule,
		ts(r.CreatedAt), tsPtr(r.ResolvedAt), r.ResolvedBy, r.ResolvedContactID); err != nil {
		return Review{}, fmt.Errorf("store: create review: %w", err)
	}
	return s.getReview(ctx, s.w, r.ID)
}

func validReviewStatus(s string) bool {
	return s == ReviewOpen || s == ReviewResolved || s == ReviewRejected
}

// GetReview returns one review.
func (s *sqlStore) GetReview(ctx context.Context, id string) (Review, error) {
	return s.getReview(ctx, s.r, id)
}

func (s *sqlStore) getReview(ctx context.Context, db *sql.DB, id string) (Review, error) {
	r, err := scanReview(db.QueryRowContext(ctx, s.q(`SELECT `+reviewCols+` FROM reviews WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Review{}, ErrNotFound
	}
	if err != nil {
		return Review{}, fmt.Errorf("store: get review: %w", err)
	}
	return r, nil
}

// ListReviews lists reviews with the status, or all.
func (s *sqlStore) ListReviews(ctx context.Context, status string) ([]Review, error) {
	query, args := `SELECT `+reviewCols+` FROM reviews ORDER BY created_at, id`, []any(nil)
	if status != "" {
		query, args = `SELECT `+reviewCols+` FROM reviews WHERE status = ? ORDER BY created_at, id`, []any{status}
	}
	out, err := queryAll(ctx, s.r, s.q(query), args, scanReview)
	if err != nil {
		return nil, fmt.Errorf("store: list reviews: %w", err)
	}
	return out, nil
}

// ResolveReview resolves or rejects an open review.
func (s *sqlStore) ResolveReview(ctx context.Context, id string, res ReviewResolution) (Review, error) {
	if res.Status != ReviewResolved && res.Status != ReviewRejected {
		return Review{}, errors.New("store: resolve review: status must be resolved or rejected")
	}
	at := s.orNow(res.At)
	result, err := s.w.ExecContext(ctx, s.q(`UPDATE reviews SET status = ?, resolved_at = ?, resolved_by = ?, resolved_contact_id = ?
		WHERE id = ? AND status = ?`), res.Status, ts(at), res.ResolvedBy, res.ContactID, id, ReviewOpen)
	if err != nil {
		return Review{}, fmt.Errorf("store: resolve review: %w", err)
	}
	n, err := rowsAffected(result)
	if err != nil {
		return Review{}, fmt.Errorf("store: resolve review: %w", err)
	}
	r, err := s.getReview(ctx, s.w, id)
	if err != nil {
		return Review{}, err
	}
	if n == 0 {
		return r, ErrConflict
	}
	return r, nil
}
