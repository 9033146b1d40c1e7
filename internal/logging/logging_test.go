package logging

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Known personal data of one made-up customer.
var (
	email  = "Jan.Jansen@example.nl"
	phone  = "+31 6 1234 5678"
	phone2 = "+31612345678"
	handle = "@jan_jansen_1980"
	text   = "Mijn bestelling is kapot, bel me terug"
	pii    = []string{email, strings.ToLower(email), phone, phone2, "612345678", handle, "jan_jansen_1980", text, "bestelling"}
)

func TestNew(t *testing.T) {
	for _, mode := range []string{"dev", "prod"} {
		for _, level := range []string{"", "debug", "info", "warn", "error"} {
			if _, err := New(mode, level); err != nil {
				t.Errorf("New(%q, %q): %v", mode, level, err)
			}
		}
	}
	if _, err := New("staging", "info"); err == nil || !strings.Contains(err.Error(), "dev or prod") {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := New("prod", "loud"); err == nil {
		t.Error("unknown level accepted")
	}
	log, err := New("prod", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if log.Core().Enabled(zapcore.InfoLevel) || !log.Core().Enabled(zapcore.WarnLevel) {
		t.Error("level not applied")
	}
	if _, ok := log.Core().(*ScrubCore); !ok {
		t.Errorf("New does not wrap its core in ScrubCore (got %T)", log.Core())
	}
}

func TestRedactionHelpersKeepPIIOutOfLogs(t *testing.T) {
	log, logs := NewCapture()
	log.Info("message received", Email(email), Phone(phone), Handle(handle), Text(text), Redacted("name", "Jan Jansen"))
	log.Info("same customer, other spelling", Email(strings.ToUpper(email)), Phone(phone2), Handle("JAN_JANSEN_1980"))
	if leaks := logs.Leaks(append(pii, "Jan Jansen")...); len(leaks) > 0 {
		t.Fatalf("logs leak %q:\n%s", leaks, logs)
	}
	// Fingerprints are logged and correlate across spellings.
	out := logs.String()
	for _, f := range []zap.Field{Email(email), Phone(phone), Handle(handle)} {
		if !strings.HasPrefix(f.String, "fp:") || strings.Count(out, f.String) != 2 {
			t.Errorf("%s fingerprint %q appears %d times, want 2", f.Key, f.String, strings.Count(out, f.String))
		}
	}
	if !strings.Contains(out, "len=38") {
		t.Errorf("text length missing: %s", out)
	}
	// Control: logging the value itself is caught, so the check can fail.
	log.Info("careless", zap.String("email", email), zap.String("text", text))
	if leaks := logs.Leaks(pii...); len(leaks) == 0 {
		t.Fatal("capture missed PII logged in clear")
	}
}

func TestCaptureMatchesEscapedForms(t *testing.T) {
	log, logs := NewCapture()
	log.Info("quoted", zap.String("v", `say "hoi" tegen Zoë`))
	if !logs.Contains(`say "hoi"`) || !logs.Contains("Zoë") || logs.Contains("") {
		t.Fatalf("Contains misses escaped text: %s", logs)
	}
	logs.Reset()
	if len(logs.Bytes()) != 0 {
		t.Fatal("Reset kept data")
	}
}

func TestFingerprintKey(t *testing.T) {
	before := Fingerprint("x")
	SetFingerprintKey([]byte("0123456789abcdef0123456789abcdef"))
	a := Fingerprint("x")
	SetFingerprintKey([]byte("short"))
	if Fingerprint("x") != a {
		t.Fatal("short key was accepted")
	}
	if a == before || len(a) != len("fp:")+12 || Fingerprint("") != "" {
		t.Fatalf("fingerprint %q (before %q)", a, before)
	}
}

func TestScrubString(t *testing.T) {
	for in, want := range map[string]string{
		"mail jan.jansen@example.nl now":          "mail [email] now",
		"<Jan+tag@Sub.Example.CO.uk>.":            "<[email]>.",
		"a@b.c and x@y":                           "a@b.c and x@y",
		"bel +31 6 1234 5678 of 0612345678!":      "bel [phone] of [phone]!",
		"tel: (020) 123-4567":                     "tel: [phone]",
		"+1 (415) 555-0100, thanks":               "[phone], thanks",
		"order 12345 took 123ms":                  "order 12345 took 123ms",
		"2025-01-01 12:00:00":                     "2025-01-01 12:00:00",
		"id 550e8400-e29b-41d4-a716-446655440000": "id 550e8400-e29b-41d4-a716-446655440000",
		"conv-0123456789abcdefghjkmnpq":           "conv-0123456789abcdefghjkmnpq",
		"x-user 1234567890123456789":              "x-user 1234567890123456789",
		"version 1.2.3":                           "version 1.2.3",
		"":                                        "",
		"@@@ 123456789":                           "@@@ [phone]",
	} {
		if got := ScrubString(in); got != want {
			t.Errorf("ScrubString(%q) = %q, want %q", in, got, want)
		}
	}
}

type customer struct {
	Name  string
	Email string
	Tags  []string
}

func (c customer) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("email", c.Email)
	return enc.AddArray("tags", zapcore.ArrayMarshalerFunc(func(a zapcore.ArrayEncoder) error {
		for _, t := range c.Tags {
			a.AppendString(t)
		}
		return nil
	}))
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestScrubCoreSafetyNet(t *testing.T) {
	inner, logs := NewCapture()
	log := zap.New(NewScrubCore(inner.Core()))
	c := customer{Name: "Jan", Email: email, Tags: []string{"vip", "call " + phone2}}
	log.With(zap.String("ctx_email", email)).Info("contact "+email+" at "+phone,
		zap.String("s", "mail "+email),
		zap.ByteString("b", []byte(phone2)),
		zap.Error(fmt.Errorf("crm rejected %s: %w", email, errors.New("duplicate"))),
		zap.Stringer("st", stringer(phone)),
		zap.Any("reflect", struct{ Name, Email string }{"Jan", email}),
		zap.Object("obj", c),
		zap.Strings("arr", []string{"ok", email}),
		zap.Int("count", 612345678), // numbers are not strings: left alone
		zap.String("clean", "nothing to see"),
	)
	if leaks := logs.Leaks(email, strings.ToLower(email), phone, phone2); len(leaks) > 0 {
		t.Fatalf("ScrubCore let %q through:\n%s", leaks, logs)
	}
	out := logs.String()
	for _, want := range []string{`"count":612345678`, `"clean":"nothing to see"`, "duplicate", ScrubbedEmail, ScrubbedPhone, `"vip"`, `"Name":"Jan"`} {
		if !strings.Contains(out, want) {
			t.Errorf("scrubbed log lost %s:\n%s", want, out)
		}
	}
}

func TestScrubCoreHonoursLevel(t *testing.T) {
	inner, logs := NewCapture()
	core := NewScrubCore(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zapcore.WarnLevel))
	_ = inner
	log := zap.New(core)
	log.Info("hidden")
	log.Warn("shown")
	if logs.Contains("hidden") || !logs.Contains("shown") {
		t.Fatalf("levels not honoured: %s", logs)
	}
}

func FuzzScrubString(f *testing.F) {
	for _, s := range []string{"jan@example.nl", "+31 6 1234 5678", "(020) 123-4567", "a@b.c", "@@", "++((", "x@y.zz@w.vv", "123456789012345678", "é@é.éé 0612345678"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := ScrubString(s)
		if twice := ScrubString(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
	})
}

func BenchmarkScrubCore(b *testing.B) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	plain := zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel)
	cases := map[string][]zap.Field{
		"typical": {zap.String("conversation", "conv-0123456789abcdefghjkmnpq"), zap.Int("batch", 12), zap.Duration("took", 1234), zap.String("provider", "x")},
		"pii":     {zap.String("note", "reach me at "+email+" or "+phone), zap.Error(errors.New("bad " + email))},
		"object":  {zap.Any("customer", customer{Name: "Jan", Email: email, Tags: []string{"vip"}})},
	}
	for name, fields := range cases {
		for _, core := range []struct {
			name string
			c    zapcore.Core
		}{{"plain", plain}, {"scrub", NewScrubCore(plain)}} {
			b.Run(name+"/"+core.name, func(b *testing.B) {
				log := zap.New(core.c)
				b.ReportAllocs()
				for b.Loop() {
					log.Info("message synced to crm", fields...)
				}
			})
		}
	}
}
