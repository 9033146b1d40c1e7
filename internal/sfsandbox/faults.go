package sfsandbox

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SetLatency sets the delay added to every API call.
func (s *Sandbox) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

func (s *Sandbox) currentLatency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latency
}

// SetFailureRate makes the fraction r (0 to 1) of API calls fail with 500
// UNKNOWN_EXCEPTION.
func (s *Sandbox) SetFailureRate(r float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failureRate = min(max(r, 0), 1)
}

func (s *Sandbox) injectFailure() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failureRate > 0 && s.rnd.Float64() < s.failureRate
}

// Outage makes every API call answer 503 for d from now. A zero d ends an
// outage.
func (s *Sandbox) Outage(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outageUntil = time.Now().Add(d)
}

func (s *Sandbox) outageRemaining() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(s.outageUntil)
}

// ExpireSessions invalidates every access token now; the next call with
// one gets 401 INVALID_SESSION_ID.
func (s *Sandbox) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string]time.Time{}
}

func (s *Sandbox) count(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[endpoint]++
	s.total++
}

// Calls returns the number of requests per endpoint, keyed by method and
// path template, e.g. "POST /services/data/vXX.X/composite/sobjects" or
// "PATCH /services/data/vXX.X/sobjects/SocialPost/{field}/{value}".
func (s *Sandbox) Calls() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// TotalCalls returns the number of requests received, on every endpoint.
func (s *Sandbox) TotalCalls() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RequestLog returns the most recent requests (method, path, status), the
// oldest first. It keeps up to 10000 entries.
func (s *Sandbox) RequestLog() []LoggedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LoggedRequest(nil), s.reqLog...)
}

// ResetCounters clears the call counters and the request log.
func (s *Sandbox) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int64{}
	s.total = 0
	s.reqLog = nil
}

// Wipe deletes every record.
func (s *Sandbox) Wipe() {
	s.st.wipe()
	s.mu.Lock()
	s.cursors = map[string]*cursor{}
	s.cursorOrder = nil
	s.mu.Unlock()
}

func (s *Sandbox) logRequest(method, path string, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqLog) >= maxLoggedCalls {
		s.reqLog = append(s.reqLog[:0], s.reqLog[len(s.reqLog)-maxLoggedCalls/2:]...)
	}
	s.reqLog = append(s.reqLog, LoggedRequest{Method: method, Path: path, Status: status})
}

// serveAdmin is the fault-injection and inspection API under /_sandbox/.
// It is outside /services, so it never counts against limits.
//
//	GET  /_sandbox/calls                 {"total":N,"calls":{endpoint:N}}
//	GET  /_sandbox/requests              [{"method","path","status"}]
//	POST /_sandbox/latency?ms=N
//	POST /_sandbox/failure-rate?rate=R
//	POST /_sandbox/outage?seconds=N
//	POST /_sandbox/expire-sessions
//	POST /_sandbox/exhaust-budget
//	POST /_sandbox/reset-budget
//	POST /_sandbox/permissions?bulk_hard_delete=B&empty_recycle_bin=B
//	POST /_sandbox/bulk-job-delay?ms=N
//	POST /_sandbox/reset                 counters, request log and budget
//	POST /_sandbox/wipe                  all records
func (s *Sandbox) serveAdmin(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.URL.Path, "/_sandbox/")
	if r.Method == http.MethodGet {
		switch action {
		case "calls":
			writeJSON(w, http.StatusOK, map[string]any{"total": s.TotalCalls(), "calls": s.Calls()})
			return
		case "requests":
			writeJSON(w, http.StatusOK, s.RequestLog())
			return
		}
		writeAdminErr(w, http.StatusNotFound, "unknown admin endpoint: use calls or requests")
		return
	}
	if r.Method != http.MethodPost {
		writeAdminErr(w, http.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	num := func(name string) (float64, bool) {
		v, err := strconv.ParseFloat(r.URL.Query().Get(name), 64)
		if err != nil || v < 0 {
			writeAdminErr(w, http.StatusBadRequest, "query parameter "+name+" must be a non-negative number")
			return 0, false
		}
		return v, true
	}
	switch action {
	case "latency":
		ms, ok := num("ms")
		if !ok {
			return
		}
		s.SetLatency(time.Duration(ms * float64(time.Millisecond)))
	case "failure-rate":
		rate, ok := num("rate")
		if !ok {
			return
		}
		if rate > 1 {
			writeAdminErr(w, http.StatusBadRequest, "query parameter rate must be between 0 and 1")
			return
		}
		s.SetFailureRate(rate)
	case "outage":
		sec, ok := num("seconds")
		if !ok {
			return
		}
		s.Outage(time.Duration(sec * float64(time.Second)))
	case "permissions":
		q := r.URL.Query()
		for name, set := range map[string]func(bool){"bulk_hard_delete": s.SetBulkHardDelete, "empty_recycle_bin": s.SetEmptyRecycleBin} {
			if !q.Has(name) {
				continue
			}
			b, err := strconv.ParseBool(q.Get(name))
			if err != nil {
				writeAdminErr(w, http.StatusBadRequest, "query parameter "+name+" must be true or false")
				return
			}
			set(b)
		}
	case "bulk-job-delay":
		ms, ok := num("ms")
		if !ok {
			return
		}
		s.SetBulkJobDelay(time.Duration(ms * float64(time.Millisecond)))
	case "expire-sessions":
		s.ExpireSessions()
	case "exhaust-budget":
		s.ExhaustBudget()
	case "reset-budget":
		s.ResetBudget()
	case "reset":
		s.ResetCounters()
		s.ResetBudget()
	case "wipe":
		s.Wipe()
	default:
		writeAdminErr(w, http.StatusNotFound, "unknown admin action: use latency, failure-rate, outage, permissions, bulk-job-delay, expire-sessions, exhaust-budget, reset-budget, reset or wipe")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func writeAdminErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
