// Package config loads webcaresync's configuration: a YAML file, overridden
// by WEBCARESYNC_* environment variables. Secrets are read only from the
// environment or from files, never from flags, and never logged.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"io"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration. Every field documents its default.
type Config struct {
	// DataDir holds the embedded Temporal database, the store, generated dev
	// secrets and the sandbox's data. Default: ./.webcaresync.
	DataDir string `yaml:"data_dir"`
	// HTTPAddr is where serve listens. Default: 127.0.0.1:8080.
	HTTPAddr string `yaml:"http_addr"`
	// MetricsAddr is where worker exposes /healthz and /metrics when it runs
	// alone. Default: 127.0.0.1:9090.
	MetricsAddr string `yaml:"metrics_addr"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Temporal configures the workflow engine.
	Temporal Temporal `yaml:"temporal"`
	// DatabaseURL selects PostgreSQL (postgres://…); empty means SQLite in
	// the data dir. Default: empty. Environment: WEBCARESYNC_DATABASE_URL.
	DatabaseURL string `yaml:"database_url"`
	// SandboxAddr is where dev and demo run the Salesforce sandbox when no
	// Salesforce credentials are configured. Default: 127.0.0.1:8089.
	SandboxAddr string `yaml:"sandbox_addr"`
	// Secrets names the files secrets are read from; environment variables
	// take precedence.
	Secrets SecretFiles `yaml:"secrets"`
	// Salesforce configures a real Salesforce org.
	Salesforce Salesforce `yaml:"salesforce"`
	// Mapping is the path of the Salesforce mapping file. Default: the
	// bundled mappings/salesforce.yaml.
	Mapping string `yaml:"mapping"`
	// Identity configures identity matching.
	Identity Identity `yaml:"identity"`
	// DSR configures data-subject requests.
	DSR DSR `yaml:"dsr"`
	// Platforms configures the social platforms' APIs used for erasure.
	Platforms Platforms `yaml:"platforms"`
	// Sync configures the conversation workflows.
	Sync Sync `yaml:"sync"`

	// Loaded secrets; never read from YAML values, never printed.
	MetaAppSecret   string `yaml:"-"`
	MetaVerifyToken string `yaml:"-"`
	XConsumerSecret string `yaml:"-"`
	GenericSecret   string `yaml:"-"`
	// MasterKeyFile is the file holding the master keys that wrap the data
	// keys. Default: DATA_DIR/master.key (generated in dev).
	MasterKeyFile string `yaml:"-"`
	// PepperFile is the file holding the pepper for keyed hashes. Default:
	// DATA_DIR/pepper.key (generated in dev).
	PepperFile string `yaml:"-"`
	// APITokensFile lists the /v1 API tokens with their scopes.
	APITokensFile string `yaml:"-"`

	// File is the configuration file that was read, if any.
	File string `yaml:"-"`
}

// Log configures logging.
type Log struct {
	// Format is console or json. Default: console in dev and demo, json
	// otherwise.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
}

// Temporal configures the workflow engine.
type Temporal struct {
	// Address of an external Temporal frontend (host:port). Empty runs the
	// embedded server. Default: empty.
	Address string `yaml:"address"`
	// Namespace. Default: default.
	Namespace string `yaml:"namespace"`
	// TaskQueue for conversation and DSR workflows. Default: webcaresync.
	TaskQueue string `yaml:"task_queue"`
	// Port of the embedded server's frontend. Default: 7233.
	Port int `yaml:"port"`
	// UIPort of the embedded server's Web UI in dev. Default: 8233.
	UIPort int `yaml:"ui_port"`
	// TLS for an external cluster (mTLS).
	TLS TLS `yaml:"tls"`
	// APIKeyFile holds an API key for Temporal Cloud; the environment
	// variable WEBCARESYNC_TEMPORAL_API_KEY takes precedence.
	APIKeyFile string `yaml:"api_key_file"`
	// APIKey is loaded from the environment or APIKeyFile.
	APIKey string `yaml:"-"`
}

// TLS names certificate files for mTLS to Temporal.
type TLS struct {
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

// SecretFiles names files secrets are read from.
type SecretFiles struct {
	MetaAppSecretFile   string `yaml:"meta_app_secret_file"`
	MetaVerifyTokenFile string `yaml:"meta_verify_token_file"`
	XConsumerSecretFile string `yaml:"x_consumer_secret_file"`
	GenericSecretFile   string `yaml:"generic_secret_file"`
	MasterKeyFile       string `yaml:"master_key_file"`
	PepperFile          string `yaml:"pepper_file"`
	APITokensFile       string `yaml:"api_tokens_file"`
}

// Salesforce configures a real org. When LoginURL and ClientID are empty,
// dev and demo use the bundled sandbox.
type Salesforce struct {
	LoginURL       string `yaml:"login_url"`
	ClientID       string `yaml:"client_id"`
	Username       string `yaml:"username"`
	PrivateKeyFile string `yaml:"private_key_file"`
	// APIVersion. Default: v62.0.
	APIVersion string `yaml:"api_version"`
	// AutoAssign sets Sforce-Auto-Assign: whether Salesforce's active
	// assignment rules route the cases webcaresync creates and reopens.
	// Default: true, as when the header is absent; false leaves every case
	// with the integration user.
	AutoAssign *bool `yaml:"auto_assign"`
	// HardDelete says how an erasure keeps deleted records out of the
	// Recycle Bin: auto (a Bulk API hardDelete job when the integration
	// user has "Bulk API Hard Delete", otherwise delete and
	// emptyRecycleBin), bulk (hardDelete only; without the permission the
	// erasure escalates) or off (delete and emptyRecycleBin, no Bulk API).
	// Default: auto.
	HardDelete string `yaml:"hard_delete"`
	// ClientSecretFile holds the client secret; the environment variable
	// WEBCARESYNC_SALESFORCE_CLIENT_SECRET takes precedence.
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecret is loaded from the environment or ClientSecretFile.
	ClientSecret string `yaml:"-"`
	// PrivateKeyPEM is loaded from PrivateKeyFile.
	PrivateKeyPEM []byte `yaml:"-"`
}

// Configured reports whether a real org is configured.
func (s Salesforce) Configured() bool { return s.LoginURL != "" && s.ClientID != "" }

// Identity configures identity matching.
type Identity struct {
	// DefaultRegion for phone numbers without a country code. Default: NL.
	DefaultRegion string `yaml:"default_region"`
	// NoMatch is what happens when no contact matches: "create" a contact
	// from the details, or "leave" the persona unlinked. Default: leave.
	NoMatch string `yaml:"no_match"`
}

// Platforms configures the social platforms' APIs, used to delete and
// hide posts during erasure. A platform without a token is recorded as
// "not possible through the API" in the ledger.
type Platforms struct {
	// XBaseURL is the X API host. Default: https://api.x.com.
	XBaseURL string `yaml:"x_base_url"`
	// MetaBaseURL is the Graph API host. Default: https://graph.facebook.com.
	MetaBaseURL string `yaml:"meta_base_url"`
	// XTokenFile holds the brand's X OAuth 2.0 user token; the environment
	// variable WEBCARESYNC_X_API_TOKEN takes precedence.
	XTokenFile string `yaml:"x_token_file"`
	// MetaTokenFile holds the Page access token; the environment variable
	// WEBCARESYNC_META_PAGE_TOKEN takes precedence.
	MetaTokenFile string `yaml:"meta_token_file"`
	// XToken and MetaToken are loaded from the environment or the files.
	XToken    string `yaml:"-"`
	MetaToken string `yaml:"-"`
}

// DSR configures data-subject requests.
type DSR struct {
	// RequireApproval for erasure. Default: true.
	RequireApproval *bool `yaml:"require_approval"`
	// ControllerContact is how a data subject reaches the controller (for
	// example "privacy@example.nl, Postbus 1, 1000 AA Amsterdam"), printed
	// at the top of the HTML access and erasure reports. Default: none.
	ControllerContact string `yaml:"controller_contact"`
}

// Sync configures the conversation workflows.
type Sync struct {
	// CRMActivitiesPerSecond caps CRM activities (each a few API calls)
	// a second over all workers. Salesforce limits concurrent long requests
	// and the daily call budget, not calls a second, so the cap only
	// smooths bursts: conversations flush on the same ticks, and a low cap
	// queues the burst (at 50/s, a burst of 40 activities waits up to
	// 0.8s). Default: 200.
	CRMActivitiesPerSecond float64 `yaml:"crm_activities_per_second"`
	// BatchSize caps the messages per CRM batch. Default: 200.
	BatchSize int `yaml:"batch_size"`
}

// Defaults returns the configuration with every default set.
func Defaults() Config {
	return Config{
		DataDir:     "./.webcaresync",
		HTTPAddr:    "127.0.0.1:8080",
		MetricsAddr: "127.0.0.1:9090",
		Log:         Log{Level: "info"},
		Temporal:    Temporal{Namespace: "default", TaskQueue: "webcaresync", Port: 7233, UIPort: 8233},
		SandboxAddr: "127.0.0.1:8089",
		Salesforce:  Salesforce{APIVersion: "v62.0", HardDelete: "auto", AutoAssign: new(true)},
		Identity:    Identity{DefaultRegion: "NL", NoMatch: "leave"},
		Sync:        Sync{CRMActivitiesPerSecond: 200, BatchSize: 200},
	}
}

// Problem is one configuration error, located as precisely as possible.
type Problem struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is a list of configuration errors; its Error gives one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads the file at path (if path is empty, ./webcaresync.yaml when it
// exists), applies the environment, loads secrets and returns the result.
// Errors are Problems naming file, line and field.
func Load(path string, env func(string) string) (Config, error) {
	cfg := Defaults()
	if env == nil {
		env = os.Getenv
	}
	explicit := path != ""
	if !explicit {
		path = "webcaresync.yaml"
	}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		cfg.File = path
		if err := decodeStrict(path, raw, &cfg); err != nil {
			return cfg, err
		}
	case explicit || !errors.Is(err, os.ErrNotExist):
		return cfg, Problems{{File: path, Msg: fmt.Sprintf("cannot read the configuration file: %v", errors.Unwrap(err))}}
	}
	var probs Problems
	applyEnv(&cfg, env, &probs)
	loadSecrets(&cfg, env, &probs)
	if len(probs) > 0 {
		return cfg, probs
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)
var unknownField = regexp.MustCompile(`field (\S+) not found in type`)

// decodeStrict decodes YAML rejecting unknown keys, turning yaml.v3's
// errors into Problems with the file and line.
func decodeStrict(path string, raw []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	err := dec.Decode(cfg)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var probs Problems
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		p := Problem{File: path, Msg: m}
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Msg = sm[2]
		}
		if sm := unknownField.FindStringSubmatch(p.Msg); sm != nil {
			p.Field = sm[1]
			p.Msg = "unknown key; check the spelling against the configuration reference in README.md"
		}
		probs = append(probs, p)
	}
	return probs
}

// envString lists the plain string settings and their variables.
func envStrings(cfg *Config) map[string]*string {
	return map[string]*string{
		"WEBCARESYNC_DATA_DIR":                    &cfg.DataDir,
		"WEBCARESYNC_HTTP_ADDR":                   &cfg.HTTPAddr,
		"WEBCARESYNC_METRICS_ADDR":                &cfg.MetricsAddr,
		"WEBCARESYNC_LOG_FORMAT":                  &cfg.Log.Format,
		"WEBCARESYNC_LOG_LEVEL":                   &cfg.Log.Level,
		"WEBCARESYNC_TEMPORAL_ADDRESS":            &cfg.Temporal.Address,
		"WEBCARESYNC_TEMPORAL_NAMESPACE":          &cfg.Temporal.Namespace,
		"WEBCARESYNC_TEMPORAL_TASK_QUEUE":         &cfg.Temporal.TaskQueue,
		"WEBCARESYNC_TEMPORAL_TLS_CERT_FILE":      &cfg.Temporal.TLS.CertFile,
		"WEBCARESYNC_TEMPORAL_TLS_KEY_FILE":       &cfg.Temporal.TLS.KeyFile,
		"WEBCARESYNC_TEMPORAL_TLS_CA_FILE":        &cfg.Temporal.TLS.CAFile,
		"WEBCARESYNC_TEMPORAL_TLS_SERVER_NAME":    &cfg.Temporal.TLS.ServerName,
		"WEBCARESYNC_TEMPORAL_API_KEY_FILE":       &cfg.Temporal.APIKeyFile,
		"WEBCARESYNC_DATABASE_URL":                &cfg.DatabaseURL,
		"WEBCARESYNC_SANDBOX_ADDR":                &cfg.SandboxAddr,
		"WEBCARESYNC_SALESFORCE_LOGIN_URL":        &cfg.Salesforce.LoginURL,
		"WEBCARESYNC_SALESFORCE_CLIENT_ID":        &cfg.Salesforce.ClientID,
		"WEBCARESYNC_SALESFORCE_USERNAME":         &cfg.Salesforce.Username,
		"WEBCARESYNC_SALESFORCE_PRIVATE_KEY_FILE": &cfg.Salesforce.PrivateKeyFile,
		"WEBCARESYNC_SALESFORCE_API_VERSION":      &cfg.Salesforce.APIVersion,
		"WEBCARESYNC_SALESFORCE_HARD_DELETE":      &cfg.Salesforce.HardDelete,
		"WEBCARESYNC_DSR_CONTROLLER_CONTACT":      &cfg.DSR.ControllerContact,
		"WEBCARESYNC_MAPPING":                     &cfg.Mapping,
		"WEBCARESYNC_IDENTITY_DEFAULT_REGION":     &cfg.Identity.DefaultRegion,
		"WEBCARESYNC_IDENTITY_NO_MATCH":           &cfg.Identity.NoMatch,
		"WEBCARESYNC_MASTER_KEY_FILE":             &cfg.Secrets.MasterKeyFile,
		"WEBCARESYNC_PEPPER_FILE":                 &cfg.Secrets.PepperFile,
		"WEBCARESYNC_API_TOKENS_FILE":             &cfg.Secrets.APITokensFile,
	}
}

// envInts lists the integer settings and their variables.
func envInts(cfg *Config) map[string]*int {
	return map[string]*int{
		"WEBCARESYNC_TEMPORAL_PORT": &cfg.Temporal.Port,
		"WEBCARESYNC_UI_PORT":       &cfg.Temporal.UIPort,
	}
}

// EnvVars lists every environment variable Load reads, for documentation
// and for the unknown-variable check.
func EnvVars() []string {
	var c Config
	var out []string
	for k := range envStrings(&c) {
		out = append(out, k)
	}
	for k := range envInts(&c) {
		out = append(out, k)
	}
	return append(out, secretVars...)
}

var secretVars = []string{
	"WEBCARESYNC_META_APP_SECRET", "WEBCARESYNC_META_VERIFY_TOKEN",
	"WEBCARESYNC_X_CONSUMER_SECRET", "WEBCARESYNC_GENERIC_SECRET",
	"WEBCARESYNC_SALESFORCE_CLIENT_SECRET", "WEBCARESYNC_TEMPORAL_API_KEY",
	"WEBCARESYNC_X_API_TOKEN", "WEBCARESYNC_META_PAGE_TOKEN",
}

func applyEnv(cfg *Config, env func(string) string, probs *Problems) {
	for k, p := range envStrings(cfg) {
		if v := env(k); v != "" {
			*p = v
		}
	}
	for k, p := range envInts(cfg) {
		v := env(k)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			*probs = append(*probs, Problem{Field: k, Msg: "must be a port number between 0 and 65535"})
			continue
		}
		*p = n
	}
}

// loadSecrets fills the secret fields from the environment or files.
func loadSecrets(cfg *Config, env func(string) string, probs *Problems) {
	read := func(envName, file, field string) string {
		if v := env(envName); v != "" {
			return v
		}
		if file == "" {
			return ""
		}
		b, err := os.ReadFile(file)
		if err != nil {
			*probs = append(*probs, Problem{File: cfg.File, Field: field, Msg: fmt.Sprintf("cannot read secret file %s: %v", file, errors.Unwrap(err))})
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	s := cfg.Secrets
	cfg.MetaAppSecret = read("WEBCARESYNC_META_APP_SECRET", s.MetaAppSecretFile, "secrets.meta_app_secret_file")
	cfg.MetaVerifyToken = read("WEBCARESYNC_META_VERIFY_TOKEN", s.MetaVerifyTokenFile, "secrets.meta_verify_token_file")
	cfg.XConsumerSecret = read("WEBCARESYNC_X_CONSUMER_SECRET", s.XConsumerSecretFile, "secrets.x_consumer_secret_file")
	cfg.GenericSecret = read("WEBCARESYNC_GENERIC_SECRET", s.GenericSecretFile, "secrets.generic_secret_file")
	cfg.Salesforce.ClientSecret = read("WEBCARESYNC_SALESFORCE_CLIENT_SECRET", cfg.Salesforce.ClientSecretFile, "salesforce.client_secret_file")
	cfg.Temporal.APIKey = read("WEBCARESYNC_TEMPORAL_API_KEY", cfg.Temporal.APIKeyFile, "temporal.api_key_file")
	cfg.Platforms.XToken = read("WEBCARESYNC_X_API_TOKEN", cfg.Platforms.XTokenFile, "platforms.x_token_file")
	cfg.Platforms.MetaToken = read("WEBCARESYNC_META_PAGE_TOKEN", cfg.Platforms.MetaTokenFile, "platforms.meta_token_file")
	if f := cfg.Salesforce.PrivateKeyFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			*probs = append(*probs, Problem{File: cfg.File, Field: "salesforce.private_key_file", Msg: fmt.Sprintf("cannot read %s: %v", f, errors.Unwrap(err))})
		}
		cfg.Salesforce.PrivateKeyPEM = b
	}
	cfg.MasterKeyFile = s.MasterKeyFile
	cfg.PepperFile = s.PepperFile
	cfg.APITokensFile = s.APITokensFile
}

// Mode says which process a configuration is validated for.
type Mode int

// The process modes.
const (
	// Dev is dev and demo: missing secrets are generated.
	Dev Mode = iota
	// Production is serve and worker: secrets must be given.
	Production
)

// Validate checks the configuration for mode and returns every problem.
func (c *Config) Validate(mode Mode) error {
	var probs Problems
	add := func(field, msg string) { probs = append(probs, Problem{File: c.File, Field: field, Msg: msg}) }
	if c.DataDir == "" {
		add("data_dir", "must not be empty; set it or WEBCARESYNC_DATA_DIR")
	}
	switch c.Log.Format {
	case "", "console", "json":
	default:
		add("log.format", "must be console or json")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error")
	}
	switch c.Identity.NoMatch {
	case "create", "leave":
	default:
		add("identity.no_match", `must be "create" or "leave"`)
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		add("database_url", "must start with postgres:// (leave it empty for SQLite in the data dir)")
	}
	if (c.Temporal.TLS.CertFile == "") != (c.Temporal.TLS.KeyFile == "") {
		add("temporal.tls", "cert_file and key_file must be set together")
	}
	if c.Sync.BatchSize < 1 || c.Sync.BatchSize > 200 {
		add("sync.batch_size", "must be between 1 and 200 (Salesforce collections take at most 200 records)")
	}
	switch c.Salesforce.HardDelete {
	case "auto", "bulk", "off":
	default:
		add("salesforce.hard_delete", `must be "auto", "bulk" or "off"`)
	}
	if c.Salesforce.LoginURL != "" || c.Salesforce.ClientID != "" {
		if !c.Salesforce.Configured() {
			add("salesforce", "login_url and client_id must be set together")
		}
		if len(c.Salesforce.PrivateKeyPEM) == 0 && c.Salesforce.ClientSecret == "" {
			add("salesforce", "set WEBCARESYNC_SALESFORCE_PRIVATE_KEY_FILE (JWT bearer) or WEBCARESYNC_SALESFORCE_CLIENT_SECRET (client credentials)")
		}
	}
	if mode == Production {
		need := []struct{ v, env string }{
			{c.MetaAppSecret, "WEBCARESYNC_META_APP_SECRET"},
			{c.MetaVerifyToken, "WEBCARESYNC_META_VERIFY_TOKEN"},
			{c.XConsumerSecret, "WEBCARESYNC_X_CONSUMER_SECRET"},
			{c.GenericSecret, "WEBCARESYNC_GENERIC_SECRET"},
		}
		for _, n := range need {
			if n.v == "" {
				add(strings.ToLower(strings.TrimPrefix(n.env, "WEBCARESYNC_")), "missing secret: set "+n.env+" or its *_file key under secrets")
			}
		}
		if c.Secrets.MasterKeyFile == "" {
			add("secrets.master_key_file", "missing master key: set WEBCARESYNC_MASTER_KEY_FILE")
		}
		if c.Secrets.PepperFile == "" {
			add("secrets.pepper_file", "missing pepper: set WEBCARESYNC_PEPPER_FILE")
		}
	}
	if len(probs) > 0 {
		return probs
	}
	return nil
}

// Path returns name inside the data dir.
func (c *Config) Path(name string) string { return filepath.Join(c.DataDir, name) }
