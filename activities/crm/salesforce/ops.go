package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// Limits of Salesforce's batch APIs.
const (
	// MaxCollection is the most records one sObject Collections call takes.
	MaxCollection = 200
	// MaxComposite is the most subrequests one Composite call takes.
	MaxComposite = 25
	// maxQueryPages bounds SOQL paging so a runaway query cannot loop.
	maxQueryPages = 1000
)

// Record is a Salesforce record as field name to value.
type Record map[string]any

// UpsertResult is the answer to an upsert by external id.
type UpsertResult struct {
	ID      string
	Created bool
}

// SaveResult is the outcome of one record of a Collections call. Err is nil
// when the record was saved.
type SaveResult struct {
	ID      string
	Created bool
	Err     *crm.Error
	Fields  []string
}

type saveResult struct {
	ID      string        `json:"id"`
	Success bool          `json:"success"`
	Created bool          `json:"created"`
	Errors  []recordError `json:"errors"`
}

func (s saveResult) result() SaveResult {
	r := SaveResult{ID: s.ID, Created: s.Created}
	if s.Success {
		return r
	}
	re := recordError{StatusCode: "UNKNOWN_ERROR"}
	if len(s.Errors) > 0 {
		re = s.Errors[0]
	}
	r.Err = re.asError()
	r.Fields = safeFieldNames(re.Fields)
	return r
}

func (c *Client) sobjectPath(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = url.PathEscape(p)
	}
	return c.dataPath() + "/sobjects/" + strings.Join(esc, "/")
}

// Upsert creates or updates the sobject record whose external id field
// holds value: 201 created, 200 updated. When several records hold the value
// (300) it returns a permanent MULTIPLE_RECORDS error naming only the object
// and field.
func (c *Client) Upsert(ctx context.Context, sobject, field, value string, rec Record) (UpsertResult, error) {
	resp, err := c.do(ctx, request{method: http.MethodPatch, path: c.sobjectPath(sobject, field, value), body: rec})
	if err != nil {
		return UpsertResult{}, err
	}
	return upsertResult(resp.status, resp.body, sobject, field)
}

func upsertResult(status int, body []byte, sobject, field string) (UpsertResult, error) {
	switch status {
	case http.StatusMultipleChoices:
		return UpsertResult{}, multipleRecords(sobject, field)
	case http.StatusNoContent:
		// Before API v46 an update answered 204 without a body.
		return UpsertResult{}, nil
	}
	var sr saveResult
	if err := json.Unmarshal(body, &sr); err != nil {
		return UpsertResult{}, badAnswer("upsert")
	}
	return UpsertResult{ID: sr.ID, Created: status == http.StatusCreated || sr.Created}, nil
}

func multipleRecords(sobject, field string) *crm.Error {
	return &crm.Error{Kind: crm.Permanent, Code: "MULTIPLE_RECORDS", Message: fmt.Sprintf("several %s records have the same %s; remove the duplicates in Salesforce", sobject, field)}
}

func badAnswer(op string) *crm.Error {
	return &crm.Error{Kind: crm.Transient, Code: "BAD_RESPONSE", Message: "could not read Salesforce's answer to " + op}
}

// Create creates a record and returns its id.
func (c *Client) Create(ctx context.Context, sobject string, rec Record) (string, error) {
	resp, err := c.do(ctx, request{method: http.MethodPost, path: c.sobjectPath(sobject), body: rec})
	if err != nil {
		return "", err
	}
	var sr saveResult
	if err := json.Unmarshal(resp.body, &sr); err != nil || sr.ID == "" {
		return "", badAnswer("create")
	}
	return sr.ID, nil
}

// Get retrieves a record; fields limits the fields returned (nil: all).
func (c *Client) Get(ctx context.Context, sobject, id string, fields []string) (Record, error) {
	req := request{method: http.MethodGet, path: c.sobjectPath(sobject, id)}
	if len(fields) > 0 {
		req.query = map[string]string{"fields": strings.Join(fields, ",")}
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(resp.body, &rec); err != nil {
		return nil, badAnswer("retrieve")
	}
	return rec, nil
}

// Update changes fields of a record.
func (c *Client) Update(ctx context.Context, sobject, id string, rec Record) error {
	_, err := c.do(ctx, request{method: http.MethodPatch, path: c.sobjectPath(sobject, id), body: rec})
	return err
}

// Delete deletes a record.
func (c *Client) Delete(ctx context.Context, sobject, id string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: c.sobjectPath(sobject, id)})
	return err
}

