package sfsandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const (
	testClientID     = "test-client"
	testClientSecret = "test-secret"
	v                = "/services/data/v62.0"
)

// env is a sandbox behind an httptest server with a session.
type env struct {
	t     *testing.T
	sb    *Sandbox
	srv   *httptest.Server
	token string
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	opts.ClientID, opts.ClientSecret = testClientID, testClientSecret
	opts.CustomFields = append([]CustomField{
		{Object: "Contact", Name: "webcaresync_Id__c", ExternalID: true, Unique: true},
		{Object: "Case", Name: "webcaresync_Id__c", ExternalID: true, Unique: true},
		{Object: "SocialPersona", Name: "webcaresync_Id__c", ExternalID: true, Unique: true},
		{Object: "SocialPost", Name: "webcaresync_Id__c", ExternalID: true, Unique: true},
		{Object: "Account", Name: "Legacy_Key__c", ExternalID: true},
	}, opts.CustomFields...)
	sb, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := sb.Close(); err != nil {
			t.Error(err)
		}
	})
	e := &env{t: t, sb: sb, srv: srv}
	e.token = e.login()
	return e
}

// with returns the env reporting to a subtest's t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func (e *env) login() string {
	e.t.Helper()
	resp, err := http.PostForm(e.srv.URL+"/services/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tr) != nil || tr.AccessToken == "" {
		e.t.Fatalf("login: status %d", resp.StatusCode)
	}
	return tr.AccessToken
}

type reply struct {
	status int
	body   string
	header http.Header
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (e *env) do(method, path string, body any, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: strings.TrimSpace(string(b)), header: resp.Header}
}

// expect asserts the status and, when body is not empty, the exact body.
func (e *env) expect(r reply, status int, body string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if body != "" && r.body != body {
		e.t.Fatalf("body\n got %s\nwant %s", r.body, body)
	}
}

// create creates a record and returns its ID.
func (e *env) create(object string, fields map[string]any) string {
	e.t.Helper()
	r := e.do("POST", v+"/sobjects/"+object, fields)
	e.expect(r, 201, "")
	var out struct{ ID string }
	r.json(e.t, &out)
	return out.ID
}

func q(s string) string { return url.QueryEscape(s) }
