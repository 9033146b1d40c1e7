package platformtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// XToken is the OAuth 2.0 user access token the fake X API accepts unless
// XState.Token is changed.
const XToken = "x-test-user-token"

// XPost is a post (tweet) on the fake X.
type XPost struct {
	// ByBrand means the brand's account wrote it, so the brand may delete it.
	ByBrand bool
	// InBrandConversation means it is a reply in a conversation the brand
	// started, so the brand may hide it.
	InBrandConversation bool
}

type xPost struct {
	XPost
	deleted bool
	hidden  bool
}

type xDM struct {
	byBrand bool
	deleted bool
}

// XState is the state of a fake X API: its posts and direct messages, what
// was deleted and hidden, and every call received. It is safe for
// concurrent use.
type XState struct {
	recorder
	token string
	posts map[string]*xPost
	dms   map[string]*xDM
}

// NewX starts a fake X API v2 for the test and returns its base URL and
// state. It serves DELETE /2/tweets/:id, PUT /2/tweets/:id/hidden and
// DELETE /2/dm_events/:event_id with a bearer token (XToken), and fails the
// test on any other request.
func NewX(t testing.TB) (string, *XState) {
	t.Helper()
	s := &XState{token: XToken, posts: map[string]*xPost{}, dms: map[string]*xDM{}}
	mux := http.NewServeMux()
	mux.HandleFunc("DELETE /2/tweets/{id}", s.deletePost)
	mux.HandleFunc("PUT /2/tweets/{id}/hidden", s.hidePost)
	mux.HandleFunc("DELETE /2/dm_events/{id}", s.deleteDM)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake X: unexpected request %s %s", r.Method, r.URL.Path)
		writeJSON(w, http.StatusBadRequest, `{"title":"Invalid Request","detail":"unknown endpoint","type":"https://api.twitter.com/2/problems/invalid-request"}`)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := Call{Method: r.Method, Path: r.URL.Path}
		if r.Method == http.MethodPut {
			call.Params = jsonParams(r)
			r = r.WithContext(context.WithValue(r.Context(), paramsKey{}, call.Params))
		}
		s.mu.Lock()
		f, faulty := s.record(call)
		token := s.token
		s.mu.Unlock()
		if faulty {
			writeFault(w, f)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			writeJSON(w, http.StatusUnauthorized, `{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}`)
			return
		}
		w.Header().Set("x-rate-limit-limit", "50")
		w.Header().Set("x-rate-limit-remaining", "49")
		w.Header().Set("x-rate-limit-reset", strconv.FormatInt(time.Now().Add(15*time.Minute).Unix(), 10))
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, s
}

// jsonParams reads a small JSON object body into strings, for Call.Params.
func jsonParams(r *http.Request) map[string]string {
	var m map[string]any
	if json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16)).Decode(&m) != nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// paramsKey carries a request's parsed body parameters to its handler.
type paramsKey struct{}

// SetToken changes the bearer token the fake accepts, to test rejected
// tokens.
func (s *XState) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// AddPost puts a post on the fake X.
func (s *XState) AddPost(id string, p XPost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts[id] = &xPost{XPost: p}
}

// AddDM puts a direct message event on the fake X; byBrand means the
// brand's account sent it.
func (s *XState) AddDM(id string, byBrand bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dms[id] = &xDM{byBrand: byBrand}
}

// DeletedPosts returns the ids of deleted posts, sorted.
func (s *XState) DeletedPosts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.posts, func(p *xPost) bool { return p.deleted })
}

// HiddenPosts returns the ids of hidden posts that are not deleted, sorted.
func (s *XState) HiddenPosts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.posts, func(p *xPost) bool { return p.hidden && !p.deleted })
}

// DeletedDMs returns the ids of deleted direct message events, sorted.
func (s *XState) DeletedDMs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.dms, func(d *xDM) bool { return d.deleted })
}

// DeletePost deletes a post as its author would, outside the API.
func (s *XState) DeletePost(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.posts[id]; ok {
		p.deleted = true
	}
}

// RateLimitNext makes the next request get X's 429 answer, with
// x-rate-limit-reset set to reset.
func (s *XState) RateLimitNext(reset time.Time) {
	s.FailNext(Fault{
		Status: http.StatusTooManyRequests,
		Header: http.Header{
			"X-Rate-Limit-Limit":     {"50"},
			"X-Rate-Limit-Remaining": {"0"},
			"X-Rate-Limit-Reset":     {strconv.FormatInt(reset.Unix(), 10)},
		},
		Body: `{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}`,
	})
}

// xIDPattern is the documented shape of post and DM event ids.
var xIDPattern = regexp.MustCompile(`^[0-9]{1,19}$`)

// xInvalidID is X's 400 answer for an id that does not match the pattern.
func xInvalidID(w http.ResponseWriter) {
	writeJSON(w, http.StatusBadRequest, `{"errors":[{"parameters":{"id":["invalid"]},"message":"The id query parameter value is not valid"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`)
}

// xNotFound is the answer for a post or DM event that does not exist (any
// more).
func xNotFound(w http.ResponseWriter, id, kind string) {
	writeJSON(w, http.StatusNotFound, fmt.Sprintf(`{"errors":[{"value":%q,"detail":"Could not find %s with id: [%s].","title":"Not Found Error","resource_type":%q,"parameter":"id","resource_id":%q,"type":"https://api.twitter.com/2/problems/resource-not-found"}]}`, id, kind, id, kind, id))
}

// xForbidden is the answer when the brand may not act on an item.
func xForbidden(w http.ResponseWriter, detail string) {
	writeJSON(w, http.StatusForbidden, fmt.Sprintf(`{"title":"Forbidden","type":"about:blank","status":403,"detail":%q}`, detail))
}

func (s *XState) deletePost(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !xIDPattern.MatchString(id) {
		xInvalidID(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.posts[id]
	switch {
	case !ok || p.deleted:
		xNotFound(w, id, "tweet")
	case !p.ByBrand:
		xForbidden(w, "You are not allowed to delete a Tweet you did not author.")
	default:
		p.deleted = true
		writeJSON(w, http.StatusOK, `{"data":{"deleted":true}}`)
	}
}

func (s *XState) hidePost(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !xIDPattern.MatchString(id) {
		xInvalidID(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	params, _ := r.Context().Value(paramsKey{}).(map[string]string)
	hidden, err := strconv.ParseBool(params["hidden"])
	if err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusBadRequest, `{"errors":[{"parameters":{"hidden":[]},"message":"The hidden field is required as a JSON boolean"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`)
		return
	}
	p, ok := s.posts[id]
	switch {
	case !ok || p.deleted:
		xNotFound(w, id, "tweet")
	case !p.InBrandConversation:
		xForbidden(w, "You can only hide or unhide replies to conversations you authored.")
	default:
		p.hidden = hidden
		writeJSON(w, http.StatusOK, fmt.Sprintf(`{"data":{"hidden":%t}}`, hidden))
	}
}

func (s *XState) deleteDM(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !xIDPattern.MatchString(id) {
		xInvalidID(w)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dms[id]
	switch {
	case !ok || d.deleted:
		xNotFound(w, id, "dm_event")
	case !d.byBrand:
		xForbidden(w, "You can only delete direct message events you sent.")
	default:
		d.deleted = true
		writeJSON(w, http.StatusOK, `{"data":{"deleted":true}}`)
	}
}
