package meta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// graphError is the Graph API error body,
// {"error":{"message","type","code","error_subcode","fbtrace_id"}}.
// Message can quote object ids, so it is never passed on.
type graphError struct {
	Message   string `json:"message"`
	Type      string `json:"type"`
	Code      int    `json:"code"`
	Subcode   int    `json:"error_subcode"`
	FBTraceID string `json:"fbtrace_id"`
}

// maxErrorBody bounds how much of an error body is parsed.
const maxErrorBody = 64 << 10

// parseGraphError reads a Graph API error body. ok is false when the body
// holds no error object with a code.
func parseGraphError(body []byte) (e graphError, ok bool) {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	var wrap struct {
		Error *graphError `json:"error"`
	}
	if json.Unmarshal(body, &wrap) != nil || wrap.Error == nil || wrap.Error.Code == 0 {
		return graphError{}, false
	}
	return *wrap.Error, true
}

// traceIDPattern is what an fbtrace_id looks like; anything else is dropped.
var traceIDPattern = regexp.MustCompile(`^[A-Za-z0-9_+/=-]{1,64}$`)

// trace is the " (fbtrace_id X)" suffix for error messages, so an operator
// can quote it to Meta support, or "".
func (e graphError) trace() string {
	if !traceIDPattern.MatchString(e.FBTraceID) {
		return ""
	}
	return " (fbtrace_id " + e.FBTraceID + ")"
}

// failure is how a refused call ends: the item is gone, Meta refused to act
// on this one item (a reason for the ledger), or the erasure must stop.
type failure struct {
	gone    bool
	refused string
	err     *crm.Error
}

// isRateLimit reports the Graph codes of throttling: app (4), user (17),
// page (32), custom (613), app-level (341) and business use case (80000s).
func isRateLimit(code int) bool {
	switch code {
	case 4, 17, 32, 341, 613:
		return true
	}
	return code >= 80000 && code < 80100
}

// classify turns a Graph API answer that is not a success into a failure.
func classify(status int, body []byte, hdr http.Header) failure {
	e, ok := parseGraphError(body)
	if !ok {
		switch {
		case status == http.StatusTooManyRequests:
			return failure{err: &crm.Error{Kind: crm.Concurrency, Code: "GRAPH_HTTP_429", Message: "Meta rate limit reached; back off", RetryAfter: regainAfter(hdr)}}
		case status >= 500 || (status >= 200 && status < 300):
			return failure{err: &crm.Error{Kind: crm.Transient, Code: fmt.Sprintf("GRAPH_HTTP_%d", status), Message: "Meta answered without a Graph error or a success; retrying later"}}
		}
		return failure{err: &crm.Error{Kind: crm.Permanent, Code: fmt.Sprintf("GRAPH_HTTP_%d", status), Message: "Meta answered with an unexpected error; check the Graph API base URL and version"}}
	}
	code := fmt.Sprintf("GRAPH_%d", e.Code)
	switch {
	case isRateLimit(e.Code):
		return failure{err: &crm.Error{Kind: crm.Concurrency, Code: code, Message: "Meta rate limit reached; back off until the business use case usage allows calls again" + e.trace(), RetryAfter: regainAfter(hdr)}}
	case e.Code == 190 || e.Code == 102:
		return failure{err: &crm.Error{Kind: crm.Permanent, Code: code, Message: "Meta rejected the Page access token (expired, revoked or invalid); generate a new Page access token and give it to webcaresync" + e.trace()}}
	case e.Code == 10 || (e.Code >= 200 && e.Code <= 299):
		return failure{err: &crm.Error{Kind: crm.Permanent, Code: code, Message: "the Page access token lacks a permission; grant pages_manage_engagement (Facebook comments) and instagram_manage_comments (Instagram comments) to the app" + e.trace()}}
	case e.Code == 100 && e.Subcode == 33:
		return failure{gone: true}
	case e.Code == 1 || e.Code == 2 || e.Code == 368 || status >= 500:
		return failure{err: &crm.Error{Kind: crm.Transient, Code: code, Message: "Meta is temporarily unable to act; retrying later" + e.trace(), RetryAfter: regainAfter(hdr)}}
	}
	if e.Subcode != 0 {
		return failure{refused: fmt.Sprintf("Meta refused the action (code %d, subcode %d)", e.Code, e.Subcode)}
	}
	return failure{refused: fmt.Sprintf("Meta refused the action (code %d)", e.Code)}
}

// bucEntry is one entry of the X-Business-Use-Case-Usage header.
type bucEntry struct {
	Type string `json:"type"`
	// EstimatedTimeToRegainAccess is in minutes.
	EstimatedTimeToRegainAccess int `json:"estimated_time_to_regain_access"`
}

// parseBUCUsage reads X-Business-Use-Case-Usage,
// {"<business id>":[{"type","call_count","total_cputime","total_time",
// "estimated_time_to_regain_access"}]}, and returns the longest time to
// regain access, or zero.
func parseBUCUsage(v string) time.Duration {
	if v == "" || len(v) > maxErrorBody {
		return 0
	}
	var usage map[string][]bucEntry
	if json.Unmarshal([]byte(v), &usage) != nil {
		return 0
	}
	longest := 0
	for _, entries := range usage {
		for _, e := range entries {
			if e.EstimatedTimeToRegainAccess > longest {
				longest = e.EstimatedTimeToRegainAccess
			}
		}
	}
	if longest > 24*60 {
		longest = 24 * 60
	}
	return time.Duration(longest) * time.Minute
}

// regainAfter is when Meta expects to accept calls again: from
// X-Business-Use-Case-Usage, else Retry-After in seconds, else zero.
func regainAfter(hdr http.Header) time.Duration {
	if d := parseBUCUsage(hdr.Get("X-Business-Use-Case-Usage")); d > 0 {
		return d
	}
	v := strings.TrimSpace(hdr.Get("Retry-After"))
	sec, err := strconv.Atoi(v)
	if err != nil || sec <= 0 {
		return 0
	}
	if sec > 24*3600 {
		sec = 24 * 3600
	}
	return time.Duration(sec) * time.Second
}
