package salesforce

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// maxJobIDs is how many IDs one hardDelete job takes. Salesforce splits a
// job into batches of 10,000 records by itself; a data subject has far
// fewer, so this only bounds the upload.
const maxJobIDs = 10000

// Polling of a Bulk API 2.0 job: the first look after a short wait, then
// doubling up to a few seconds. Salesforce processes small jobs within
// seconds; the activity's deadline bounds the whole wait.
const (
	jobPollFirst = 200 * time.Millisecond
	jobPollMax   = 5 * time.Second
)

// jobInfo is the part of Bulk API 2.0's JobInfo the client reads.
type jobInfo struct {
	ID                     string `json:"id"`
	State                  string `json:"state"`
	NumberRecordsProcessed int    `json:"numberRecordsProcessed"`
	NumberRecordsFailed    int    `json:"numberRecordsFailed"`
	ErrorMessage           string `json:"errorMessage"`
}

// codeHardDeleteNotPermitted is Salesforce's error code for a hardDelete
// job of a user without "Bulk API Hard Delete".
const codeHardDeleteNotPermitted = "FEATURENOTENABLED"

// HardDelete deletes records of one object permanently with a Bulk API 2.0
// ingest job (operation hardDelete): they never enter the Recycle Bin and
// cannot be restored. It takes four calls for up to 10,000 IDs (create,
// upload, close, and one look at the job for each poll) and one more when
// some records failed. The results are in the order of ids; a record
// already in the Recycle Bin fails with ENTITY_IS_DELETED, because a hard
// delete cannot reach it (emptyRecycleBin can). Without the "Bulk API Hard
// Delete" permission it returns a Permanent FEATURENOTENABLED error.
func (c *Client) HardDelete(ctx context.Context, sobject string, ids []string) ([]SaveResult, error) {
	out := make([]SaveResult, 0, len(ids))
	for start := 0; start < len(ids); start += maxJobIDs {
		part := ids[start:min(start+maxJobIDs, len(ids))]
		res, err := c.hardDeleteJob(ctx, sobject, part)
		if err != nil {
			return out, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func (c *Client) hardDeleteJob(ctx context.Context, sobject string, ids []string) ([]SaveResult, error) {
	base := c.dataPath() + "/jobs/ingest"
	resp, err := c.do(ctx, request{method: http.MethodPost, path: base, body: map[string]string{
		"object": sobject, "operation": "hardDelete", "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA",
	}})
	if err != nil {
		var ce *crm.Error
		if errors.As(err, &ce) && ce.Code == codeHardDeleteNotPermitted {
			return nil, &crm.Error{Kind: crm.Permanent, Code: codeHardDeleteNotPermitted,
				Message: "the integration user lacks the Bulk API Hard Delete permission; grant it in a permission set (System Permissions), or set salesforce.hard_delete to auto"}
		}
		return nil, err
	}
	var job jobInfo
	if err := json.Unmarshal(resp.body, &job); err != nil || !hasPrefix(job.ID, "750") {
		return nil, badAnswer("create hard delete job")
	}
	jobPath := base + "/" + job.ID
	var csvBody bytes.Buffer
	csvBody.WriteString("Id\n")
	for _, id := range ids {
		csvBody.WriteString(id + "\n")
	}
	if _, err := c.do(ctx, request{method: http.MethodPut, path: jobPath + "/batches", raw: csvBody.Bytes(), contentType: "text/csv"}); err != nil {
		return nil, err
	}
	if _, err := c.do(ctx, request{method: http.MethodPatch, path: jobPath, body: map[string]string{"state": "UploadComplete"}}); err != nil {
		return nil, err
	}
	done, err := c.waitJob(ctx, jobPath)
	if err != nil {
		return nil, err
	}
	switch done.State {
	case "Failed":
		return nil, &crm.Error{Kind: crm.Transient, Code: "BULK_JOB_FAILED", Message: "Salesforce could not process the hard delete job; retrying"}
	case "Aborted":
		return nil, &crm.Error{Kind: crm.Transient, Code: "BULK_JOB_ABORTED", Message: "the hard delete job was aborted in Salesforce; retrying"}
	}
	if done.NumberRecordsProcessed != len(ids) {
		return nil, &crm.Error{Kind: crm.Transient, Code: "BULK_JOB_INCOMPLETE", Message: "Salesforce processed only part of the hard delete job; retrying"}
	}
	failed := map[string]recordError{}
	if done.NumberRecordsFailed > 0 {
		resp, err := c.do(ctx, request{method: http.MethodGet, path: jobPath + "/failedResults/", accept: "text/csv"})
		if err != nil {
			return nil, err
		}
		failed, err = parseFailedResults(resp.body)
		if err != nil || len(failed) != done.NumberRecordsFailed {
			return nil, badAnswer("hard delete job results")
		}
	}
	out := make([]SaveResult, len(ids))
	for i, id := range ids {
		out[i] = SaveResult{ID: id}
		re, ok := failed[id]
		if !ok {
			re, ok = failed[shortID(id)]
		}
		if ok {
			out[i].Err = re.asError()
			out[i].Fields = safeFieldNames(re.Fields)
		}
	}
	return out, nil
}

// waitJob polls a job until it is JobComplete, Failed or Aborted, or ctx
// ends.
func (c *Client) waitJob(ctx context.Context, jobPath string) (jobInfo, error) {
	wait := jobPollFirst
	for {
		resp, err := c.do(ctx, request{method: http.MethodGet, path: jobPath})
		if err != nil {
			return jobInfo{}, err
		}
		var job jobInfo
		if err := json.Unmarshal(resp.body, &job); err != nil {
			return jobInfo{}, badAnswer("hard delete job status")
		}
		switch job.State {
		case "JobComplete", "Failed", "Aborted":
			return job, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return jobInfo{}, &crm.Error{Kind: crm.Transient, Code: "BULK_JOB_RUNNING", Message: "the hard delete job is still running in Salesforce; retrying"}
		case <-t.C:
		}
		wait = min(2*wait, jobPollMax)
	}
}

// parseFailedResults reads a job's failedResults CSV (sf__Id, sf__Error
// and the uploaded Id column) into record errors by ID. sf__Error is
// "CODE:message:fields", fields comma-separated or "--".
func parseFailedResults(body []byte) (map[string]recordError, error) {
	cr := csv.NewReader(bytes.NewReader(body))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, errors.New("no header")
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	errCol, ok := col["sf__error"]
	if !ok {
		return nil, errors.New("no sf__Error column")
	}
	out := map[string]recordError{}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		id := ""
		for _, name := range []string{"id", "sf__id"} {
			if i, ok := col[name]; ok && i < len(row) && isSFID(strings.TrimSpace(row[i])) {
				id = strings.TrimSpace(row[i])
				break
			}
		}
		if id == "" || errCol >= len(row) {
			return nil, errors.New("a failed row names no record")
		}
		out[id] = parseBulkError(row[errCol])
	}
}

// parseBulkError splits sf__Error, "CODE:message:fields". The message is
// kept only for classification (limit names), never shown.
func parseBulkError(s string) recordError {
	code, rest, _ := strings.Cut(s, ":")
	re := recordError{StatusCode: strings.TrimSpace(code)}
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		re.Message = rest[:i]
		if f := strings.TrimSpace(rest[i+1:]); f != "" && f != "--" {
			re.Fields = strings.Split(f, ",")
		}
	} else {
		re.Message = rest
	}
	if !isAPIName(re.StatusCode) {
		re.StatusCode = "UNKNOWN_ERROR"
	}
	return re
}