// CollectionUpsert upserts records of one sobject by external id field with
// sObject Collections, 200 per call, allOrNone false. The results are in
// the order of recs; a record's error does not fail the others.
func (c *Client) CollectionUpsert(ctx context.Context, sobject, field string, recs []Record) ([]SaveResult, error) {
	out := make([]SaveResult, 0, len(recs))
	for start := 0; start < len(recs); start += MaxCollection {
		chunk := recs[start:min(start+MaxCollection, len(recs))]
		body := collectionBody(sobject, chunk)
		resp, err := c.do(ctx, request{method: http.MethodPatch, path: c.dataPath() + "/composite/sobjects/" + url.PathEscape(sobject) + "/" + url.PathEscape(field), body: body})
		if err != nil {
			return out, err
		}
		res, err := saveResults(resp.body, len(chunk), "collection upsert")
		if err != nil {
			return out, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// Update is one record of a CollectionUpdate.
type Update struct {
	SObject string
	ID      string
	Fields  Record
}

// CollectionUpdate updates records (of any objects) by id with sObject
// Collections, 200 per call, allOrNone false.
func (c *Client) CollectionUpdate(ctx context.Context, updates []Update) ([]SaveResult, error) {
	out := make([]SaveResult, 0, len(updates))
	for start := 0; start < len(updates); start += MaxCollection {
		chunk := updates[start:min(start+MaxCollection, len(updates))]
		recs := make([]map[string]any, len(chunk))
		for i, u := range chunk {
			r := make(map[string]any, len(u.Fields)+2)
			for k, v := range u.Fields {
				r[k] = v
			}
			r["attributes"] = map[string]string{"type": u.SObject}
			r["id"] = u.ID
			recs[i] = r
		}
		resp, err := c.do(ctx, request{method: http.MethodPatch, path: c.dataPath() + "/composite/sobjects", body: map[string]any{"allOrNone": false, "records": recs}})
		if err != nil {
			return out, err
		}
		res, err := saveResults(resp.body, len(chunk), "collection update")
		if err != nil {
			return out, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// CollectionDelete deletes records by id, 200 per call, allOrNone false.
func (c *Client) CollectionDelete(ctx context.Context, ids []string) ([]SaveResult, error) {
	out := make([]SaveResult, 0, len(ids))
	for start := 0; start < len(ids); start += MaxCollection {
		chunk := ids[start:min(start+MaxCollection, len(ids))]
		resp, err := c.do(ctx, request{method: http.MethodDelete, path: c.dataPath() + "/composite/sobjects", query: map[string]string{"ids": strings.Join(chunk, ","), "allOrNone": "false"}})
		if err != nil {
			return out, err
		}
		res, err := saveResults(resp.body, len(chunk), "collection delete")
		if err != nil {
			return out, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func collectionBody(sobject string, recs []Record) map[string]any {
	list := make([]map[string]any, len(recs))
	for i, rec := range recs {
		r := make(map[string]any, len(rec)+1)
		for k, v := range rec {
			r[k] = v
		}
		r["attributes"] = map[string]string{"type": sobject}
		list[i] = r
	}
	return map[string]any{"allOrNone": false, "records": list}
}

func saveResults(body []byte, want int, op string) ([]SaveResult, error) {
	var raw []saveResult
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != want {
		return nil, badAnswer(op)
	}
	out := make([]SaveResult, len(raw))
	for i, r := range raw {
		out[i] = r.result()
	}
	return out, nil
}

// Subrequest is one part of a Composite call. URL is relative to the REST
// API version root, such as "/sobjects/Case/webcaresync_Id__c/abc"; Body may
// use "@{ref.id}" to refer to an earlier subrequest's result.
type Subrequest struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	ReferenceID string `json:"referenceId"`
	Body        any    `json:"body,omitempty"`
}

// SubResponse is the answer to one subrequest.
type SubResponse struct {
	ReferenceID string
	Status      int
	Body        json.RawMessage
}

// Err classifies a failed subrequest, or returns nil for success. sobject
// and field name the upsert target for a 300 answer.
func (s SubResponse) Err(sobject, field string) *crm.Error {
	if s.Status == http.StatusMultipleChoices {
		return multipleRecords(sobject, field)
	}
	if s.Status < 400 {
		return nil
	}
	return classify(s.Status, s.Body, http.Header{})
}

// Composite sends up to 25 subrequests in one call. Salesforce answers 200
// even when parts fail, so each SubResponse must be checked.
func (c *Client) Composite(ctx context.Context, allOrNone bool, subs []Subrequest) ([]SubResponse, error) {
	if len(subs) == 0 {
		return nil, nil
	}
	if len(subs) > MaxComposite {
		return nil, &crm.Error{Kind: crm.Permanent, Code: "TOO_MANY_SUBREQUESTS", Message: fmt.Sprintf("a composite call takes at most %d subrequests", MaxComposite)}
	}
	full := make([]Subrequest, len(subs))
	for i, s := range subs {
		s.URL = c.dataPath() + s.URL
		full[i] = s
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: c.dataPath() + "/composite", body: map[string]any{"allOrNone": allOrNone, "compositeRequest": full}})
	if err != nil {
		return nil, err
	}
	var raw struct {
		CompositeResponse []struct {
			Body           json.RawMessage `json:"body"`
			HTTPStatusCode int             `json:"httpStatusCode"`
			ReferenceID    string          `json:"referenceId"`
		} `json:"compositeResponse"`
	}
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		return nil, badAnswer("composite")
	}
	out := make([]SubResponse, len(raw.CompositeResponse))
	for i, r := range raw.CompositeResponse {
		out[i] = SubResponse{ReferenceID: r.ReferenceID, Status: r.HTTPStatusCode, Body: r.Body}
	}
	return out, nil
}

// Query runs a SOQL query and follows nextRecordsUrl until all records are
// read.
func (c *Client) Query(ctx context.Context, soql string) ([]Record, error) {
	return c.queryPages(ctx, request{method: http.MethodGet, path: c.dataPath() + "/query", query: map[string]string{"q": soql}})
}

// QueryAll runs a SOQL query with queryAll, which also returns records in
// the Recycle Bin (IsDeleted true), and follows nextRecordsUrl.
func (c *Client) QueryAll(ctx context.Context, soql string) ([]Record, error) {
	return c.queryPages(ctx, request{method: http.MethodGet, path: c.dataPath() + "/queryAll", query: map[string]string{"q": soql}})
}

// queryMore reads the rest of a query answer from its nextRecordsUrl.
func (c *Client) queryMore(ctx context.Context, nextRecordsURL string) ([]Record, error) {
	if !strings.HasPrefix(nextRecordsURL, "/services/data/") {
		return nil, badAnswer("query (nextRecordsUrl)")
	}
	return c.queryPages(ctx, request{method: http.MethodGet, path: nextRecordsURL})
}

// queryPages runs req and follows nextRecordsUrl until all records are read.
func (c *Client) queryPages(ctx context.Context, req request) ([]Record, error) {
	var out []Record
	for page := 0; page < maxQueryPages; page++ {
		resp, err := c.do(ctx, req)
		if err != nil {
			return out, err
		}
		var qr struct {
			Done           bool     `json:"done"`
			NextRecordsURL string   `json:"nextRecordsUrl"`
			Records        []Record `json:"records"`
		}
		if err := json.Unmarshal(resp.body, &qr); err != nil {
			return out, badAnswer("query")
		}
		out = append(out, qr.Records...)
		if qr.Done || qr.NextRecordsURL == "" {
			return out, nil
		}
		if !strings.HasPrefix(qr.NextRecordsURL, "/services/data/") {
			return out, badAnswer("query (nextRecordsUrl)")
		}
		req = request{method: http.MethodGet, path: qr.NextRecordsURL}
	}
	return out, errors.New("salesforce query returned more than 1000 pages; narrow the query")
}

// Limit is one entry of /limits.
type Limit struct {
	Max       int64 `json:"Max"`
	Remaining int64 `json:"Remaining"`
}

// Limits returns the org's limits (GET /limits).
func (c *Client) Limits(ctx context.Context) (map[string]Limit, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: c.dataPath() + "/limits"})
	if err != nil {
		return nil, err
	}
	var out map[string]Limit
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, badAnswer("limits")
	}
	return out, nil
}

// Describe returns the field names of an sobject (GET /sobjects/X/describe).
// Its signature fits mappings.ValidateAgainstDescribe.
func (c *Client) Describe(ctx context.Context, sobject string) ([]string, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: c.sobjectPath(sobject, "describe")})
	if err != nil {
		return nil, err
	}
	var d struct {
		Fields []struct {
			Name string `json:"name"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(resp.body, &d); err != nil {
		return nil, badAnswer("describe")
	}
	names := make([]string, len(d.Fields))
	for i, f := range d.Fields {
		names[i] = f.Name
	}
	return names, nil
}

// EscapeSOQL escapes s for use inside a single-quoted SOQL string literal.
func EscapeSOQL(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				continue // other control characters cannot appear in SOQL
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
