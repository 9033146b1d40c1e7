package sfsandbox

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Bulk API 2.0 ingest jobs (delete and hardDelete), as in
// https://developer.salesforce.com/docs/platform/api-asynch/guide/bulk-api-2-0-ingest.html.
// A job is created Open, takes one CSV upload, is closed with
// UploadComplete, is processed (InProgress) and ends JobComplete, Failed or
// Aborted. Jobs live in memory only, like sessions.

// Job states.
const (
	jobOpen           = "Open"
	jobUploadComplete = "UploadComplete"
	jobInProgress     = "InProgress"
	jobComplete       = "JobComplete"
	jobFailed         = "Failed"
	jobAborted        = "Aborted"
)

// maxJobs bounds how many ingest jobs the sandbox remembers.
const maxJobs = 1000

// columnDelimiters maps Bulk API 2.0's ColumnDelimiterEnum to the rune.
var columnDelimiters = map[string]rune{
	"COMMA": ',', "TAB": '\t', "PIPE": '|', "SEMICOLON": ';', "CARET": '^', "BACKQUOTE": '`',
}

// ingestOperations are the operations of Bulk API 2.0 ingest jobs. The
// sandbox runs delete and hardDelete; the others are refused.
var ingestOperations = map[string]bool{"insert": true, "update": true, "upsert": true, "delete": true, "hardDelete": true}

// ingestJob is one Bulk API 2.0 ingest job.
type ingestJob struct {
	id, object, operation         string
	columnDelimiter, lineEnding   string
	apiVersion                    string
	state                         string
	created, modified             time.Time
	data                          []byte
	uploaded                      bool
	processed, failed             int
	errorMessage                  string
	header                        []string
	successful, failures, skipped [][]string
	processingTime                time.Duration
	timer                         *time.Timer
}

// jobError is Bulk API 2.0's error body for job requests.
func jobError(status int, code, msg string) *fieldError { return plainErr(status, code, msg) }

var errJobNotFound = plainErr(http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")

// SetBulkHardDelete grants (true) or withholds (false) the integration
// user's "Bulk API Hard Delete" permission. Without it, ingest jobs with
// operation hardDelete answer 400 FEATURENOTENABLED.
func (s *Sandbox) SetBulkHardDelete(granted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noHardDelete = !granted
}

// SetBulkJobDelay sets how long an ingest job stays InProgress after its
// upload completes before it is processed.
func (s *Sandbox) SetBulkJobDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobDelay = max(d, 0)
}

// FailDelete makes every later delete of the record with the ID (REST,
// sObject Collections and Bulk API) fail with the code and message, as a
// trigger or a dependent record (an order, a contract) makes Salesforce
// refuse it. An empty code clears the fault.
func (s *Sandbox) FailDelete(id, code, message string) {
	n, ok := normalizeID(id)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == "" {
		delete(s.deleteFaults, n)
		return
	}
	s.deleteFaults[n] = recErr(http.StatusBadRequest, code, message)
}

// deleteFault returns the injected error for deleting the record, if any.
func (s *Sandbox) deleteFault(id string) *fieldError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteFaults[id]
}

func (s *Sandbox) job(id string) *ingestJob {
	n, ok := normalizeID(id)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[n]
}

