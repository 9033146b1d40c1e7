package sfsandbox

import (
	"encoding/csv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jobReply is the part of Bulk API 2.0's JobInfo the tests read.
type jobReply struct {
	ID                     string `json:"id"`
	State                  string `json:"state"`
	Operation              string `json:"operation"`
	Object                 string `json:"object"`
	ContentURL             string `json:"contentUrl"`
	NumberRecordsProcessed int    `json:"numberRecordsProcessed"`
	NumberRecordsFailed    int    `json:"numberRecordsFailed"`
	ErrorMessage           string `json:"errorMessage"`
}

// createJob creates an ingest job and returns its info.
func (e *env) createJob(object, operation string) jobReply {
	e.t.Helper()
	r := e.do("POST", v+"/jobs/ingest", map[string]any{"object": object, "operation": operation, "contentType": "CSV", "lineEnding": "LF"})
	e.expect(r, 200, "")
	var j jobReply
	r.json(e.t, &j)
	if j.State != "Open" || j.Operation != operation || j.Object != object || !strings.HasPrefix(j.ID, "750") {
		e.t.Fatalf("created job %+v", j)
	}
	if j.ContentURL != "services/data/v62.0/jobs/ingest/"+j.ID+"/batches" {
		e.t.Fatalf("contentUrl %q", j.ContentURL)
	}
	return j
}

// runJob uploads csv to a new job, closes it and returns its final info.
func (e *env) runJob(object, operation, data string) jobReply {
	e.t.Helper()
	j := e.createJob(object, operation)
	e.expect(e.do("PUT", v+"/jobs/ingest/"+j.ID+"/batches", data, "Content-Type", "text/csv"), 201, "")
	r := e.do("PATCH", v+"/jobs/ingest/"+j.ID, map[string]any{"state": "UploadComplete"})
	e.expect(r, 200, "")
	var closed jobReply
	r.json(e.t, &closed)
	if closed.State != "UploadComplete" {
		e.t.Fatalf("closing answered state %q", closed.State)
	}
	return e.jobInfo(j.ID)
}

func (e *env) jobInfo(id string) jobReply {
	e.t.Helper()
	r := e.do("GET", v+"/jobs/ingest/"+id, nil)
	e.expect(r, 200, "")
	var j jobReply
	r.json(e.t, &j)
	return j
}

// results reads a job's result CSV.
func (e *env) results(id, kind string) [][]string {
	e.t.Helper()
	r := e.do("GET", v+"/jobs/ingest/"+id+"/"+kind+"/", nil)
	e.expect(r, 200, "")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		e.t.Fatalf("%s content type %q", kind, ct)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body + "\n")).ReadAll()
	if err != nil {
		e.t.Fatalf("%s is not CSV: %v\n%s", kind, err, r.body)
	}
	return rows
}

// queryAllIDs returns the IDs queryAll finds for soql, with IsDeleted.
func (e *env) queryAllIDs(soql string) map[string]bool {
	e.t.Helper()
	r := e.do("GET", v+"/queryAll?q="+q(soql), nil)
	e.expect(r, 200, "")
	var out struct {
		Records []map[string]any `json:"records"`
	}
	r.json(e.t, &out)
	ids := map[string]bool{}
	for _, rec := range out.Records {
		deleted, _ := rec["IsDeleted"].(bool)
		ids[rec["Id"].(string)] = deleted
	}
	return ids
}

