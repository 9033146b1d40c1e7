package edge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/store"
)

// Scopes of /v1 API tokens. ScopeAdmin implies every other scope.
const (
	ScopeDSRRead     = "dsr:read"
	ScopeDSRWrite    = "dsr:write"
	ScopeReviewWrite = "review:write"
	ScopeAdmin       = "admin"
)

// Token is one API token: its name (the audit log's actor), the SHA-256 of
// its secret, and its scopes. Secrets themselves are never stored.
type Token struct {
	Name   string   `json:"name"`
	SHA256 string   `json:"sha256"`
	Scopes []string `json:"scopes"`
}

// Tokens authenticates bearer tokens.
type Tokens struct {
	list []Token
}

// LoadTokens reads a JSON list of Tokens from path.
func LoadTokens(path string) (*Tokens, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the API tokens file %s: %w", path, err)
	}
	var list []Token
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("the API tokens file %s is not a JSON list of {name, sha256, scopes}: %v", path, err)
	}
	return &Tokens{list: list}, nil
}

// Add registers a token secret under name with scopes.
func (t *Tokens) Add(name, secret string, scopes ...string) {
	sum := sha256.Sum256([]byte(secret))
	t.list = append(t.list, Token{Name: name, SHA256: hex.EncodeToString(sum[:]), Scopes: scopes})
}

// Authenticate returns the token the request's bearer secret belongs to.
func (t *Tokens) Authenticate(r *http.Request) (Token, bool) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" || t == nil {
		return Token{}, false
	}
	sum := sha256.Sum256([]byte(secret))
	got := hex.EncodeToString(sum[:])
	for _, tok := range t.list {
		if subtle.ConstantTimeCompare([]byte(tok.SHA256), []byte(got)) == 1 {
			return tok, true
		}
	}
	return Token{}, false
}

// Has reports whether the token carries scope.
func (t Token) Has(scope string) bool {
	for _, s := range t.Scopes {
		if s == scope || s == ScopeAdmin {
			return true
		}
	}
	return false
}

// DSRRequest opens a data-subject request.
type DSRRequest struct {
	Type        string      `json:"type"`
	Identifiers Identifiers `json:"identifiers"`
	ReceivedAt  *time.Time  `json:"received_at,omitempty"`
	// Verification records how the requester's identity was verified.
	Verification string `json:"verification,omitempty"`
}

// Identifiers name a data subject.
type Identifiers struct {
	Email   string   `json:"email,omitempty"`
	Phone   string   `json:"phone,omitempty"`
	Handles []Handle `json:"handles,omitempty"`
}

// Handle is a social handle: provider and platform user id.
type Handle struct {
	Provider string `json:"provider"`
	ID       string `json:"id"`
}

// DSRService runs data-subject requests.
type DSRService interface {
	Open(ctx context.Context, req DSRRequest, actor string) (id string, deadline time.Time, err error)
	Status(ctx context.Context, id string) (any, error)
	Approve(ctx context.Context, id, actor string) error
	Extend(ctx context.Context, id, reason, actor string) (time.Time, error)
	Report(ctx context.Context, id string, format string) (contentType string, body []byte, err error)
	Retry(ctx context.Context, id string) error
}

// ReviewService runs the identity review queue and explains links.
type ReviewService interface {
	List(ctx context.Context) (any, error)
	Resolve(ctx context.Context, id, contactID string, reject bool, actor string) error
	// Links returns the links to a CRM contact with their evidence: which
	// rule, which message (as a keyed hash), when, and who approved.
	Links(ctx context.Context, contactID string) (any, error)
	// Unlink undoes the link of a conversation's customer to a contact,
	// in the CRM and in the identity graph. It returns ErrNotFound for an
	// unknown conversation and ErrConflict when nothing is linked.
	Unlink(ctx context.Context, conversationID, actor string) error
}

// ErrInvalid marks a request the caller must correct (400); ErrNotFound a
// missing resource (404); ErrConflict a request that cannot apply in the
// current state (409); ErrGone data that existed and was erased (410).
var (
	ErrInvalid  = errors.New("invalid request")
	ErrNotFound = store.ErrNotFound
	ErrConflict = store.ErrConflict
	ErrGone     = errors.New("erased")
)

// api serves /v1 with scoped bearer tokens, auditing every call.
type api struct {
	tokens  *Tokens
	dsr     DSRService
	reviews ReviewService
	audit   store.Audit
	log     *zap.Logger
}

// route wraps a /v1 handler with authentication, the scope check and the
// audit log. The handler returns the status it wrote.
func (a *api) route(scope, action string, h func(w http.ResponseWriter, r *http.Request, tok Token) int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := a.tokens.Authenticate(r)
		code := 0
		switch {
		case !ok:
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token", "")
			code = http.StatusUnauthorized
		case !tok.Has(scope):
			writeError(w, http.StatusForbidden, "this token lacks the "+scope+" scope", "")
			code = http.StatusForbidden
		default:
			code = h(w, r, tok)
		}
		actor := tok.Name
		if !ok {
			actor = "anonymous"
		}
		if err := a.audit.AppendAudit(context.WithoutCancel(r.Context()), store.AuditEntry{
			Actor: actor, Action: action, Target: r.PathValue("id"), Outcome: fmt.Sprint(code), RemoteAddr: r.RemoteAddr,
		}); err != nil {
			a.log.Error("cannot write the audit log; check the store", zap.Error(err))
		}
	})
}