// serveCreateJob is POST /jobs/ingest.
func (s *Sandbox) serveCreateJob(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Object              string `json:"object"`
		Operation           string `json:"operation"`
		ContentType         string `json:"contentType"`
		LineEnding          string `json:"lineEnding"`
		ColumnDelimiter     string `json:"columnDelimiter"`
		ExternalIDFieldName string `json:"externalIdFieldName"`
		AssignmentRuleID    string `json:"assignmentRuleId"`
	}
	if err := readJSON(w, r, &body); err != nil {
		writeErr(w, err)
		return
	}
	obj := s.object(body.Object)
	switch {
	case body.Object == "":
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : Required field is missing: object"))
		return
	case obj == nil:
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : Unable to find object: "+body.Object))
		return
	case body.Operation == "":
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : Required field is missing: operation"))
		return
	case !ingestOperations[body.Operation]:
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : Invalid job operation: "+body.Operation))
		return
	case body.Operation != "delete" && body.Operation != "hardDelete":
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : the sandbox runs delete and hardDelete ingest jobs only; use sObject Collections for "+body.Operation))
		return
	case body.ContentType != "" && body.ContentType != "CSV":
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : Invalid contentType: "+body.ContentType))
		return
	}
	if body.LineEnding == "" {
		body.LineEnding = "LF"
	}
	if body.LineEnding != "LF" && body.LineEnding != "CRLF" {
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : Invalid lineEnding: "+body.LineEnding))
		return
	}
	if body.ColumnDelimiter == "" {
		body.ColumnDelimiter = "COMMA"
	}
	if _, ok := columnDelimiters[body.ColumnDelimiter]; !ok {
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOB", "InvalidJob : Invalid columnDelimiter: "+body.ColumnDelimiter))
		return
	}
	s.mu.Lock()
	denied := s.noHardDelete
	s.mu.Unlock()
	if body.Operation == "hardDelete" && denied {
		writeErr(w, jobError(http.StatusBadRequest, "FEATURENOTENABLED", "FeatureNotEnabled : hardDelete requires the Bulk API Hard Delete permission, which an administrator must grant to the user"))
		return
	}
	now := time.Now().UTC()
	j := &ingestJob{
		object: obj.Name, operation: body.Operation, columnDelimiter: body.ColumnDelimiter, lineEnding: body.LineEnding,
		apiVersion: apiVersion(r), state: jobOpen, created: now, modified: now,
	}
	s.mu.Lock()
	s.jobSeq++
	j.id = newID("750", s.jobSeq)
	s.jobs[j.id] = j
	s.jobOrder = append(s.jobOrder, j.id)
	if len(s.jobOrder) > maxJobs {
		if old := s.jobs[s.jobOrder[0]]; old != nil && old.timer != nil {
			old.timer.Stop()
		}
		delete(s.jobs, s.jobOrder[0])
		s.jobOrder = s.jobOrder[1:]
	}
	info := s.jobInfo(j, false)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

// jobInfo renders a job as Salesforce's JobInfo; full adds the processing
// figures that Get Job Info returns. The caller holds s.mu.
func (s *Sandbox) jobInfo(j *ingestJob, full bool) *ordered {
	o := newOrdered()
	o.set("id", j.id)
	o.set("operation", j.operation)
	o.set("object", j.object)
	o.set("createdById", sandboxUserID)
	o.set("createdDate", formatTime(j.created))
	o.set("systemModstamp", formatTime(j.modified))
	o.set("state", j.state)
	o.set("concurrencyMode", "Parallel")
	o.set("contentType", "CSV")
	o.set("apiVersion", float64(versionNumber(j.apiVersion)))
	if full {
		o.set("jobType", "V2Ingest")
	}
	o.set("contentUrl", "services/data/"+j.apiVersion+"/jobs/ingest/"+j.id+"/batches")
	o.set("lineEnding", j.lineEnding)
	o.set("columnDelimiter", j.columnDelimiter)
	if !full {
		return o
	}
	o.set("numberRecordsProcessed", j.processed)
	o.set("numberRecordsFailed", j.failed)
	o.set("retries", 0)
	ms := j.processingTime.Milliseconds()
	o.set("totalProcessingTime", ms)
	o.set("apiActiveProcessingTime", ms)
	o.set("apexProcessingTime", 0)
	if j.state == jobFailed {
		o.set("errorMessage", j.errorMessage)
	}
	return o
}

// serveJobInfo is GET /jobs/ingest/{jobId}.
func (s *Sandbox) serveJobInfo(w http.ResponseWriter, _ *http.Request, id string) {
	j := s.job(id)
	if j == nil {
		writeErr(w, errJobNotFound)
		return
	}
	s.mu.Lock()
	if j.state == jobUploadComplete {
		// Salesforce picks a closed job up for processing on its own.
		j.state = jobInProgress
		j.modified = time.Now().UTC()
	}
	info := s.jobInfo(j, true)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, info)
}

// serveUploadJobData is PUT /jobs/ingest/{jobId}/batches.
func (s *Sandbox) serveUploadJobData(w http.ResponseWriter, r *http.Request, id string) {
	j := s.job(id)
	if j == nil {
		writeErr(w, errJobNotFound)
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, jobError(http.StatusRequestEntityTooLarge, "CLIENTINPUTERROR", "ClientInputError : the job data exceeds the sandbox's upload limit"))
			return
		}
		writeErr(w, jobError(http.StatusBadRequest, "CLIENTINPUTERROR", "ClientInputError : Unable to read the request body"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case j.state != jobOpen:
		writeErr(w, jobError(http.StatusConflict, "INVALIDJOBSTATE", "InvalidJobState : Job with ID "+j.id+" is in state "+j.state+"; data can be uploaded to Open jobs only"))
		return
	case j.uploaded:
		writeErr(w, jobError(http.StatusBadRequest, "BULK_API_ERROR", "Found multiple contents for job: <"+j.id+">, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job."))
		return
	}
	j.data = b
	j.uploaded = true
	j.modified = time.Now().UTC()
	w.WriteHeader(http.StatusCreated)
}