func TestBulkHardDeleteRemovesRecordsForGood(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, Options{DataDir: dir})
	keep := e.create("Contact", map[string]any{"LastName": "Keep", "Email": "keep@example.nl"})
	gone := e.create("Contact", map[string]any{"LastName": "Gone", "Email": "gone.forever@example.nl"})
	persona := e.create("SocialPersona", map[string]any{"Name": "gone_x", "Provider": "Twitter", "ParentId": gone})
	binned := e.create("Contact", map[string]any{"LastName": "Binned"})
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+binned, nil), 204, "")
	unknown := newID("003", 9999)

	j := e.runJob("Contact", "hardDelete", "Id\n"+gone+"\n"+binned+"\n"+unknown+"\n")
	if j.State != "JobComplete" || j.NumberRecordsProcessed != 3 || j.NumberRecordsFailed != 2 {
		t.Fatalf("job %+v", j)
	}
	ok := e.results(j.ID, "successfulResults")
	if len(ok) != 2 || strings.Join(ok[0], ",") != "sf__Id,sf__Created,Id" || ok[1][0] != gone || ok[1][1] != "false" {
		t.Errorf("successfulResults %v", ok)
	}
	failed := e.results(j.ID, "failedResults")
	byID := map[string]string{}
	for _, row := range failed[1:] {
		byID[row[2]] = row[1]
	}
	if strings.Join(failed[0], ",") != "sf__Id,sf__Error,Id" || len(failed) != 3 ||
		byID[binned] != "ENTITY_IS_DELETED:entity is deleted:--" ||
		byID[unknown] != "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--" {
		t.Errorf("failedResults %v", failed)
	}
	// A hard delete skips the Recycle Bin: queryAll no longer sees the
	// contact nor the persona its delete cascaded to; the record that was
	// already in the Recycle Bin stays there (hardDelete cannot reach it).
	all := e.queryAllIDs("SELECT Id, IsDeleted FROM Contact")
	if _, ok := all[gone]; ok || !all[binned] || all[keep] {
		t.Errorf("queryAll after the hard delete: %v", all)
	}
	if ps := e.queryAllIDs("SELECT Id, IsDeleted FROM SocialPersona"); len(ps) != 0 {
		t.Errorf("the cascaded persona %s survived: %v", persona, ps)
	}
	e.expect(e.do("GET", v+"/sobjects/Contact/"+gone, nil), 404, "")
	if err := e.sb.Close(); err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(filepath.Join(dir, "sfsandbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(snap), "gone.forever@example.nl") || strings.Contains(string(snap), gone) {
		t.Error("the hard-deleted contact is still in the snapshot on disk")
	}
	if !strings.Contains(string(snap), "keep@example.nl") {
		t.Error("the snapshot lost the contact that was kept")
	}
}

func TestBulkSoftDeleteGoesToTheRecycleBin(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.create("Contact", map[string]any{"LastName": "Soft"})
	j := e.runJob("Contact", "delete", "Id\n"+id+"\n")
	if j.State != "JobComplete" || j.NumberRecordsProcessed != 1 || j.NumberRecordsFailed != 0 {
		t.Fatalf("job %+v", j)
	}
	if all := e.queryAllIDs("SELECT Id, IsDeleted FROM Contact"); !all[id] {
		t.Errorf("queryAll %v, want the contact with IsDeleted true", all)
	}
	if n := len(e.sb.Records("Contact")); n != 0 {
		t.Errorf("Records lists %d deleted contacts", n)
	}
	if recs := e.sb.AllRecords("Contact"); len(recs) != 1 || recs[0]["IsDeleted"] != true {
		t.Errorf("AllRecords %v", recs)
	}
	var page struct {
		TotalSize int `json:"totalSize"`
	}
	e.do("GET", v+"/query?q="+q("SELECT Id FROM Contact"), nil).json(t, &page)
	if page.TotalSize != 0 {
		t.Errorf("query sees %d deleted contacts", page.TotalSize)
	}
}

func TestBulkHardDeleteWithoutPermission(t *testing.T) {
	e := newEnv(t, Options{NoBulkHardDelete: true})
	r := e.do("POST", v+"/jobs/ingest", map[string]any{"object": "Contact", "operation": "hardDelete"})
	e.expect(r, 400, `[{"message":"FeatureNotEnabled : hardDelete requires the Bulk API Hard Delete permission, which an administrator must grant to the user","errorCode":"FEATURENOTENABLED"}]`)
	// A soft delete needs no special permission.
	e.createJob("Contact", "delete")
	e.sb.SetBulkHardDelete(true)
	e.createJob("Contact", "hardDelete")
	e.expect(e.do("POST", "/_sandbox/permissions?bulk_hard_delete=false", nil), 200, "")
	e.expect(e.do("POST", v+"/jobs/ingest", map[string]any{"object": "Contact", "operation": "hardDelete"}), 400, "")
}

