package sfsandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const maxBodyBytes = 32 << 20

// readJSON decodes a request body into v, answering JSON_PARSER_ERROR for
// malformed JSON as Salesforce does.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *fieldError {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return plainErr(http.StatusRequestEntityTooLarge, "JSON_PARSER_ERROR", "Request body exceeds the maximum size")
		}
		return jsonParseErr("Unable to read the request body")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return jsonParseErr(fmt.Sprintf("Cannot deserialize instance of %s from %s value or request may be missing a required field", ute.Type, ute.Value))
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return jsonParseErr(fmt.Sprintf("Unexpected character at [line:1, column:%d]", se.Offset))
		}
		return jsonParseErr("Unexpected end-of-input: expected close marker for OBJECT")
	}
	return nil
}

func versionNumber(v string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(v, "v"), ".0"))
	return n
}

func saveResult(id string, created *bool) *ordered {
	o := newOrdered()
	o.set("id", id)
	o.set("success", true)
	o.set("errors", []any{})
	if created != nil {
		o.set("created", *created)
	}
	return o
}

func (s *Sandbox) objectSummary(version string, o *objectDef) *ordered {
	base := "/services/data/" + version + "/sobjects/" + o.Name
	urls := newOrdered()
	urls.set("sobject", base)
	urls.set("describe", base+"/describe")
	urls.set("rowTemplate", base+"/{ID}")
	out := newOrdered()
	out.set("name", o.Name)
	out.set("label", o.Label)
	out.set("labelPlural", o.LabelPlural)
	out.set("keyPrefix", o.KeyPrefix)
	out.set("custom", false)
	for _, k := range []string{"createable", "updateable", "deletable", "queryable", "retrieveable", "searchable", "undeletable", "layoutable"} {
		out.set(k, true)
	}
	out.set("urls", urls)
	return out
}

func (s *Sandbox) serveGlobalDescribe(w http.ResponseWriter, r *http.Request) {
	var list []*ordered
	for _, o := range s.ordered {
		list = append(list, s.objectSummary(apiVersion(r), o))
	}
	out := newOrdered()
	out.set("encoding", "UTF-8")
	out.set("maxBatchSize", 200)
	out.set("sobjects", list)
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) serveObjectInfo(w http.ResponseWriter, r *http.Request, obj *objectDef) {
	out := newOrdered()
	out.set("objectDescribe", s.objectSummary(apiVersion(r), obj))
	out.set("recentItems", []any{})
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) serveDescribe(w http.ResponseWriter, r *http.Request, obj *objectDef) {
	out := s.objectSummary(apiVersion(r), obj)
	var fields []map[string]any
	for _, f := range obj.Fields {
		d := describeField(f)
		d["nameField"] = f.Name == obj.NameField
		fields = append(fields, d)
	}
	out.set("fields", fields)
	writeJSON(w, http.StatusOK, out)
}

func (s *Sandbox) serveCreate(w http.ResponseWriter, r *http.Request, obj *objectDef) {
	var body map[string]any
	if err := readJSON(w, r, &body); err != nil {
		writeErr(w, err)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	rec, err := s.buildRecord(tx, obj, body, nil, opCreate)
	if err != nil {
		writeErr(w, err)
		return
	}
	tx.put(rec)
	writeJSON(w, http.StatusCreated, saveResult(rec.id(), nil))
}

// lookupByID finds the record an ID in a URL names, with Salesforce's
// answers for malformed, mistyped, missing and deleted IDs.
func (s *Sandbox) lookupByID(tx *txn, obj *objectDef, raw string, method string) (*record, *fieldError) {
	id, ok := normalizeID(raw)
	if !ok {
		return nil, plainErr(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+raw)
	}
	if id[:3] != obj.KeyPrefix {
		return nil, recErr(http.StatusBadRequest, "MALFORMED_ID", obj.Label+" ID: id value of incorrect type: "+raw, "Id")
	}
	rec := tx.get(id)
	if rec == nil {
		return nil, errNotFound
	}
	if rec.deleted() {
		if method == http.MethodGet {
			return nil, errNotFound
		}
		return nil, errEntityIsDeleted
	}
	return rec, nil
}

// selectFields parses the fields query parameter of a retrieve.
func selectFields(obj *objectDef, param string) ([]*fieldDef, *fieldError) {
	if param == "" {
		return nil, nil
	}
	var out []*fieldDef
	for _, name := range strings.Split(param, ",") {
		name = strings.TrimSpace(name)
		f := obj.field(name)
		if f == nil {
			return nil, plainErr(http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, obj.Name))
		}
		out = append(out, f)
	}
	return out, nil
}

