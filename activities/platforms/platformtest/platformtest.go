// Package platformtest holds loopback fakes of the social platforms'
// documented erasure endpoints (X API v2 and the Graph API), for the
// connectors' tests and for end-to-end tests that must show what was
// deleted or hidden on the platform. Each fake is an httptest server that
// checks method, path and credentials, answers with the documented success
// and error shapes, records every call, and can be told to fail the next
// calls (errors, rate limits).
package platformtest

import (
	"net/http"
	"sort"
	"sync"
)

// Call is one HTTP request a fake received.
type Call struct {
	// Method is the HTTP method, such as DELETE.
	Method string
	// Path is the URL path, without the query.
	Path string
	// Params holds the form or JSON body parameters that matter to the
	// endpoint (hidden, is_hidden, hide), without access tokens.
	Params map[string]string
}

// String renders a call as "METHOD /path", for comparisons in tests.
func (c Call) String() string { return c.Method + " " + c.Path }

// Fault is an answer a fake gives instead of handling the next request.
type Fault struct {
	// Status is the HTTP status code.
	Status int
	// Header is added to the answer.
	Header http.Header
	// Body is the answer's body, sent as application/json.
	Body string
}

// recorder is the part of the fakes' state shared by X and Meta: calls and
// queued faults.
type recorder struct {
	mu     sync.Mutex
	calls  []Call
	faults []Fault
}

// record appends a call and pops the next fault, if any. It must be called
// with mu held.
func (r *recorder) record(c Call) (Fault, bool) {
	r.calls = append(r.calls, c)
	if len(r.faults) == 0 {
		return Fault{}, false
	}
	f := r.faults[0]
	r.faults = r.faults[1:]
	return f, true
}

// Calls returns the requests received so far, in order.
func (r *recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// CallStrings returns the requests received so far as "METHOD /path".
func (r *recorder) CallStrings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.calls))
	for i, c := range r.calls {
		out[i] = c.String()
	}
	return out
}

// FailNext makes the next requests get the given answers, one each, before
// normal handling resumes.
func (r *recorder) FailNext(faults ...Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, faults...)
}

// writeJSON writes a JSON answer.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// writeFault writes a queued fault.
func writeFault(w http.ResponseWriter, f Fault) {
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeJSON(w, f.Status, f.Body)
}

// sortedKeys returns the keys of m whose value satisfies keep, sorted.
func sortedKeys[V any](m map[string]V, keep func(V) bool) []string {
	var out []string
	for k, v := range m {
		if keep(v) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
