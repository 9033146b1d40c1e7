package sfsandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
)

const maxSubrequests = 25

type compositeKey struct{}

type compositeAllOrNoneKey struct{}

type subrequest struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	ReferenceID string            `json:"referenceId"`
	Body        any               `json:"body"`
	HTTPHeaders map[string]string `json:"httpHeaders"`
}

type compositeBody struct {
	AllOrNone          bool         `json:"allOrNone"`
	CollateSubrequests bool         `json:"collateSubrequests"`
	CompositeRequest   []subrequest `json:"compositeRequest"`
}

var (
	refIDPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	refPattern   = regexp.MustCompile(`@\{([^}]*)\}`)
)

const haltedMsg = "The transaction was rolled back since another operation in the same transaction failed."

func halted() []apiError {
	return []apiError{{ErrorCode: "PROCESSING_HALTED", Message: haltedMsg}}
}

// serveComposite is POST /composite: up to 25 subrequests in one
// transaction, with @{referenceId.path} references between them.
func (s *Sandbox) serveComposite(w http.ResponseWriter, r *http.Request) {
	if r.Context().Value(compositeKey{}) != nil {
		writeErr(w, plainErr(http.StatusBadRequest, "INVALID_INPUT", "A composite request cannot contain another composite request"))
		return
	}
	var body compositeBody
	if err := readJSON(w, r, &body); err != nil {
		writeErr(w, err)
		return
	}
	if len(body.CompositeRequest) == 0 {
		writeErr(w, plainErr(http.StatusBadRequest, "JSON_PARSER_ERROR", "compositeRequest: must contain at least one subrequest"))
		return
	}
	if len(body.CompositeRequest) > maxSubrequests {
		writeErr(w, plainErr(http.StatusBadRequest, "LIMIT_EXCEEDED", fmt.Sprintf("Exceeded max limit of subrequests: %d", maxSubrequests)))
		return
	}
	seen := map[string]bool{}
	for _, sr := range body.CompositeRequest {
		if !refIDPattern.MatchString(sr.ReferenceID) {
			writeErr(w, plainErr(http.StatusBadRequest, "INVALID_INPUT", "referenceId must start with a letter and contain only alphanumeric characters and underscores"))
			return
		}
		if seen[sr.ReferenceID] {
			writeErr(w, plainErr(http.StatusBadRequest, "INVALID_INPUT", "Duplicate referenceId provided in the request: "+sr.ReferenceID))
			return
		}
		seen[sr.ReferenceID] = true
	}

	tx, ctx, done := s.st.begin(r.Context())
	defer done()
	ctx = context.WithValue(ctx, compositeKey{}, true)
	ctx = context.WithValue(ctx, compositeAllOrNoneKey{}, body.AllOrNone)
	sp := tx.savepoint()

	type result struct {
		Body           any               `json:"body"`
		HTTPHeaders    map[string]string `json:"httpHeaders"`
		HTTPStatusCode int               `json:"httpStatusCode"`
		ReferenceID    string            `json:"referenceId"`
	}
	results := make([]result, len(body.CompositeRequest))
	bodies := map[string]any{}
	failedAt := -1
	for i, sr := range body.CompositeRequest {
		status, hdrs, out := s.runSubrequest(ctx, r, sr, bodies)
		results[i] = result{Body: out, HTTPHeaders: hdrs, HTTPStatusCode: status, ReferenceID: sr.ReferenceID}
		if status < 300 {
			if raw, ok := out.(json.RawMessage); ok {
				var parsed any
				if json.Unmarshal(raw, &parsed) == nil {
					bodies[sr.ReferenceID] = parsed
				}
			}
		}
		if status >= 400 && body.AllOrNone {
			failedAt = i
			break
		}
	}
	if failedAt >= 0 {
		tx.rollbackTo(sp)
		for i := range results {
			if i == failedAt {
				continue
			}
			results[i] = result{Body: halted(), HTTPHeaders: map[string]string{}, HTTPStatusCode: http.StatusBadRequest, ReferenceID: body.CompositeRequest[i].ReferenceID}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"compositeResponse": results})
}