func (a *api) register(mux *http.ServeMux) {
	mux.Handle("POST /v1/dsr", a.route(ScopeDSRWrite, "dsr.open", a.openDSR))
	mux.Handle("GET /v1/dsr/{id}", a.route(ScopeDSRRead, "dsr.status", a.dsrStatus))
	mux.Handle("POST /v1/dsr/{id}/approve", a.route(ScopeDSRWrite, "dsr.approve", a.approveDSR))
	mux.Handle("POST /v1/dsr/{id}/extend", a.route(ScopeDSRWrite, "dsr.extend", a.extendDSR))
	mux.Handle("GET /v1/dsr/{id}/report", a.route(ScopeDSRRead, "dsr.report", a.dsrReport))
	mux.Handle("POST /v1/dsr/{id}/retry", a.route(ScopeDSRWrite, "dsr.retry", a.retryDSR))
	mux.Handle("GET /v1/reviews", a.route(ScopeReviewWrite, "review.list", a.listReviews))
	mux.Handle("POST /v1/reviews/{id}/resolve", a.route(ScopeReviewWrite, "review.resolve", a.resolveReview))
	mux.Handle("GET /v1/contacts/{id}/links", a.route(ScopeReviewWrite, "links.explain", a.contactLinks))
	mux.Handle("POST /v1/conversations/{id}/unlink", a.route(ScopeReviewWrite, "links.unlink", a.unlinkConversation))
}

// fail writes the status that matches err and returns it.
func fail(w http.ResponseWriter, err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not found", "")
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err.Error(), "")
		return http.StatusConflict
	case errors.Is(err, ErrGone):
		writeError(w, http.StatusGone, err.Error(), "")
		return http.StatusGone
	default:
		writeError(w, http.StatusServiceUnavailable, "the request could not be completed; retry later", "")
		return http.StatusServiceUnavailable
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not valid JSON for this call: "+jsonProblem(err), "")
		return false
	}
	return true
}

// jsonProblem describes a decode error without quoting the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s must be %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "malformed"
	}
}

func (a *api) openDSR(w http.ResponseWriter, r *http.Request, tok Token) int {
	var req DSRRequest
	if !decode(w, r, &req) {
		return http.StatusBadRequest
	}
	id, deadline, err := a.dsr.Open(r.Context(), req, tok.Name)
	if err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "deadline": deadline})
	return http.StatusAccepted
}

func (a *api) dsrStatus(w http.ResponseWriter, r *http.Request, _ Token) int {
	st, err := a.dsr.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusOK, st)
	return http.StatusOK
}

func (a *api) approveDSR(w http.ResponseWriter, r *http.Request, tok Token) int {
	if err := a.dsr.Approve(r.Context(), r.PathValue("id"), tok.Name); err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "approved"})
	return http.StatusOK
}

func (a *api) retryDSR(w http.ResponseWriter, r *http.Request, _ Token) int {
	if err := a.dsr.Retry(r.Context(), r.PathValue("id")); err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "retrying"})
	return http.StatusOK
}

func (a *api) extendDSR(w http.ResponseWriter, r *http.Request, tok Token) int {
	var body struct {
		Reason string `json:"reason"`
	}
	if !decode(w, r, &body) {
		return http.StatusBadRequest
	}
	deadline, err := a.dsr.Extend(r.Context(), r.PathValue("id"), body.Reason, tok.Name)
	if err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deadline": deadline})
	return http.StatusOK
}

func (a *api) dsrReport(w http.ResponseWriter, r *http.Request, _ Token) int {
	format := r.URL.Query().Get("format")
	ct, body, err := a.dsr.Report(r.Context(), r.PathValue("id"), format)
	if err != nil {
		return fail(w, err)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

func (a *api) listReviews(w http.ResponseWriter, r *http.Request, _ Token) int {
	list, err := a.reviews.List(r.Context())
	if err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusOK, list)
	return http.StatusOK
}

func (a *api) contactLinks(w http.ResponseWriter, r *http.Request, _ Token) int {
	links, err := a.reviews.Links(r.Context(), r.PathValue("id"))
	if err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusOK, links)
	return http.StatusOK
}

func (a *api) unlinkConversation(w http.ResponseWriter, r *http.Request, tok Token) int {
	if err := a.reviews.Unlink(r.Context(), r.PathValue("id"), tok.Name); err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "unlinking"})
	return http.StatusAccepted
}

func (a *api) resolveReview(w http.ResponseWriter, r *http.Request, tok Token) int {
	var body struct {
		ContactID string `json:"contact_id"`
		Reject    bool   `json:"reject"`
	}
	if !decode(w, r, &body) {
		return http.StatusBadRequest
	}
	if (body.ContactID == "") == !body.Reject {
		writeError(w, http.StatusBadRequest, `give either "contact_id" or "reject": true`, "contact_id")
		return http.StatusBadRequest
	}
	if err := a.reviews.Resolve(r.Context(), r.PathValue("id"), body.ContactID, body.Reject, tok.Name); err != nil {
		return fail(w, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "resolved"})
	return http.StatusOK
}