// serveJobState is PATCH /jobs/ingest/{jobId} with {"state": ...}:
// UploadComplete closes an Open job, Aborted aborts an unfinished one.
func (s *Sandbox) serveJobState(w http.ResponseWriter, r *http.Request, id string) {
	var body struct {
		State string `json:"state"`
	}
	if err := readJSON(w, r, &body); err != nil {
		writeErr(w, err)
		return
	}
	j := s.job(id)
	if j == nil {
		writeErr(w, errJobNotFound)
		return
	}
	s.mu.Lock()
	now := time.Now().UTC()
	switch {
	case body.State == jobUploadComplete && j.state == jobOpen:
		j.state = jobUploadComplete
	case body.State == jobAborted && (j.state == jobOpen || j.state == jobUploadComplete || j.state == jobInProgress):
		j.state = jobAborted
		if j.timer != nil {
			j.timer.Stop()
		}
	case body.State == jobUploadComplete || body.State == jobAborted:
		s.mu.Unlock()
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOBSTATE", "InvalidJobState : Job with ID "+j.id+" is in state "+j.state+" and cannot change to "+body.State))
		return
	default:
		s.mu.Unlock()
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOBSTATE", "InvalidJobState : Invalid state: "+body.State+"; use UploadComplete or Aborted"))
		return
	}
	j.modified = now
	info := s.jobInfo(j, false)
	closed := j.state == jobUploadComplete
	delay := s.jobDelay
	if closed && delay > 0 {
		j.timer = time.AfterFunc(delay, func() { s.processJob(j) })
	}
	s.mu.Unlock()
	if closed && delay <= 0 {
		s.processJob(j)
	}
	// The answer shows the state the request set; processing is
	// asynchronous in Salesforce, so clients poll Get Job Info.
	writeJSON(w, http.StatusOK, info)
}