func TestBulkJobErrors(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.create("Contact", map[string]any{"LastName": "X"})
	for _, c := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"no object", map[string]any{"operation": "delete"}, "INVALIDJOB"},
		{"unknown object", map[string]any{"object": "Nope", "operation": "delete"}, "INVALIDJOB"},
		{"bad operation", map[string]any{"object": "Contact", "operation": "destroy"}, "INVALIDJOB"},
		{"insert", map[string]any{"object": "Contact", "operation": "insert"}, "INVALIDJOB"},
		{"bad delimiter", map[string]any{"object": "Contact", "operation": "delete", "columnDelimiter": "SPACE"}, "INVALIDJOB"},
		{"bad line ending", map[string]any{"object": "Contact", "operation": "delete", "lineEnding": "CR"}, "INVALIDJOB"},
	} {
		r := e.do("POST", v+"/jobs/ingest", c.body)
		if r.status != 400 || !strings.Contains(r.body, `"errorCode":"`+c.want+`"`) {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
	e.expect(e.do("GET", v+"/jobs/ingest/"+newID("750", 777), nil), 404, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`)

	j := e.createJob("Contact", "hardDelete")
	e.expect(e.do("GET", v+"/jobs/ingest/"+j.ID+"/successfulResults", nil), 400, "")
	e.expect(e.do("DELETE", v+"/jobs/ingest/"+j.ID, nil), 400, "")
	e.expect(e.do("PUT", v+"/jobs/ingest/"+j.ID+"/batches", "Id\n"+id+"\n", "Content-Type", "text/csv"), 201, "")
	r := e.do("PUT", v+"/jobs/ingest/"+j.ID+"/batches", "Id\n"+id+"\n", "Content-Type", "text/csv")
	if r.status != 400 || !strings.Contains(r.body, "BULK_API_ERROR") {
		t.Errorf("second upload: %d %s", r.status, r.body)
	}
	e.expect(e.do("PATCH", v+"/jobs/ingest/"+j.ID, map[string]any{"state": "Closed"}), 400, "")
	e.expect(e.do("PATCH", v+"/jobs/ingest/"+j.ID, map[string]any{"state": "Aborted"}), 200, "")
	if got := e.jobInfo(j.ID); got.State != "Aborted" {
		t.Errorf("aborted job %+v", got)
	}
	if len(e.sb.Records("Contact")) != 1 {
		t.Error("an aborted job deleted the contact")
	}
	e.expect(e.do("PUT", v+"/jobs/ingest/"+j.ID+"/batches", "Id\n", "Content-Type", "text/csv"), 409, "")
	e.expect(e.do("DELETE", v+"/jobs/ingest/"+j.ID, nil), 204, "")
	e.expect(e.do("GET", v+"/jobs/ingest/"+j.ID, nil), 404, "")

	for _, c := range []struct{ name, data, want string }{
		{"more columns", "Id,LastName\n" + id + ",X\n", "InvalidBatch : The 'hardDelete' batch must contain only ids"},
		{"wrong column", "Name\nX\n", "InvalidBatch : The 'hardDelete' batch must contain only ids"},
		{"CRLF in an LF job", "Id\r\n" + id + "\r\n", "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"},
		{"empty", "", "InvalidBatch : Records not processed: the job has no data"},
	} {
		got := e.runJob("Contact", "hardDelete", c.data)
		if got.State != "Failed" || got.ErrorMessage != c.want {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
	if len(e.sb.Records("Contact")) != 1 {
		t.Error("a failed job deleted the contact")
	}
	bad := e.runJob("Contact", "hardDelete", "Id\nnot-an-id\n"+newID("500", 1)+"\n")
	rows := e.results(bad.ID, "failedResults")
	if bad.NumberRecordsFailed != 2 || len(rows) != 3 || !strings.HasPrefix(rows[1][1], "MALFORMED_ID:") || !strings.HasPrefix(rows[2][1], "MALFORMED_ID:") {
		t.Errorf("malformed ids: %+v %v", bad, rows)
	}
}

func TestBulkJobIsInProgressUntilProcessed(t *testing.T) {
	e := newEnv(t, Options{BulkJobDelay: time.Hour})
	id := e.create("Contact", map[string]any{"LastName": "Later"})
	j := e.runJob("Contact", "hardDelete", "Id\n"+id+"\n")
	if j.State != "InProgress" {
		t.Fatalf("state %q while the job waits, want InProgress", j.State)
	}
	if len(e.sb.Records("Contact")) != 1 {
		t.Fatal("the job ran before it was processed")
	}
	e.expect(e.do("GET", v+"/jobs/ingest/"+j.ID+"/failedResults", nil), 400, "")
	// Processing now (the timer's work, run by the test) completes it.
	e.sb.processJob(e.sb.job(j.ID))
	if got := e.jobInfo(j.ID); got.State != "JobComplete" || got.NumberRecordsProcessed != 1 {
		t.Errorf("after processing %+v", got)
	}
	if len(e.sb.AllRecords("Contact")) != 0 {
		t.Error("the contact survived the processed job")
	}
}

func TestFailDeleteRefusesEveryDeletePath(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.create("Contact", map[string]any{"LastName": "Bound"})
	e.sb.FailDelete(id, "DELETE_FAILED", "Your attempt to delete Bound could not be completed because it is associated with the following orders.")
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+id, nil), 400, "")
	var items []struct {
		Success bool `json:"success"`
		Errors  []struct {
			StatusCode string `json:"statusCode"`
		} `json:"errors"`
	}
	e.do("DELETE", v+"/composite/sobjects?ids="+id, nil).json(t, &items)
	if len(items) != 1 || items[0].Success || items[0].Errors[0].StatusCode != "DELETE_FAILED" {
		t.Errorf("collection delete %+v", items)
	}
	j := e.runJob("Contact", "hardDelete", "Id\n"+id+"\n")
	rows := e.results(j.ID, "failedResults")
	if j.NumberRecordsFailed != 1 || !strings.HasPrefix(rows[1][1], "DELETE_FAILED:") || rows[1][0] != id {
		t.Errorf("bulk %+v %v", j, rows)
	}
	e.sb.FailDelete(id, "", "")
	e.expect(e.do("DELETE", v+"/sobjects/Contact/"+id, nil), 204, "")
}

func TestParseIngestCSV(t *testing.T) {
	id := newID("003", 1)
	for _, c := range []struct {
		name, data, delim, ending string
		rows                      int
		err                       string
	}{
		{"lf", "Id\n" + id + "\n" + id + "\n", "COMMA", "LF", 2, ""},
		{"crlf", "Id\r\n" + id + "\r\n", "COMMA", "CRLF", 1, ""},
		{"lf in crlf job", "Id\r\n" + id + "\n", "COMMA", "CRLF", 0, "ClientInputError"},
		{"quoted", "\"Id\"\n\"" + id + "\"\n", "COMMA", "LF", 1, ""},
		{"bom", "\ufeffId\n" + id + "\n", "COMMA", "LF", 1, ""},
		{"pipe", "ID\n" + id + "\n", "PIPE", "LF", 1, ""},
		{"header only", "Id\n", "COMMA", "LF", 0, ""},
		{"ragged", "Id\n" + id + ",x\n", "COMMA", "LF", 0, "InvalidBatch"},
		{"bad quote", "Id\n\"" + id + "\n", "COMMA", "LF", 0, "InvalidBatch"},
		{"unknown delimiter", "Id\n", "SPACE", "LF", 0, "InvalidBatch"},
	} {
		_, rows, msg := parseIngestCSV([]byte(c.data), c.delim, c.ending, "delete")
		if len(rows) != c.rows || (c.err == "") != (msg == "") || !strings.HasPrefix(msg, c.err) {
			t.Errorf("%s: %d rows, %q", c.name, len(rows), msg)
		}
		for _, r := range rows {
			if r.id != id {
				t.Errorf("%s: id %q", c.name, r.id)
			}
		}
	}
}

func TestBulkCallsAreCountedAndLimited(t *testing.T) {
	e := newEnv(t, Options{})
	e.sb.ResetCounters()
	j := e.runJob("Contact", "delete", "Id\n")
	calls := e.sb.Calls()
	for _, k := range []string{"POST /services/data/vXX.X/jobs/ingest", "PUT /services/data/vXX.X/jobs/ingest/{jobId}/batches",
		"PATCH /services/data/vXX.X/jobs/ingest/{jobId}", "GET /services/data/vXX.X/jobs/ingest/{jobId}"} {
		if calls[k] != 1 {
			t.Errorf("%s counted %d times (calls %v)", k, calls[k], calls)
		}
	}
	e.sb.ExhaustBudget()
	r := e.do("GET", v+"/jobs/ingest/"+j.ID, nil)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "REQUEST_LIMIT_EXCEEDED") {
		t.Errorf("with the budget gone: %d %s", r.status, r.body)
	}
}

func TestBulkJobsAreNotCompositeSubrequests(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.do("POST", v+"/composite", map[string]any{"compositeRequest": []map[string]any{
		{"method": "POST", "url": v + "/jobs/ingest", "referenceId": "job", "body": map[string]any{"object": "Contact", "operation": "hardDelete"}},
	}})
	if r.status != 200 || !strings.Contains(r.body, `"httpStatusCode":400`) || !strings.Contains(r.body, "INVALID_INPUT") {
		t.Errorf("composite with a job: %d %s", r.status, r.body)
	}
}
