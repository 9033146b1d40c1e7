package sfsandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// apiError is one entry of Salesforce's REST error body,
// [{"message":"...","errorCode":"...","fields":[...]}].
type apiError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields"`
}

// MarshalJSON omits fields when nil (session and limit errors carry none)
// but keeps an empty list, as Salesforce does for record errors.
func (e apiError) MarshalJSON() ([]byte, error) {
	o := newOrdered()
	o.set("message", e.Message)
	o.set("errorCode", e.ErrorCode)
	if e.Fields != nil {
		o.set("fields", e.Fields)
	}
	return o.MarshalJSON()
}

// recordError is one entry of a SaveResult's errors list in sObject
// Collections, where Salesforce names the code statusCode.
type recordError struct {
	StatusCode string   `json:"statusCode"`
	Message    string   `json:"message"`
	Fields     []string `json:"fields"`
}

// fieldError is a validation failure of one record, before it is rendered
// either as an apiError (single-record calls) or a recordError (collections).
type fieldError struct {
	status  int
	code    string
	message string
	fields  []string
	// withFields renders "fields":[] even when fields is empty, as Salesforce
	// does for record-level errors.
	withFields bool
}

func (e *fieldError) Error() string { return e.code + ": " + e.message }

func (e *fieldError) api() apiError {
	f := e.fields
	if f == nil && e.withFields {
		f = []string{}
	}
	return apiError{Message: e.message, ErrorCode: e.code, Fields: f}
}

func (e *fieldError) record() recordError {
	f := e.fields
	if f == nil {
		f = []string{}
	}
	return recordError{StatusCode: e.code, Message: e.message, Fields: f}
}

func recErr(status int, code, msg string, fields ...string) *fieldError {
	if fields == nil {
		fields = []string{}
	}
	return &fieldError{status: status, code: code, message: msg, fields: fields, withFields: true}
}

func plainErr(status int, code, msg string) *fieldError {
	return &fieldError{status: status, code: code, message: msg}
}

// Common Salesforce errors.
var (
	errNotFound        = plainErr(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	errSession         = plainErr(http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
	errTotalRequests   = plainErr(http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
	errConcurrent      = plainErr(http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
	errEntityIsDeleted = recErr(http.StatusNotFound, "ENTITY_IS_DELETED", "entity is deleted")
)

// writeJSON writes v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	b, err := marshal(v)
	if err != nil {
		return
	}
	_, _ = w.Write(b)
}

// marshal encodes v without HTML escaping, as Salesforce writes JSON.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// writeErr writes Salesforce's error list for one error.
func writeErr(w http.ResponseWriter, e *fieldError) {
	writeJSON(w, e.status, []apiError{e.api()})
}

func jsonParseErr(msg string) *fieldError {
	return plainErr(http.StatusBadRequest, "JSON_PARSER_ERROR", msg)
}

// ordered is a JSON object that keeps its keys in insertion order, so that
// records render with "attributes" first as Salesforce does.
type ordered struct {
	keys []string
	vals map[string]any
}

func newOrdered() *ordered { return &ordered{vals: map[string]any{}} }

func (o *ordered) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *ordered) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// MarshalJSON writes the keys in insertion order.
func (o *ordered) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, k := range o.keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		kb, _ := marshal(k)
		buf = append(buf, kb...)
		buf = append(buf, ':')
		vb, err := marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		buf = append(buf, vb...)
	}
	return append(buf, '}'), nil
}
