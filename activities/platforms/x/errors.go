package x

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// problem is one X API v2 error: either the whole body of a failed request,
// {"title","detail","type","status"}, or one entry of {"errors":[...]},
// which X also sends with 200 for partial failures. Detail and value can
// quote ids and text, so only Type and Title are ever used.
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Type   string `json:"type"`
	// Message is the v1.1-style {"code","message"} shape, still seen on
	// rate-limit answers.
	Message string `json:"message"`
}

// errorBody is an X API v2 error body in either shape.
type errorBody struct {
	problem
	Errors []json.RawMessage `json:"errors"`
}

// maxErrorBody bounds how much of an error body is parsed.
const maxErrorBody = 64 << 10

// parseProblem reads the first problem of an X error body. ok is false when
// the body holds no recognisable problem.
func parseProblem(body []byte) (p problem, ok bool) {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return problem{}, false
	}
	for _, raw := range eb.Errors {
		var first problem
		if json.Unmarshal(raw, &first) == nil && (first.Type != "" || first.Title != "" || first.Message != "") {
			return first, true
		}
	}
	p = eb.problem
	return p, p.Type != "" || p.Title != "" || p.Message != ""
}

// problemName is the last path segment of a problem type URI, such as
// "resource-not-found" for https://api.twitter.com/2/problems/resource-not-found,
// or "" when it is not a plain lowercase name.
func problemName(typ string) string {
	name := typ
	if i := strings.LastIndex(typ, "/problems/"); i >= 0 {
		name = typ[i+len("/problems/"):]
	} else if typ != "about:blank" {
		return ""
	}
	if name == "" || len(name) > 64 {
		return ""
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && r != '-' && r != ':' {
			return ""
		}
	}
	return name
}

// failure is how a refused call ends: the item is gone, X refused to act
// on this one item (a reason for the ledger), or the erasure must stop.
type failure struct {
	gone    bool
	refused string
	err     *crm.Error
}

// authProblems are 403 problem types that concern the app or token, not
// the item: they stop the erasure.
var authProblems = map[string]bool{
	"client-forbidden":           true,
	"client-not-enrolled":        true,
	"unsupported-authentication": true,
	"oauth1-permissions":         true,
}

// classify turns an X API answer that is not a success into a failure.
// status may be 2xx when X answered 200 with an errors array.
func classify(status int, body []byte, hdr http.Header, now time.Time) failure {
	p, _ := parseProblem(body)
	name := problemName(p.Type)
	switch {
	case name == "usage-capped":
		return failure{err: &crm.Error{Kind: crm.BudgetExhausted, Code: "X_USAGE_CAPPED", Message: "the X app's usage cap is reached; erasure resumes when X resets it", RetryAfter: resetAfter(hdr, now)}}
	case status == http.StatusTooManyRequests:
		return failure{err: &crm.Error{Kind: crm.Concurrency, Code: "X_RATE_LIMITED", Message: "X rate limit reached (deletes and hides allow 50 requests per 15 minutes per user); back off until x-rate-limit-reset", RetryAfter: resetAfter(hdr, now)}}
	case status == http.StatusUnauthorized:
		return failure{err: &crm.Error{Kind: crm.Permanent, Code: "X_UNAUTHORIZED", Message: "X rejected the user access token; renew the brand account's OAuth 2.0 token (scopes tweet.read, tweet.write, users.read, tweet.moderate.write, dm.read, dm.write)"}}
	case status == http.StatusForbidden && authProblems[name]:
		return failure{err: &crm.Error{Kind: crm.Permanent, Code: "X_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")), Message: "X refused the app or token (" + name + "); check the app's project, access level and authentication method in the X developer portal"}}
	case status == http.StatusNotFound || name == "resource-not-found":
		return failure{gone: true}
	case status >= 500:
		return failure{err: &crm.Error{Kind: crm.Transient, Code: fmt.Sprintf("X_HTTP_%d", status), Message: "X is temporarily unavailable; retrying later", RetryAfter: retryAfter(hdr)}}
	case status == http.StatusForbidden || name == "not-authorized-for-resource" || name == "resource-unauthorized":
		return failure{refused: refusal(status, name)}
	case status >= 200 && status < 300:
		return failure{err: &crm.Error{Kind: crm.Transient, Code: "X_UNEXPECTED_ANSWER", Message: "X answered without confirming the action; retrying later"}}
	case status == http.StatusBadRequest:
		return failure{err: &crm.Error{Kind: crm.Permanent, Code: "X_INVALID_REQUEST", Message: "X rejected the request as invalid; this is a webcaresync defect, please report it"}}
	}
	return failure{err: &crm.Error{Kind: crm.Permanent, Code: fmt.Sprintf("X_HTTP_%d", status), Message: "X rejected the request; check the X app's access level"}}
}

// refusal describes an item-level refusal without quoting X's detail.
func refusal(status int, name string) string {
	if name == "" || name == "about:blank" {
		return fmt.Sprintf("X refused the action (HTTP %d)", status)
	}
	return fmt.Sprintf("X refused the action (HTTP %d, %s)", status, name)
}

// resetAfter is how long until x-rate-limit-reset (unix seconds), or the
// Retry-After header, or zero.
func resetAfter(hdr http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(hdr.Get("x-rate-limit-reset")); v != "" {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil && sec > 0 && sec < 1<<40 {
			d := time.Unix(sec, 0).Sub(now)
			if d < 0 {
				return 0
			}
			if d > 24*time.Hour {
				return 24 * time.Hour
			}
			return d.Round(time.Second)
		}
	}
	return retryAfter(hdr)
}

// retryAfter reads a Retry-After header in seconds, or zero.
func retryAfter(hdr http.Header) time.Duration {
	v := strings.TrimSpace(hdr.Get("Retry-After"))
	if v == "" {
		return 0
	}
	sec, err := strconv.Atoi(v)
	if err != nil || sec <= 0 {
		return 0
	}
	if sec > 24*3600 {
		sec = 24 * 3600
	}
	return time.Duration(sec) * time.Second
}
