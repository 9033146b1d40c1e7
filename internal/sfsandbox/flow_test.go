package sfsandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestDocumentedFlow uses nothing but net/http and Salesforce's documented
// REST flow: OAuth token, versions, describe, upsert, query and
// nextRecordsUrl paging. No sandbox-specific call is made.
func TestDocumentedFlow(t *testing.T) {
	sb, err := New(Options{ClientID: "cid", ClientSecret: "csecret", CustomFields: []CustomField{{Object: "Contact", Name: "Ext_Id__c", ExternalID: true, Unique: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	login := srv.URL // what a real client would call https://login.salesforce.com

	call := func(method, u, token string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, u, rd)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sforce-Query-Options", "batchSize=200")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Sforce-Limit-Info") == "" && strings.Contains(u, "/services/data/v") {
			t.Errorf("%s %s: no Sforce-Limit-Info", method, u)
		}
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}

	// 1. OAuth 2.0 client credentials flow.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {"csecret"}}
	resp, err := http.Post(login+"/services/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" || tok.InstanceURL == "" {
		t.Fatal("no token")
	}

	// 2. Pick the newest API version.
	var versions []struct{ URL string }
	if call("GET", tok.InstanceURL+"/services/data/", "", nil, &versions) != 200 || len(versions) == 0 {
		t.Fatal("versions")
	}
	base := tok.InstanceURL + versions[len(versions)-1].URL

	// 3. Describe Contact and find its external ID field.
	var desc struct {
		Fields []struct {
			Name       string
			ExternalID bool `json:"externalId"`
		}
	}
	if call("GET", base+"/sobjects/Contact/describe", tok.AccessToken, nil, &desc) != 200 {
		t.Fatal("describe")
	}
	ext := ""
	for _, f := range desc.Fields {
		if f.ExternalID {
			ext = f.Name
		}
	}
	if ext != "Ext_Id__c" {
		t.Fatalf("external ID field %q", ext)
	}

	// 4. Upsert 250 contacts by external ID, then update one.
	for i := 0; i < 250; i++ {
		var res struct{ Created bool }
		if st := call("PATCH", fmt.Sprintf("%s/sobjects/Contact/%s/k%03d", base, ext, i), tok.AccessToken, map[string]any{"LastName": fmt.Sprintf("L%03d", i)}, &res); st != 201 || !res.Created {
			t.Fatalf("upsert %d: %d", i, st)
		}
	}
	var res struct{ Created bool }
	if st := call("PATCH", base+"/sobjects/Contact/"+ext+"/k007", tok.AccessToken, map[string]any{"FirstName": "Zeven"}, &res); st != 200 || res.Created {
		t.Fatalf("second upsert: %d", st)
	}

	// 5. Query and follow nextRecordsUrl.
	type page struct {
		TotalSize      int
		Done           bool
		NextRecordsURL string
		Records        []struct{ LastName, FirstName string }
	}
	var p page
	if call("GET", base+"/query?q="+url.QueryEscape("SELECT LastName, FirstName FROM Contact ORDER BY LastName"), tok.AccessToken, nil, &p) != 200 {
		t.Fatal("query")
	}
	got := len(p.Records)
	for !p.Done {
		next := p.NextRecordsURL
		p = page{}
		if call("GET", tok.InstanceURL+next, tok.AccessToken, nil, &p) != 200 {
			t.Fatal("nextRecordsUrl")
		}
		got += len(p.Records)
	}
	if got != 250 || p.TotalSize != 250 {
		t.Fatalf("paged %d of %d", got, p.TotalSize)
	}
	if sb.Calls()["PATCH /services/data/vXX.X/sobjects/Contact/{field}/{value}"] != 251 {
		t.Errorf("calls %v", sb.Calls())
	}
}
