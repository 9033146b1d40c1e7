package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webcaresync/webcaresync/internal/privacy"
)

// TestServeWithUnreachableTemporalExitsWithOneLine starts `serve` with a
// production configuration (every secret given) against a Temporal address
// where nothing listens: it exits non-zero with one line that names the
// address and what to set, and prints no secret and no stack trace.
func TestServeWithUnreachableTemporalExitsWithOneLine(t *testing.T) {
	dir := t.TempDir()
	masterKey, pepper := filepath.Join(dir, "master.key"), filepath.Join(dir, "pepper.key")
	if err := privacy.GenerateMasterKeyFile(masterKey); err != nil {
		t.Fatal(err)
	}
	if err := privacy.GeneratePepperFile(pepper); err != nil {
		t.Fatal(err)
	}
	dead := closedAddr(t)
	secrets := map[string]string{
		"WEBCARESYNC_META_APP_SECRET":   "meta-app-secret-3f9a",
		"WEBCARESYNC_META_VERIFY_TOKEN": "meta-verify-token-77c1",
		"WEBCARESYNC_X_CONSUMER_SECRET": "x-consumer-secret-0d2e",
		"WEBCARESYNC_GENERIC_SECRET":    "generic-secret-a81b",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("WEBCARESYNC_DATA_DIR", dir)
	t.Setenv("WEBCARESYNC_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("WEBCARESYNC_TEMPORAL_ADDRESS", dead)
	t.Setenv("WEBCARESYNC_MASTER_KEY_FILE", masterKey)
	t.Setenv("WEBCARESYNC_PEPPER_FILE", pepper)
	t.Setenv("WEBCARESYNC_DATABASE_URL", "")
	t.Setenv("WEBCARESYNC_LOG_LEVEL", "error")
	// Run from the temp dir so that no ./webcaresync.yaml is picked up.
	t.Chdir(dir)

	var out, errOut bytes.Buffer
	code := Execute(context.Background(), []string{"serve"}, &out, &errOut)
	if code == 0 {
		t.Fatalf("serve against an unreachable Temporal exited 0; stderr %q", errOut.String())
	}
	msg := strings.TrimRight(errOut.String(), "\n")
	if lines := strings.Split(msg, "\n"); len(lines) != 1 {
		t.Fatalf("want one line on stderr, got %d:\n%s", len(lines), msg)
	}
	for _, want := range []string{"webcaresync: ", "cannot reach Temporal at " + dead, "WEBCARESYNC_TEMPORAL_ADDRESS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q does not say %q", msg, want)
		}
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:", "\t"} {
		if strings.Contains(msg, bad) {
			t.Errorf("stderr %q looks like a stack trace (%q)", msg, bad)
		}
	}
	for _, v := range secrets {
		if strings.Contains(msg+out.String(), v) {
			t.Errorf("a secret was printed: %q", msg)
		}
	}
	if out.Len() != 0 {
		t.Errorf("stdout should be empty, got %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "dev-secrets.json")); err == nil {
		t.Error("serve generated dev secrets; production takes them from the environment only")
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
