package platformtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// MetaToken is the Page access token the fake Graph API accepts unless
// MetaState.SetToken changes it.
const MetaToken = "meta-test-page-token"

// MetaComment is a comment on the fake Facebook Page or Instagram account.
type MetaComment struct {
	// Instagram means an IG comment (hidden with hide=true); otherwise a
	// Facebook Page comment (hidden with is_hidden=true).
	Instagram bool
	// ByPage means the Page or its Instagram account wrote it.
	ByPage bool
}

type metaComment struct {
	MetaComment
	deleted bool
	hidden  bool
}

// MetaState is the state of a fake Graph API: comments, what was deleted
// and hidden, and every call received. It is safe for concurrent use.
type MetaState struct {
	recorder
	token    string
	comments map[string]*metaComment
}

// graphPath is /{version}/{object-id}.
var (
	graphVersion = regexp.MustCompile(`^v[0-9]{1,3}\.[0-9]{1,2}$`)
	graphID      = regexp.MustCompile(`^[0-9][0-9_]{0,99}$`)
)

// fbtrace is the fake's fbtrace_id.
const fbtrace = "AZq3fbTraceFake01"

// NewMeta starts a fake Graph API for the test and returns its base URL and
// state. It serves DELETE /{version}/{comment-id} and POST
// /{version}/{comment-id} (is_hidden for Facebook, hide for Instagram) with
// the Page token in access_token (query or form), and fails the test on any
// other request.
func NewMeta(t testing.TB) (string, *MetaState) {
	t.Helper()
	s := &MetaState{token: MetaToken, comments: map[string]*metaComment{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
		_ = r.ParseForm()
		call := Call{Method: r.Method, Path: r.URL.Path}
		for _, k := range []string{"is_hidden", "hide"} {
			if v := r.Form.Get(k); v != "" {
				if call.Params == nil {
					call.Params = map[string]string{}
				}
				call.Params[k] = v
			}
		}
		s.mu.Lock()
		f, faulty := s.record(call)
		token := s.token
		s.mu.Unlock()
		if faulty {
			writeFault(w, f)
			return
		}
		version, id, ok := splitGraphPath(r.URL.Path)
		if !ok || !graphVersion.MatchString(version) || (r.Method != http.MethodDelete && r.Method != http.MethodPost) {
			t.Errorf("fake Graph API: unexpected request %s %s", r.Method, r.URL.Path)
			writeJSON(w, http.StatusBadRequest, `{"error":{"message":"Unknown path components","type":"OAuthException","code":2500,"fbtrace_id":"`+fbtrace+`"}}`)
			return
		}
		if r.Form.Get("access_token") != token {
			writeJSON(w, http.StatusBadRequest, `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"`+fbtrace+`"}}`)
			return
		}
		if !graphID.MatchString(id) {
			graphUnsupported(w, r.Method, id)
			return
		}
		if r.Method == http.MethodDelete {
			s.delete(w, id)
			return
		}
		s.hide(w, r, id)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, s
}

// splitGraphPath splits /{version}/{id}.
func splitGraphPath(p string) (version, id string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return "", "", false
	}
	version, id, ok = strings.Cut(rest, "/")
	return version, id, ok && id != "" && !strings.Contains(id, "/")
}

// graphUnsupported is the Graph API's answer for an object that does not
// exist (any more): code 100, subcode 33.
func graphUnsupported(w http.ResponseWriter, method, id string) {
	verb := "delete"
	if method == http.MethodPost {
		verb = "post"
	}
	msg, _ := json.Marshal(fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api", verb, id))
	writeJSON(w, http.StatusBadRequest, fmt.Sprintf(`{"error":{"message":%s,"type":"GraphMethodException","code":100,"error_subcode":33,"fbtrace_id":"%s"}}`, msg, fbtrace))
}

func (s *MetaState) delete(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.comments[id]
	if !ok || c.deleted {
		graphUnsupported(w, http.MethodDelete, id)
		return
	}
	c.deleted = true
	writeJSON(w, http.StatusOK, `{"success":true}`)
}

func (s *MetaState) hide(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.comments[id]
	if !ok || c.deleted {
		graphUnsupported(w, http.MethodPost, id)
		return
	}
	param := "is_hidden"
	if c.Instagram {
		param = "hide"
	}
	hidden, err := strconv.ParseBool(r.Form.Get(param))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"error":{"message":"(#100) The parameter `+param+` is required","type":"OAuthException","code":100,"fbtrace_id":"`+fbtrace+`"}}`)
		return
	}
	c.hidden = hidden
	writeJSON(w, http.StatusOK, `{"success":true}`)
}

// SetToken changes the Page access token the fake accepts, to test
// rejected tokens.
func (s *MetaState) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// AddComment puts a comment on the fake Page or Instagram account.
func (s *MetaState) AddComment(id string, c MetaComment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.comments[id] = &metaComment{MetaComment: c}
}

// DeleteComment deletes a comment as its author would, outside the API.
func (s *MetaState) DeleteComment(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.comments[id]; ok {
		c.deleted = true
	}
}

// DeletedComments returns the ids of deleted comments, sorted.
func (s *MetaState) DeletedComments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.comments, func(c *metaComment) bool { return c.deleted })
}

// HiddenComments returns the ids of hidden comments that are not deleted,
// sorted.
func (s *MetaState) HiddenComments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.comments, func(c *metaComment) bool { return c.hidden && !c.deleted })
}

// RateLimitNext makes the next request get the Graph API's throttling
// answer with the given code (4 app, 17 user, 32 page, 613 custom, 80001
// Pages business use case), and an X-Business-Use-Case-Usage header that
// estimates regainMinutes until calls are accepted again.
func (s *MetaState) RateLimitNext(code, regainMinutes int) {
	s.FailNext(Fault{
		Status: http.StatusBadRequest,
		Header: http.Header{
			"X-Business-Use-Case-Usage": {fmt.Sprintf(`{"104417945650471":[{"type":"pages","call_count":100,"total_cputime":12,"total_time":15,"estimated_time_to_regain_access":%d}]}`, regainMinutes)},
		},
		Body: fmt.Sprintf(`{"error":{"message":"(#%d) There have been too many calls to this Page account. Wait a bit and try again.","type":"OAuthException","code":%d,"fbtrace_id":"%s"}}`, code, code, fbtrace),
	})
}
