package sfsandbox

import (
	"fmt"
	"net/http"
	"strings"
)

const (
	maxCollection = 200
	rolledBackMsg = "Record rolled back because not all records were valid and the request was using AllOrNone header"
)

var errCollectionLimit = plainErr(http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")

type collectionBody struct {
	AllOrNone bool             `json:"allOrNone"`
	Records   []map[string]any `json:"records"`
}

// itemResult is one SaveResult of an sObject Collections call.
type itemResult struct {
	id      string
	created *bool
	err     *fieldError
}

func (it itemResult) render() *ordered {
	o := newOrdered()
	if it.err != nil {
		if it.id != "" {
			o.set("id", it.id)
		}
		o.set("success", false)
		o.set("errors", []recordError{it.err.record()})
		return o
	}
	o.set("id", it.id)
	o.set("success", true)
	o.set("errors", []any{})
	if it.created != nil {
		o.set("created", *it.created)
	}
	return o
}

// finish applies allOrNone: when any item failed, everything since sp is
// rolled back and the items that had succeeded report the rollback.
func finish(tx *txn, sp int, allOrNone bool, items []itemResult) []*ordered {
	failed := false
	for _, it := range items {
		if it.err != nil {
			failed = true
		}
	}
	if failed && allOrNone {
		tx.rollbackTo(sp)
		for i := range items {
			if items[i].err == nil {
				items[i] = itemResult{err: recErr(http.StatusBadRequest, "ALL_OR_NONE_OPERATION_ROLLED_BACK", rolledBackMsg)}
			}
		}
	}
	out := make([]*ordered, len(items))
	for i, it := range items {
		out[i] = it.render()
	}
	return out
}

// allOrNoneOf applies the composite request's allOrNone, which overrides
// the collection's own when true.
func allOrNoneOf(r *http.Request, own bool) bool {
	if v, ok := r.Context().Value(compositeAllOrNoneKey{}).(bool); ok && v {
		return true
	}
	return own
}

func (s *Sandbox) recordType(rec map[string]any) *objectDef {
	a, _ := rec["attributes"].(map[string]any)
	t, _ := a["type"].(string)
	return s.object(t)
}

var errNoType = recErr(http.StatusBadRequest, "INVALID_TYPE", "Must specify a type in the attributes of each record")

func readCollection(w http.ResponseWriter, r *http.Request) (*collectionBody, *fieldError) {
	var body collectionBody
	if err := readJSON(w, r, &body); err != nil {
		return nil, err
	}
	if len(body.Records) > maxCollection {
		return nil, errCollectionLimit
	}
	return &body, nil
}

// serveCollectionCreate is POST /composite/sobjects.
func (s *Sandbox) serveCollectionCreate(w http.ResponseWriter, r *http.Request) {
	body, ferr := readCollection(w, r)
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	sp := tx.savepoint()
	items := make([]itemResult, len(body.Records))
	for i, raw := range body.Records {
		obj := s.recordType(raw)
		if obj == nil {
			items[i] = itemResult{err: errNoType}
			continue
		}
		rec, err := s.buildRecord(tx, obj, raw, nil, opCreate)
		if err != nil {
			if err.code == "JSON_PARSER_ERROR" {
				tx.rollbackTo(sp)
				writeErr(w, err)
				return
			}
			items[i] = itemResult{err: err}
			continue
		}
		tx.put(rec)
		items[i] = itemResult{id: rec.id()}
	}
	writeJSON(w, http.StatusOK, finish(tx, sp, allOrNoneOf(r, body.AllOrNone), items))
}

// collectionTarget finds the record an update or delete in a collection
// names, with per-record errors as Salesforce reports them.
func (s *Sandbox) collectionTarget(tx *txn, raw string) (*record, *fieldError) {
	id, ok := normalizeID(raw)
	if !ok {
		return nil, recErr(http.StatusBadRequest, "MALFORMED_ID", "malformed id "+raw)
	}
	rec := tx.get(id)
	if rec == nil {
		if s.prefixes[id[:3]] == nil {
			return nil, recErr(http.StatusBadRequest, "MALFORMED_ID", "malformed id "+raw)
		}
		return nil, recErr(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	if rec.deleted() {
		return nil, recErr(http.StatusBadRequest, "ENTITY_IS_DELETED", "entity is deleted")
	}
	return rec, nil
}

// serveCollectionUpdate is PATCH /composite/sobjects.
func (s *Sandbox) serveCollectionUpdate(w http.ResponseWriter, r *http.Request) {
	body, ferr := readCollection(w, r)
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	sp := tx.savepoint()
	items := make([]itemResult, len(body.Records))
	for i, raw := range body.Records {
		obj := s.recordType(raw)
		if obj == nil {
			items[i] = itemResult{err: errNoType}
			continue
		}
		var rawID string
		for k, v := range raw {
			if strings.EqualFold(k, "Id") {
				rawID, _ = v.(string)
			}
		}
		if rawID == "" {
			items[i] = itemResult{err: recErr(http.StatusBadRequest, "MISSING_ARGUMENT", "Id not specified in an update call")}
			continue
		}
		rec, err := s.collectionTarget(tx, rawID)
		if err == nil && rec.Object != obj.Name {
			err = recErr(http.StatusBadRequest, "MALFORMED_ID", obj.Label+" ID: id value of incorrect type: "+rawID, "Id")
		}
		if err != nil {
			items[i] = itemResult{id: rawID, err: err}
			continue
		}
		next, err := s.buildRecord(tx, obj, raw, rec, opUpdate)
		if err != nil {
			if err.code == "JSON_PARSER_ERROR" {
				tx.rollbackTo(sp)
				writeErr(w, err)
				return
			}
			items[i] = itemResult{id: rec.id(), err: err}
			continue
		}
		tx.put(next)
		items[i] = itemResult{id: next.id()}
	}
	writeJSON(w, http.StatusOK, finish(tx, sp, allOrNoneOf(r, body.AllOrNone), items))
}

// serveCollectionDelete is DELETE /composite/sobjects?ids=...&allOrNone=.
func (s *Sandbox) serveCollectionDelete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ids []string
	for _, id := range strings.Split(q.Get("ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		writeErr(w, plainErr(http.StatusBadRequest, "MISSING_ARGUMENT", "ids parameter is required"))
		return
	}
	if len(ids) > maxCollection {
		writeErr(w, errCollectionLimit)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	sp := tx.savepoint()
	items := make([]itemResult, len(ids))
	for i, raw := range ids {
		rec, err := s.collectionTarget(tx, raw)
		if err == nil {
			err = s.deleteFault(rec.id())
		}
		if err != nil {
			items[i] = itemResult{id: raw, err: err}
			continue
		}
		s.deleteRecord(tx, rec)
		items[i] = itemResult{id: rec.id()}
	}
	writeJSON(w, http.StatusOK, finish(tx, sp, allOrNoneOf(r, q.Get("allOrNone") == "true"), items))
}

// serveCollectionUpsert is PATCH /composite/sobjects/{Object}/{field}.
func (s *Sandbox) serveCollectionUpsert(w http.ResponseWriter, r *http.Request, obj *objectDef, field string) {
	f, ferr := externalIDField(obj, field)
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	body, ferr := readCollection(w, r)
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	tx, _, done := s.st.begin(r.Context())
	defer done()
	sp := tx.savepoint()
	items := make([]itemResult, len(body.Records))
	seen := map[string]bool{}
	for i, raw := range body.Records {
		if t := s.recordType(raw); t == nil || t != obj {
			items[i] = itemResult{err: errNoType}
			continue
		}
		var key any
		for k, v := range raw {
			if strings.EqualFold(k, f.Name) {
				key = v
			}
		}
		if key == nil || key == "" {
			items[i] = itemResult{err: recErr(http.StatusBadRequest, "MISSING_ARGUMENT", f.Name+" not specified", f.Name)}
			continue
		}
		keyStr := fmt.Sprint(key)
		if seen[strings.ToLower(keyStr)] {
			items[i] = itemResult{err: recErr(http.StatusBadRequest, "DUPLICATE_EXTERNAL_ID", "Duplicate external id specified: "+keyStr, f.Name)}
			continue
		}
		seen[strings.ToLower(keyStr)] = true
		res, status, err := s.upsertOne(tx, obj, f, keyStr, raw, false)
		if err != nil {
			if err.code == "JSON_PARSER_ERROR" {
				tx.rollbackTo(sp)
				writeErr(w, err)
				return
			}
			items[i] = itemResult{err: err}
			continue
		}
		if status == http.StatusMultipleChoices {
			var ids []string
			for _, m := range res.matches {
				ids = append(ids, m.id())
			}
			items[i] = itemResult{err: recErr(http.StatusMultipleChoices, "DUPLICATE_EXTERNAL_ID",
				fmt.Sprintf("%s: more than one record found for external id field: [%s]", f.Name, strings.Join(ids, ", ")), f.Name)}
			continue
		}
		created := res.created
		items[i] = itemResult{id: res.id, created: &created}
	}
	writeJSON(w, http.StatusOK, finish(tx, sp, allOrNoneOf(r, body.AllOrNone), items))
}
