// Package logging builds webcaresync's zap loggers and keeps personal data
// out of them.
//
// Code never logs an email, phone number, handle, name or message text. It
// logs a keyed fingerprint instead, with Redacted or the Email, Phone, Handle
// and Text helpers: equal values give equal fingerprints within a deployment,
// so log lines can still be correlated, but the value cannot be read back.
// As a safety net, every logger made by New passes through ScrubCore, which
// masks strings that look like emails or phone numbers in messages and
// fields. Tests use NewCapture to assert that known personal data never
// reaches the logs.
package logging

import (
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger for mode "dev" (human-readable console output) or
// "prod" (JSON, one object per line, sampled), at level "debug", "info",
// "warn" or "error" (empty means info). Output goes to stderr. Every logger
// is wrapped in ScrubCore.
func New(mode, level string) (*zap.Logger, error) {
	var cfg zap.Config
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "dev", "development":
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	case "prod", "production":
		cfg = zap.NewProductionConfig()
	default:
		return nil, fmt.Errorf("unknown log mode %q: use dev or prod", mode)
	}
	if level == "" {
		level = "info"
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("unknown log level %q: use debug, info, warn or error", level)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	// Stack traces only for panics: operators act on the message, and a
	// trace per warning buries it.
	cfg.DisableStacktrace = true
	return cfg.Build(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return NewScrubCore(c) }))
}
