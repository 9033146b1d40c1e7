package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webcaresync.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnknownKeyNamesFileLineAndField(t *testing.T) {
	p := writeFile(t, "http_addr: 127.0.0.1:9000\ntemporal:\n  namespace: prod\n  adress: temporal:7233\n")
	_, err := Load(p, env(nil))
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 1 {
		t.Fatalf("got %v, want one problem", err)
	}
	got := probs[0].String()
	if !strings.HasPrefix(got, p+":4: adress: unknown key") {
		t.Errorf("got %q", got)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	p := writeFile(t, "http_addr: 127.0.0.1:9000\ntemporal:\n  port: 7000\n")
	cfg, err := Load(p, env(map[string]string{"WEBCARESYNC_HTTP_ADDR": "0.0.0.0:8080", "WEBCARESYNC_TEMPORAL_ADDRESS": "temporal:7233"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "0.0.0.0:8080" || cfg.Temporal.Address != "temporal:7233" || cfg.Temporal.Port != 7000 {
		t.Errorf("got %+v", cfg)
	}
}

func TestBadPortInEnvironment(t *testing.T) {
	_, err := Load("", env(map[string]string{"WEBCARESYNC_TEMPORAL_PORT": "seventy"}))
	if err == nil || !strings.Contains(err.Error(), "WEBCARESYNC_TEMPORAL_PORT: must be a port number") {
		t.Fatalf("got %v", err)
	}
}

func TestProductionNeedsEverySecret(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"WEBCARESYNC_META_APP_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(Production)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("got %v", err)
	}
	text := err.Error()
	for _, want := range []string{"WEBCARESYNC_META_VERIFY_TOKEN", "WEBCARESYNC_X_CONSUMER_SECRET", "WEBCARESYNC_GENERIC_SECRET", "WEBCARESYNC_MASTER_KEY_FILE", "WEBCARESYNC_PEPPER_FILE"} {
		if !strings.Contains(text, want) {
			t.Errorf("no line names %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, "WEBCARESYNC_META_APP_SECRET") {
		t.Error("a given secret is reported missing")
	}
	if cfg.Validate(Dev) != nil {
		t.Error("dev mode generates secrets and must not require them")
	}
}

func TestSecretsFromFilesAndNeverFromYAMLValues(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "x.secret")
	if err := os.WriteFile(secret, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, "secrets:\n  x_consumer_secret_file: "+secret+"\n")
	cfg, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.XConsumerSecret != "from-file" {
		t.Errorf("secret %q", cfg.XConsumerSecret)
	}
	if _, err := Load(writeFile(t, "x_consumer_secret: inline\n"), env(nil)); err == nil {
		t.Error("a secret value inline in YAML was accepted")
	}
	_, err = Load(writeFile(t, "secrets:\n  generic_secret_file: /nonexistent/secret\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "secrets.generic_secret_file") {
		t.Errorf("missing secret file: %v", err)
	}
}

func TestDevSecretsAreGeneratedOnceWithMode0600(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	s1, path, err := EnsureDevSecrets(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("dev secrets file mode %v, %v", info.Mode(), err)
	}
	tok, err := os.Stat(s1.AdminTokenFile)
	if err != nil || tok.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file mode %v, %v", tok.Mode(), err)
	}
	cfg2 := Defaults()
	cfg2.DataDir = cfg.DataDir
	s2, _, err := EnsureDevSecrets(&cfg2)
	if err != nil || s2 != s1 {
		t.Fatalf("second start generated new secrets: %v", err)
	}
	if cfg.MetaAppSecret == "" || cfg.MetaAppSecret != s1.MetaAppSecret {
		t.Error("the config was not filled from the dev secrets")
	}
}

func TestBadValuesAreReported(t *testing.T) {
	cfg := Defaults()
	cfg.Log.Level = "loud"
	cfg.DatabaseURL = "mysql://db"
	cfg.Sync.BatchSize = 500
	cfg.Salesforce.HardDelete = "never"
	err := cfg.Validate(Dev)
	for _, want := range []string{"log.level", "database_url", "sync.batch_size", "salesforce.hard_delete"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no problem names %s: %v", want, err)
		}
	}
}

func TestHardDeleteSetting(t *testing.T) {
	if d := Defaults().Salesforce.HardDelete; d != "auto" {
		t.Errorf("default hard_delete %q, want auto", d)
	}
	p := writeFile(t, "salesforce:\n  hard_delete: off\n")
	cfg, err := Load(p, env(nil))
	if err != nil || cfg.Salesforce.HardDelete != "off" {
		t.Fatalf("from the file: %q %v", cfg.Salesforce.HardDelete, err)
	}
	cfg, err = Load(p, env(map[string]string{"WEBCARESYNC_SALESFORCE_HARD_DELETE": "bulk"}))
	if err != nil || cfg.Salesforce.HardDelete != "bulk" || cfg.Validate(Dev) != nil {
		t.Fatalf("from the environment: %q %v", cfg.Salesforce.HardDelete, err)
	}
}

func TestAutoAssignSetting(t *testing.T) {
	if d := Defaults().Salesforce.AutoAssign; d == nil || !*d {
		t.Errorf("default auto_assign %v, want true (Salesforce runs assignment rules when the header is absent)", d)
	}
	a, b := Defaults(), Defaults()
	*a.Salesforce.AutoAssign = false
	if !*b.Salesforce.AutoAssign {
		t.Fatal("Defaults() share the auto_assign pointer: changing one changed another")
	}
	cfg, err := Load(writeFile(t, "salesforce:\n  auto_assign: false\n"), env(nil))
	if err != nil || cfg.Salesforce.AutoAssign == nil || *cfg.Salesforce.AutoAssign {
		t.Fatalf("auto_assign: false from the file: %v %v", cfg.Salesforce.AutoAssign, err)
	}
}
