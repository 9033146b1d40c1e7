package config

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DevSecrets are the secrets dev and demo generate once and keep in
// DATA_DIR/dev-secrets.json (mode 0600), so that a person or a script can
// sign webhooks and call the APIs.
type DevSecrets struct {
	MetaAppSecret   string `json:"meta_app_secret"`
	MetaVerifyToken string `json:"meta_verify_token"`
	XConsumerSecret string `json:"x_consumer_secret"`
	GenericSecret   string `json:"generic_secret"`
	AdminToken      string `json:"admin_token"`
	// CodecToken lets the Temporal Web UI decode payloads; it can do
	// nothing else.
	CodecToken          string `json:"codec_token"`
	SandboxClientID     string `json:"sandbox_client_id"`
	SandboxClientSecret string `json:"sandbox_client_secret"`
	MasterKeyFile       string `json:"master_key_file"`
	PepperFile          string `json:"pepper_file"`
	AdminTokenFile      string `json:"admin_token_file"`
}

// EnsureDevSecrets loads DATA_DIR/dev-secrets.json, generating whatever is
// missing, and fills the configuration's unset secrets from it. It returns
// the file's path.
func EnsureDevSecrets(cfg *Config) (DevSecrets, string, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return DevSecrets{}, "", fmt.Errorf("cannot create the data dir %s: %w", cfg.DataDir, err)
	}
	path := cfg.Path("dev-secrets.json")
	var s DevSecrets
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &s); err != nil {
			return s, path, fmt.Errorf("%s is not valid JSON (%v); delete it to generate new dev secrets", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return s, path, fmt.Errorf("cannot read %s: %w", path, err)
	}
	changed := false
	gen := func(p *string, prefix string) {
		if *p == "" {
			*p = prefix + randomHex(24)
			changed = true
		}
	}
	gen(&s.MetaAppSecret, "")
	gen(&s.MetaVerifyToken, "verify-")
	gen(&s.XConsumerSecret, "")
	gen(&s.GenericSecret, "")
	gen(&s.AdminToken, "wcs_admin_")
	gen(&s.CodecToken, "wcs_codec_")
	gen(&s.SandboxClientID, "sandbox-client-")
	gen(&s.SandboxClientSecret, "")
	if s.MasterKeyFile == "" {
		s.MasterKeyFile, changed = cfg.Path("master.key"), true
	}
	if s.PepperFile == "" {
		s.PepperFile, changed = cfg.Path("pepper.key"), true
	}
	if s.AdminTokenFile == "" {
		s.AdminTokenFile, changed = cfg.Path("admin.token"), true
	}
	if changed {
		out, _ := json.MarshalIndent(s, "", "  ")
		if err := writeSecretFile(path, out); err != nil {
			return s, path, err
		}
	}
	if _, err := os.Stat(s.AdminTokenFile); errors.Is(err, os.ErrNotExist) {
		if err := writeSecretFile(s.AdminTokenFile, []byte(s.AdminToken+"\n")); err != nil {
			return s, path, err
		}
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&cfg.MetaAppSecret, s.MetaAppSecret)
	fill(&cfg.MetaVerifyToken, s.MetaVerifyToken)
	fill(&cfg.XConsumerSecret, s.XConsumerSecret)
	fill(&cfg.GenericSecret, s.GenericSecret)
	fill(&cfg.Secrets.MasterKeyFile, s.MasterKeyFile)
	fill(&cfg.Secrets.PepperFile, s.PepperFile)
	fill(&cfg.MasterKeyFile, cfg.Secrets.MasterKeyFile)
	fill(&cfg.PepperFile, cfg.Secrets.PepperFile)
	return s, path, nil
}

// writeSecretFile writes data atomically with mode 0600.
func writeSecretFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}