// serveDeleteJob is DELETE /jobs/ingest/{jobId}.
func (s *Sandbox) serveDeleteJob(w http.ResponseWriter, _ *http.Request, id string) {
	j := s.job(id)
	if j == nil {
		writeErr(w, errJobNotFound)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch j.state {
	case jobUploadComplete, jobComplete, jobAborted, jobFailed:
	default:
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOBSTATE", "InvalidJobState : Job with ID "+j.id+" is in state "+j.state+"; only UploadComplete, JobComplete, Aborted or Failed jobs can be deleted"))
		return
	}
	if j.timer != nil {
		j.timer.Stop()
	}
	delete(s.jobs, j.id)
	for i, jid := range s.jobOrder {
		if jid == j.id {
			s.jobOrder = append(s.jobOrder[:i], s.jobOrder[i+1:]...)
			break
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveJobResults is GET /jobs/ingest/{jobId}/successfulResults,
// /failedResults and /unprocessedrecords: CSV with sf__Id and sf__Created,
// sf__Id and sf__Error, or the original columns.
func (s *Sandbox) serveJobResults(w http.ResponseWriter, _ *http.Request, id, kind string) {
	j := s.job(id)
	if j == nil {
		writeErr(w, errJobNotFound)
		return
	}
	s.mu.Lock()
	state := j.state
	header := append([]string(nil), j.header...)
	var rows [][]string
	switch kind {
	case "successfulResults":
		header = append([]string{"sf__Id", "sf__Created"}, header...)
		rows = j.successful
	case "failedResults":
		header = append([]string{"sf__Id", "sf__Error"}, header...)
		rows = j.failures
	default:
		rows = j.skipped
	}
	s.mu.Unlock()
	if kind != "unprocessedrecords" && state != jobComplete && state != jobFailed && state != jobAborted {
		writeErr(w, jobError(http.StatusBadRequest, "INVALIDJOBSTATE", "InvalidJobState : Job with ID "+j.id+" is in state "+state+"; results are available once it has finished"))
		return
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	if len(header) > 0 {
		_ = cw.Write(header)
	}
	_ = cw.WriteAll(rows)
	w.Header().Set("Content-Type", "text/csv")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// ingestRow is one data row of an ingest job: the original values and
// the record ID it names.
type ingestRow struct {
	values []string
	id     string
}

// parseIngestCSV reads a delete or hardDelete job's CSV: a header naming
// the single column Id, then one ID per row. It checks the job's line
// ending as Salesforce does. errMsg is the job's errorMessage when the
// whole upload is unusable.
func parseIngestCSV(data []byte, delimiter, lineEnding, operation string) (header []string, rows []ingestRow, errMsg string) {
	comma, ok := columnDelimiters[delimiter]
	if !ok {
		return nil, nil, "InvalidBatch : Invalid columnDelimiter: " + delimiter
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, "InvalidBatch : Records not processed: the job has no data"
	}
	if lineEnding == "LF" && bytes.Contains(data, []byte("\r\n")) {
		return nil, nil, "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
	}
	if lineEnding == "CRLF" {
		if bytes.Count(data, []byte("\n")) != bytes.Count(data, []byte("\r\n")) {
			return nil, nil, "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is CRLF"
		}
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = comma
	cr.FieldsPerRecord = 0
	cr.ReuseRecord = false
	records, err := cr.ReadAll()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, nil, fmt.Sprintf("InvalidBatch : Failed to parse the CSV data at line %d", pe.Line)
		}
		return nil, nil, "InvalidBatch : Failed to parse the CSV data"
	}
	if len(records) == 0 {
		return nil, nil, "InvalidBatch : Records not processed: the job has no data"
	}
	header = records[0]
	if len(header) != 1 || !strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(header[0], "\ufeff")), "Id") {
		return nil, nil, "InvalidBatch : The '" + operation + "' batch must contain only ids"
	}
	for _, rec := range records[1:] {
		rows = append(rows, ingestRow{values: rec, id: strings.TrimSpace(rec[0])})
	}
	return header, rows, ""
}

// bulkErr renders an error as the sf__Error column: code, message and
// fields separated by colons, "--" for no fields.
func bulkErr(e *fieldError) string {
	fields := "--"
	if len(e.fields) > 0 {
		fields = strings.Join(e.fields, ",")
	}
	return e.code + ":" + e.message + ":" + fields
}

// processJob runs a closed job: each row is its own transaction, so one
// row's failure does not undo the others.
func (s *Sandbox) processJob(j *ingestJob) {
	s.mu.Lock()
	if j.state != jobUploadComplete && j.state != jobInProgress {
		s.mu.Unlock()
		return
	}
	j.state = jobInProgress
	data, delimiter, lineEnding, operation := j.data, j.columnDelimiter, j.lineEnding, j.operation
	s.mu.Unlock()

	start := time.Now()
	header, rows, errMsg := parseIngestCSV(data, delimiter, lineEnding, operation)
	var ok, failed [][]string
	if errMsg == "" {
		obj := s.object(j.object)
		tx, _, done := s.st.begin(context.Background())
		for _, row := range rows {
			id, ferr := s.ingestDelete(tx, obj, row.id, operation == "hardDelete")
			if ferr != nil {
				failed = append(failed, append([]string{id, bulkErr(ferr)}, row.values...))
				continue
			}
			ok = append(ok, append([]string{id, "false"}, row.values...))
		}
		done()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	j.modified = time.Now().UTC()
	j.processingTime = time.Since(start)
	if errMsg != "" {
		j.state = jobFailed
		j.errorMessage = errMsg
		return
	}
	j.header = header
	j.successful, j.failures = ok, failed
	j.processed = len(ok) + len(failed)
	j.failed = len(failed)
	j.state = jobComplete
}

// ingestDelete deletes (or hard-deletes) the record a row names. It
// returns the record's canonical ID when the record exists.
func (s *Sandbox) ingestDelete(tx *txn, obj *objectDef, raw string, hard bool) (string, *fieldError) {
	id, ok := normalizeID(raw)
	if !ok {
		return "", recErr(http.StatusBadRequest, "MALFORMED_ID", "malformed id "+raw)
	}
	if id[:3] != obj.KeyPrefix {
		return "", recErr(http.StatusBadRequest, "MALFORMED_ID", obj.Label+" ID: id value of incorrect type: "+raw, "Id")
	}
	rec := tx.get(id)
	if rec == nil {
		return "", recErr(http.StatusBadRequest, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
	}
	if rec.deleted() {
		return id, recErr(http.StatusBadRequest, "ENTITY_IS_DELETED", "entity is deleted")
	}
	if f := s.deleteFault(id); f != nil {
		return id, f
	}
	s.deleteRecord(tx, rec)
	if hard {
		s.purgeRecord(tx, tx.get(id))
	}
	return id, nil
}

// stopJobs stops the timers of jobs waiting to be processed.
func (s *Sandbox) stopJobs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.jobs {
		if j.timer != nil {
			j.timer.Stop()
		}
	}
}