func (s *Sandbox) serveRetrieve(w http.ResponseWriter, r *http.Request, obj *objectDef, raw string) {
	only, ferr := selectFields(obj, r.URL.Query().Get("fields"))
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	rec, err := s.lookupByID(tx, obj, raw, http.MethodGet)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderRecord(apiVersion(r), obj, rec, only))
}

func (s *Sandbox) serveUpdate(w http.ResponseWriter, r *http.Request, obj *objectDef, raw string) {
	var body map[string]any
	if err := readJSON(w, r, &body); err != nil {
		writeErr(w, err)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	rec, err := s.lookupByID(tx, obj, raw, http.MethodPatch)
	if err != nil {
		writeErr(w, err)
		return
	}
	next, err := s.buildRecord(tx, obj, body, rec, opUpdate)
	if err != nil {
		writeErr(w, err)
		return
	}
	tx.put(next)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) serveDelete(w http.ResponseWriter, r *http.Request, obj *objectDef, raw string) {
	tx, _, done := s.st.begin(r.Context())
	defer done()
	rec, err := s.lookupByID(tx, obj, raw, http.MethodDelete)
	if err != nil {
		writeErr(w, err)
		return
	}
	if f := s.deleteFault(rec.id()); f != nil {
		writeErr(w, f)
		return
	}
	s.deleteRecord(tx, rec)
	w.WriteHeader(http.StatusNoContent)
}

// externalIDField resolves the field named in an upsert or external ID URL.
// A field the object does not have answers the generic NOT_FOUND that
// Salesforce documents for "Incorrect external ID field" under Error
// responses of "Insert or Update (Upsert) a Record Using an External ID"
// (https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html).
// A field that exists but is no external ID answers "Provided external ID
// field does not exist or is not accessible", as users of real orgs
// report for a field whose External ID box is not ticked.
func externalIDField(obj *objectDef, name string) (*fieldDef, *fieldError) {
	f := obj.field(name)
	if f == nil {
		return nil, errNotFound
	}
	if !f.ExternalID && !f.IDLookup {
		return nil, plainErr(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+f.Name)
	}
	return f, nil
}

// matchExternal returns the live records whose field f has value raw.
func matchExternal(tx *txn, obj *objectDef, f *fieldDef, raw string) ([]*record, any, *fieldError) {
	if f.Name == "Id" {
		id, ok := normalizeID(raw)
		if !ok {
			return nil, nil, plainErr(http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+raw)
		}
		if r := tx.get(id); r != nil && !r.deleted() && r.Object == obj.Name {
			return []*record{r}, id, nil
		}
		return nil, id, nil
	}
	v, err := coerce(f, raw)
	if err != nil {
		return nil, nil, err
	}
	return tx.findBy(obj.Name, f, v), v, nil
}

func multipleChoices(w http.ResponseWriter, version string, obj *objectDef, recs []*record) {
	urls := make([]string, 0, len(recs))
	for _, r := range recs {
		urls = append(urls, recordURL(version, obj.Name, r.id()))
	}
	writeJSON(w, http.StatusMultipleChoices, urls)
}

// serveByExternalID is GET and DELETE /sobjects/{Object}/{field}/{value}.
func (s *Sandbox) serveByExternalID(w http.ResponseWriter, r *http.Request, obj *objectDef, field, value string) {
	f, ferr := externalIDField(obj, field)
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	recs, _, err := matchExternal(tx, obj, f, value)
	if err != nil {
		writeErr(w, err)
		return
	}
	switch len(recs) {
	case 0:
		writeErr(w, errNotFound)
	case 1:
		if r.Method == http.MethodDelete {
			if f := s.deleteFault(recs[0].id()); f != nil {
				writeErr(w, f)
				return
			}
			s.deleteRecord(tx, recs[0])
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, s.renderRecord(apiVersion(r), obj, recs[0], nil))
	default:
		multipleChoices(w, apiVersion(r), obj, recs)
	}
}

// serveUpsert is PATCH /sobjects/{Object}/{field}/{value}.
func (s *Sandbox) serveUpsert(w http.ResponseWriter, r *http.Request, obj *objectDef, field, value string) {
	f, ferr := externalIDField(obj, field)
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	var body map[string]any
	if err := readJSON(w, r, &body); err != nil {
		writeErr(w, err)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	res, status, err := s.upsertOne(tx, obj, f, value, body, r.URL.Query().Get("updateOnly") == "true")
	if err != nil {
		writeErr(w, err)
		return
	}
	if status == http.StatusMultipleChoices {
		multipleChoices(w, apiVersion(r), obj, res.matches)
		return
	}
	var created *bool
	if versionNumber(apiVersion(r)) >= 46 {
		created = &res.created
	}
	writeJSON(w, status, saveResult(res.id, created))
}

type upsertResult struct {
	id      string
	created bool
	matches []*record
}

// upsertOne creates or updates the record whose external ID field f has
// value raw. It answers 201 (created), 200 (updated) or 300 (several
// matches).
func (s *Sandbox) upsertOne(tx *txn, obj *objectDef, f *fieldDef, raw string, body map[string]any, updateOnly bool) (upsertResult, int, *fieldError) {
	recs, v, err := matchExternal(tx, obj, f, raw)
	if err != nil {
		return upsertResult{}, 0, err
	}
	// The key comes from the URL; the same key in the body is tolerated.
	for k, bv := range body {
		if !strings.EqualFold(k, f.Name) {
			continue
		}
		cv, cerr := coerce(f, bv)
		if cerr != nil {
			return upsertResult{}, 0, cerr
		}
		if !equalValues(f, cv, v) {
			return upsertResult{}, 0, recErr(http.StatusBadRequest, "INVALID_FIELD", "The value of the external ID field in the request body does not match the value in the URL", f.Name)
		}
		delete(body, k)
	}
	switch len(recs) {
	case 0:
		if updateOnly || f.Name == "Id" {
			return upsertResult{}, 0, errNotFound
		}
		body[f.Name] = v
		rec, err := s.buildRecord(tx, obj, body, nil, opCreate)
		if err != nil {
			return upsertResult{}, 0, err
		}
		tx.put(rec)
		return upsertResult{id: rec.id(), created: true}, http.StatusCreated, nil
	case 1:
		next, err := s.buildRecord(tx, obj, body, recs[0], opUpdate)
		if err != nil {
			return upsertResult{}, 0, err
		}
		tx.put(next)
		return upsertResult{id: next.id()}, http.StatusOK, nil
	}
	return upsertResult{matches: recs}, http.StatusMultipleChoices, nil
}

// Records returns a snapshot of the object's live records, each a copy of
// its fields. Records in the Recycle Bin are left out, as from a query;
// AllRecords includes them. It is for tests and the demo.
func (s *Sandbox) Records(object string) []map[string]any {
	return s.records(object, false)
}

// AllRecords returns a snapshot of the object's records including those in
// the Recycle Bin (IsDeleted true), as queryAll sees them: everything the
// org can still show or restore. Purged and hard-deleted records are gone.
func (s *Sandbox) AllRecords(object string) []map[string]any {
	return s.records(object, true)
}

func (s *Sandbox) records(object string, all bool) []map[string]any {
	obj := s.object(object)
	if obj == nil {
		return nil
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	tx := &txn{st: s.st}
	recs := tx.live(obj.Name)
	if all {
		recs = tx.all(obj.Name)
	}
	var out []map[string]any
	for _, r := range recs {
		out = append(out, r.clone().Fields)
	}
	return out
}

// Seed inserts a record without going through the API (no session, no
// limits, no call count), validating it as a create would. It returns the
// new record's ID.
func (s *Sandbox) Seed(object string, fields map[string]any) (string, error) {
	obj := s.object(object)
	if obj == nil {
		return "", fmt.Errorf("seed: unknown object %q", object)
	}
	// A JSON round trip gives the values the shapes an API body has.
	raw, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("seed %s: fields are not JSON-encodable: %w", obj.Name, err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return "", fmt.Errorf("seed %s: %w", obj.Name, err)
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	tx := &txn{st: s.st, now: nowUTC()}
	rec, ferr := s.buildRecord(tx, obj, body, nil, opCreate)
	if ferr != nil {
		return "", fmt.Errorf("seed %s: %s %v", obj.Name, ferr.code, ferr.fields)
	}
	tx.put(rec)
	return rec.id(), nil
}