// runSubrequest resolves references in one subrequest and runs it through
// the API router inside the composite's transaction.
func (s *Sandbox) runSubrequest(ctx context.Context, parent *http.Request, sr subrequest, bodies map[string]any) (int, map[string]string, any) {
	fail := func(status int, errs []apiError) (int, map[string]string, any) {
		return status, map[string]string{}, errs
	}
	target, rerr := resolveRefs(sr.URL, bodies, true)
	if rerr != nil {
		return fail(http.StatusBadRequest, []apiError{*rerr})
	}
	var payload []byte
	if sr.Body != nil {
		resolved, rerr := resolveBody(sr.Body, bodies)
		if rerr != nil {
			return fail(http.StatusBadRequest, []apiError{*rerr})
		}
		payload, _ = json.Marshal(resolved)
	}
	path, rawQuery, _ := strings.Cut(target, "?")
	rest, ok := strings.CutPrefix(path, "/services/data/")
	if !ok {
		return fail(http.StatusBadRequest, []apiError{{ErrorCode: "INVALID_INPUT", Message: "The URL must start with /services/data/"}})
	}
	verSeg, sub, _ := strings.Cut(rest, "/")
	version, verr := checkVersion(verSeg)
	if verr != nil {
		return fail(verr.status, []apiError{verr.api()})
	}
	if seg, _, _ := strings.Cut(strings.TrimLeft(sub, "/"), "/"); seg == "jobs" {
		// Composite takes sObject, query and collection resources, not
		// Bulk API jobs (whose processing needs the store's lock).
		return fail(http.StatusBadRequest, []apiError{{ErrorCode: "INVALID_INPUT", Message: "Bulk API 2.0 resources are not supported in a composite request"}})
	}
	method := strings.ToUpper(sr.Method)
	h, _, herr := s.route(method, verSeg, sub)
	if herr != nil {
		return fail(herr.status, []apiError{herr.api()})
	}
	sctx := context.WithValue(ctx, versionKey{}, version)
	req, err := http.NewRequestWithContext(sctx, method, path, bytes.NewReader(payload))
	if err != nil {
		return fail(http.StatusBadRequest, []apiError{{ErrorCode: "INVALID_INPUT", Message: "The subrequest URL is invalid"}})
	}
	req.URL.RawQuery = rawQuery
	req.Host = parent.Host
	for k, v := range sr.HTTPHeaders {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h(rec, req)
	// The body is passed through as written, keeping its key order.
	var out any
	if b := bytes.TrimSpace(rec.Body.Bytes()); len(b) > 0 && json.Valid(b) {
		out = json.RawMessage(b)
	}
	hdrs := map[string]string{}
	if rec.Code == http.StatusCreated && method == http.MethodPost {
		var created struct {
			ID string `json:"id"`
		}
		if raw, ok := out.(json.RawMessage); ok && json.Unmarshal(raw, &created) == nil && created.ID != "" {
			hdrs["Location"] = strings.TrimSuffix(path, "/") + "/" + created.ID
		}
	}
	return rec.Code, hdrs, out
}

// resolveBody replaces references inside every string of a JSON body.
func resolveBody(v any, bodies map[string]any) (any, *apiError) {
	switch x := v.(type) {
	case string:
		out, err := resolveRefs(x, bodies, false)
		return out, err
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			r, err := resolveBody(e, bodies)
			if err != nil {
				return nil, err
			}
			m[k] = r
		}
		return m, nil
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			r, err := resolveBody(e, bodies)
			if err != nil {
				return nil, err
			}
			l[i] = r
		}
		return l, nil
	}
	return v, nil
}

// resolveRefs substitutes @{referenceId.path} expressions in s.
func resolveRefs(s string, bodies map[string]any, inURL bool) (string, *apiError) {
	var rerr *apiError
	out := refPattern.ReplaceAllStringFunc(s, func(m string) string {
		expr := refPattern.FindStringSubmatch(m)[1]
		v, ok := evalRef(expr, bodies)
		if !ok {
			refID, _, _ := strings.Cut(expr, ".")
			refID, _, _ = strings.Cut(refID, "[")
			rerr = &apiError{ErrorCode: "PROCESSING_HALTED", Message: fmt.Sprintf("Invalid reference specified. No value for %s found in %s. Provided referenceId ('%s') is invalid or doesn't exist.", expr, refID, refID)}
			return m
		}
		var str string
		switch x := v.(type) {
		case string:
			str = x
		case float64:
			str = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			b, _ := json.Marshal(x)
			str = string(b)
		}
		return str
	})
	return out, rerr
}

// evalRef evaluates "ref.a.b[0].c" against the stored subrequest bodies.
func evalRef(expr string, bodies map[string]any) (any, bool) {
	var cur any = map[string]any(nil)
	parts := strings.Split(expr, ".")
	for i, part := range parts {
		name, idx, _ := strings.Cut(part, "[")
		if i == 0 {
			v, ok := bodies[name]
			if !ok {
				return nil, false
			}
			cur = v
		} else {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			v, ok := m[name]
			if !ok {
				for k, mv := range m {
					if strings.EqualFold(k, name) {
						v, ok = mv, true
					}
				}
			}
			if !ok {
				return nil, false
			}
			cur = v
		}
		for idx != "" {
			numStr, after, found := strings.Cut(idx, "]")
			if !found {
				return nil, false
			}
			n, err := strconv.Atoi(numStr)
			l, ok := cur.([]any)
			if err != nil || !ok || n < 0 || n >= len(l) {
				return nil, false
			}
			cur = l[n]
			idx = strings.TrimPrefix(after, "[")
		}
	}
	if cur == nil {
		return nil, false
	}
	return cur, true
}
