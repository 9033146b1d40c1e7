package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/cli"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/privacy"
)

// openKeys opens the store and keyring of dir with the given master key
// file, as `webcaresync keys` does.
func openKeys(t *testing.T, dir, dbURL, keyFile string) *app.Keys {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir, cfg.DatabaseURL, cfg.Secrets.MasterKeyFile = dir, dbURL, keyFile
	k, err := app.OpenKeys(context.Background(), cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keepOnly rewrites a master key file to hold only the key with this ID.
func keepOnly(t *testing.T, src, dst, id string) {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, id+" ") {
			keep = append(keep, line)
		}
	}
	if len(keep) != 1 {
		t.Fatalf("master key %s not found in %s", id, src)
	}
	if err := os.WriteFile(dst, []byte(strings.Join(keep, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// decodeText decodes an encrypted payload with a keyring and returns its
// string value, or the erased marker's JSON.
func decodeText(k *app.Keys, p *commonpb.Payload) (string, error) {
	out, err := privacy.NewCodec(k.Keyring).Decode([]*commonpb.Payload{p})
	if err != nil {
		return "", err
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(out[0], &s); err != nil {
		return string(out[0].GetData()), nil
	}
	return s, nil
}

// TestKeysRotate encrypts data under an old master key, adds a new one,
// runs `webcaresync keys rotate` and then reads the data with only the new
// master key configured; an erased subject stays erased, and a second
// rotation rewraps nothing. It runs on PostgreSQL when
// WEBCARESYNC_TEST_POSTGRES is set.
func TestKeysRotate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbURL := databaseURL(t)
	keyFile := filepath.Join(dir, "master.key")
	if err := privacy.GenerateMasterKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}

	k := openKeys(t, dir, dbURL, keyFile)
	oldID := k.MasterKeys.ActiveID()
	dc := converter.GetDefaultDataConverter()
	texts := map[string]string{}
	sealed := map[string]*commonpb.Payload{}
	seal := func(name, text string) {
		p, err := dc.ToPayload(text)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := privacy.NewCodec(k.Keyring).WithKeyID(name).Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		texts[name], sealed[name] = text, enc[0]
	}
	for i := range 3 {
		seal(fmt.Sprintf("conv-live-%d", i), fmt.Sprintf("live message %d before the rotation", i))
	}
	if _, err := k.Keyring.DataKeyFor(ctx, "conv-gone", "subject-gone"); err != nil {
		t.Fatal(err)
	}
	seal("conv-gone", "a message of an erased customer")
	if _, err := k.Keyring.Destroy(ctx, "subject-gone"); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}

	newID, err := privacy.AddMasterKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	onlyNew := filepath.Join(dir, "master-new-only.key")
	keepOnly(t, keyFile, onlyNew, newID)

	// Before the rotation the new key alone reads nothing: this is what the
	// rotation must change.
	before := openKeys(t, dir, dbURL, onlyNew)
	if got, err := decodeText(before, sealed["conv-live-0"]); err == nil {
		t.Fatalf("before the rotation, the new master key alone decoded %q", got)
	}
	before.Close()

	t.Setenv("WEBCARESYNC_MASTER_KEY_FILE", keyFile)
	t.Setenv("WEBCARESYNC_DATABASE_URL", dbURL)
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := cli.Execute(ctx, append(args, "--data-dir", dir), &out, &errOut); code != 0 {
			t.Fatalf("webcaresync %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
		return out.String()
	}
	out := run("keys", "rotate")
	if !strings.Contains(out, "Rewrapped 3 data keys under master key "+newID) {
		t.Fatalf("keys rotate printed:\n%s", out)
	}
	if !strings.Contains(out, oldID) || !strings.Contains(out, "0 live data keys  (wraps nothing: can be removed)") {
		t.Fatalf("keys rotate does not say the old master key wraps nothing:\n%s", out)
	}
	if out := run("keys", "rotate"); !strings.Contains(out, "Rewrapped 0 data keys") {
		t.Fatalf("a second keys rotate printed:\n%s", out)
	}
	// A process that was not restarted still wraps new keys under the old
	// master key; running the rotation again picks them up.
	onlyOld := filepath.Join(dir, "master-old-only.key")
	keepOnly(t, keyFile, onlyOld, oldID)
	late := openKeys(t, dir, dbURL, onlyOld)
	k = late
	seal("conv-late", "a message that arrived at a process with the old master key")
	late.Close()
	if out := run("keys", "rotate"); !strings.Contains(out, "Rewrapped 1 data keys under master key "+newID) {
		t.Fatalf("keys rotate after a late key printed:\n%s", out)
	}
	status := run("keys", "status", "--json")
	if !strings.Contains(status, `"id": "`+newID+`",
      "active": true,
      "live_data_keys": 4`) {
		t.Fatalf("keys status --json printed:\n%s", status)
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") && strings.Contains(out+status, f[1]) {
			t.Fatalf("the output of keys holds the master key %s", f[0])
		}
	}

	after := openKeys(t, dir, dbURL, onlyNew)
	defer after.Close()
	for name, want := range texts {
		got, err := decodeText(after, sealed[name])
		if err != nil {
			t.Fatalf("%s after the rotation with only the new master key: %v", name, err)
		}
		if name == "conv-gone" {
			if !strings.Contains(got, `"erased":true`) || strings.Contains(got, want) {
				t.Fatalf("the erased subject's payload decodes to %q after the rotation", got)
			}
			continue
		}
		if got != want {
			t.Fatalf("%s decodes to %q, want %q", name, got, want)
		}
	}
}
