package platformtest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// recTB records Errorf calls instead of failing, to test that the fakes
// flag unexpected requests.
type recTB struct {
	testing.TB
	errs []string
}

func (r *recTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func do(t *testing.T, method, url, contentType, body, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestXFake(t *testing.T) {
	rec := &recTB{TB: t}
	url, s := NewX(rec)
	s.AddPost("1", XPost{ByBrand: true})
	s.AddPost("2", XPost{InBrandConversation: true})
	bearer := "Bearer " + XToken

	if code, _ := do(t, "DELETE", url+"/2/tweets/1", "", "", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, body := do(t, "DELETE", url+"/2/tweets/1", "", "", bearer); code != 200 || body != `{"data":{"deleted":true}}` {
		t.Errorf("delete: %d %s", code, body)
	}
	if code, body := do(t, "DELETE", url+"/2/tweets/1", "", "", bearer); code != 404 || !strings.Contains(body, "resource-not-found") {
		t.Errorf("delete again: %d %s", code, body)
	}
	if code, _ := do(t, "PUT", url+"/2/tweets/2/hidden", "application/json", `{}`, bearer); code != 400 {
		t.Errorf("hide without hidden: %d, want 400", code)
	}
	if code, body := do(t, "PUT", url+"/2/tweets/2/hidden", "application/json", `{"hidden":true}`, bearer); code != 200 || body != `{"data":{"hidden":true}}` {
		t.Errorf("hide: %d %s", code, body)
	}
	if code, _ := do(t, "DELETE", url+"/2/tweets/abc", "", "", bearer); code != 400 {
		t.Errorf("bad id: %d, want 400", code)
	}
	if len(rec.errs) != 0 {
		t.Errorf("documented requests flagged: %v", rec.errs)
	}
	do(t, "POST", url+"/2/tweets/2", "", "", bearer)
	if len(rec.errs) != 1 {
		t.Errorf("undocumented request flagged %d times, want 1", len(rec.errs))
	}
	if got := s.DeletedPosts(); len(got) != 1 || got[0] != "1" {
		t.Errorf("deleted = %v", got)
	}
	if got := s.HiddenPosts(); len(got) != 1 || got[0] != "2" {
		t.Errorf("hidden = %v", got)
	}
	if n := len(s.Calls()); n != 7 {
		t.Errorf("recorded %d calls, want 7", n)
	}
}

func TestMetaFake(t *testing.T) {
	rec := &recTB{TB: t}
	url, s := NewMeta(rec)
	s.AddComment("1_2", MetaComment{})
	s.AddComment("3", MetaComment{Instagram: true})

	if code, body := do(t, "DELETE", url+"/v23.0/1_2?access_token=wrong", "", "", ""); code != 400 || !strings.Contains(body, `"code":190`) {
		t.Errorf("bad token: %d %s", code, body)
	}
	form := "application/x-www-form-urlencoded"
	if code, body := do(t, "POST", url+"/v23.0/3", form, "access_token="+MetaToken+"&is_hidden=true", ""); code != 400 || !strings.Contains(body, `"code":100`) {
		t.Errorf("IG hide with is_hidden: %d %s", code, body)
	}
	if code, body := do(t, "POST", url+"/v23.0/3", form, "access_token="+MetaToken+"&hide=true", ""); code != 200 || body != `{"success":true}` {
		t.Errorf("IG hide: %d %s", code, body)
	}
	if code, body := do(t, "DELETE", url+"/v23.0/1_2?access_token="+MetaToken, "", "", ""); code != 200 || body != `{"success":true}` {
		t.Errorf("delete: %d %s", code, body)
	}
	if code, body := do(t, "DELETE", url+"/v23.0/1_2?access_token="+MetaToken, "", "", ""); code != 400 || !strings.Contains(body, `"error_subcode":33`) {
		t.Errorf("delete again: %d %s", code, body)
	}
	if len(rec.errs) != 0 {
		t.Errorf("documented requests flagged: %v", rec.errs)
	}
	do(t, "GET", url+"/v23.0/3?access_token="+MetaToken, "", "", "")
	do(t, "DELETE", url+"/3?access_token="+MetaToken, "", "", "")
	if len(rec.errs) != 2 {
		t.Errorf("undocumented requests flagged %d times, want 2", len(rec.errs))
	}
	if got := s.DeletedComments(); len(got) != 1 || got[0] != "1_2" {
		t.Errorf("deleted = %v", got)
	}
	if got := s.HiddenComments(); len(got) != 1 || got[0] != "3" {
		t.Errorf("hidden = %v", got)
	}
	for _, c := range s.Calls() {
		for k := range c.Params {
			if k == "access_token" {
				t.Errorf("call %s records the token", c)
			}
		}
	}
}
