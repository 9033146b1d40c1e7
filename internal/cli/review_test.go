package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReviewUnlinkPostsToTheConversation runs `review unlink` against a
// server that records the call: it posts to the conversation's unlink
// endpoint with the token, and an answer of 404 or 409 fails the command.
func TestReviewUnlinkPostsToTheConversation(t *testing.T) {
	var got []string
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"status":"unlinking"}`))
	}))
	defer srv.Close()
	t.Setenv("WEBCARESYNC_API_TOKEN", "tok-1")
	run := func() (int, string) {
		var out, errOut bytes.Buffer
		code := Execute(context.Background(), []string{"review", "unlink", "conv-abc", "--data-dir", t.TempDir(), "--server", srv.URL}, &out, &errOut)
		return code, errOut.String()
	}
	if code, errOut := run(); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(got) != 1 || got[0] != "POST /v1/conversations/conv-abc/unlink Bearer tok-1" {
		t.Fatalf("calls %v", got)
	}
	for _, s := range []int{http.StatusNotFound, http.StatusConflict} {
		status = s
		if code, _ := run(); code == 0 {
			t.Errorf("the command succeeded on %d", s)
		}
	}
	var out, errOut bytes.Buffer
	if code := Execute(context.Background(), []string{"review", "unlink", "--server", srv.URL}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "arg") {
		t.Errorf("unlink without a conversation id: exit %d, %q", code, errOut.String())
	}
}
