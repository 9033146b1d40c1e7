package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/internal/channels/generic"
	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/samples"
)

// TestSamplesSendSignsWithTheDevSecrets posts the samples to a server that
// verifies them with the data dir's dev secrets, as `webcaresync dev` does,
// and counts what arrived per channel.
func TestSamplesSendSignsWithTheDevSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.DataDir = dir
	if _, _, err := config.EnsureDevSecrets(&cfg); err != nil {
		t.Fatal(err)
	}
	byName := map[string]channels.Channel{}
	for _, c := range []channels.Channel{
		meta.New(cfg.MetaAppSecret, cfg.MetaVerifyToken), x.New(cfg.XConsumerSecret), generic.New(cfg.GenericSecret, time.Now),
	} {
		byName[c.Name()] = c
	}
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/webhooks/")
		c, ok := byName[name]
		body, _ := io.ReadAll(r.Body)
		if !ok || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if err := c.Verify(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got[name]++
		mu.Unlock()
	}))
	defer srv.Close()

	want := map[string]int{}
	for _, conv := range samples.Conversations() {
		for _, p := range conv.Payloads {
			want[p.Channel]++
		}
	}
	var out, errOut bytes.Buffer
	if code := Execute(context.Background(), []string{"samples", "send", "--data-dir", dir, "--server", srv.URL}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for ch, n := range want {
		if got[ch] != n {
			t.Errorf("%s: %d verified webhooks, want %d", ch, got[ch], n)
		}
	}

	// Without dev secrets the command says where they should be, and
	// creates none.
	empty := t.TempDir()
	errOut.Reset()
	if code := Execute(context.Background(), []string{"samples", "send", "--data-dir", empty, "--server", srv.URL}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "webcaresync dev") {
		t.Fatalf("samples send without dev secrets: exit %d, %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(empty, "dev-secrets.json")); err == nil {
		t.Fatal("samples send created dev secrets")
	}

	// Secrets from another data dir are refused, and the command says so.
	other := t.TempDir()
	otherCfg := config.Defaults()
	otherCfg.DataDir = other
	if _, _, err := config.EnsureDevSecrets(&otherCfg); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := Execute(context.Background(), []string{"samples", "send", "--data-dir", other, "--server", srv.URL}, &out, &errOut); code == 0 {
		t.Fatal("samples send with another data dir's secrets succeeded")
	}
	if !strings.Contains(errOut.String(), "401") || !strings.Contains(errOut.String(), "--data-dir") {
		t.Fatalf("error does not say what to fix: %s", errOut.String())
	}
}
