package sfsandbox

import (
	"fmt"
	"net/http"
	"time"
)

// consume takes one call from the daily budget. The budget renews at UTC
// midnight, a simplification of Salesforce's rolling 24 hours.
func (s *Sandbox) consume() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	day := time.Now().UTC().Format("2006-01-02")
	if day != s.usedDay {
		s.usedDay = day
		s.used = 0
	}
	if s.used >= s.opts.DailyBudget {
		return false
	}
	s.used++
	return true
}

// limitInfo is the Sforce-Limit-Info header value.
func (s *Sandbox) limitInfo() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("api-usage=%d/%d", s.used, s.opts.DailyBudget)
}

// acquire takes an in-flight slot under the concurrency cap. Salesforce
// counts long-running requests; the sandbox counts every request in
// flight, which the configured latency keeps in flight.
func (s *Sandbox) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.ConcurrencyCap > 0 && s.inflight >= s.opts.ConcurrencyCap {
		return false
	}
	s.inflight++
	return true
}

func (s *Sandbox) release() {
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
}

// admission is how a counted call fares at the door: admitted, refused by
// the concurrency cap, abandoned by its client during the latency, or
// failed by fault injection.
type admission int

const (
	admitted admission = iota
	refusedConcurrent
	refusedGone
	refusedInjected
)

// injectedFailure is the message of a failure the sandbox was told to
// inject; Salesforce's own UNKNOWN_EXCEPTION looks like this.
const injectedFailure = "An unexpected error occurred. Please include this ErrorId if you contact support: 1975863112-53245 (-1043920113)"

// admit does what every API call goes through after it is counted: it takes
// a slot under the concurrency cap, waits the configured latency and rolls
// the injected failure. When it returns admitted the caller must release
// the slot.
func (s *Sandbox) admit(r *http.Request) admission {
	if !s.acquire() {
		return refusedConcurrent
	}
	if d := s.currentLatency(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.release()
			return refusedGone
		}
	}
	if s.injectFailure() {
		s.release()
		return refusedInjected
	}
	return admitted
}

// ExhaustBudget uses up the rest of today's API budget, so every call gets
// 403 REQUEST_LIMIT_EXCEEDED until ResetBudget.
func (s *Sandbox) ExhaustBudget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usedDay = time.Now().UTC().Format("2006-01-02")
	s.used = s.opts.DailyBudget
}

// ResetBudget restores the full daily API budget.
func (s *Sandbox) ResetBudget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = 0
}

func (s *Sandbox) serveLimits(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	max, used := s.opts.DailyBudget, s.used
	s.mu.Unlock()
	lim := func(m, rem int) *ordered {
		o := newOrdered()
		o.set("Max", m)
		o.set("Remaining", rem)
		return o
	}
	out := newOrdered()
	out.set("ConcurrentAsyncGetReportInstances", lim(200, 200))
	out.set("DailyApiRequests", lim(max, max-used))
	out.set("DailyAsyncApexExecutions", lim(250000, 250000))
	out.set("DailyBulkApiBatches", lim(15000, 15000))
	out.set("DataStorageMB", lim(5, 5))
	out.set("FileStorageMB", lim(20, 20))
	out.set("HourlyODataCallout", lim(10000, 10000))
	writeJSON(w, http.StatusOK, out)
}
