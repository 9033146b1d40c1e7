package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/internal/channels/generic"
	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
	"github.com/webcaresync/webcaresync/internal/identity"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/mappings"
)

// The hot-path benchmarks each run the measured code and a baseline doing
// the least comparable work for the same b.N, and report the ratio as
// x-baseline (1.0 means as fast as the baseline). Run them with
//
//	go test -run '^$' -bench . ./internal/bench/

// compare times base for b.N iterations, then ours, and reports
// ours/base.
func compare(b *testing.B, ours, base func() error) {
	b.Helper()
	b.ReportAllocs()
	start := time.Now()
	for range b.N {
		if err := base(); err != nil {
			b.Fatal(err)
		}
	}
	baseDur := time.Since(start)
	b.ResetTimer()
	for range b.N {
		if err := ours(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if baseDur > 0 {
		b.ReportMetric(float64(b.Elapsed())/float64(baseDur), "x-baseline")
	}
}

const secret = "bench-secret"

// payloads returns one sample webhook body per channel.
func payloads(b testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range samples.Conversations() {
		for _, p := range c.Payloads {
			if out[p.Channel] == nil {
				out[p.Channel] = p.Body
			}
		}
	}
	e := event("bench", 1, 1)
	out["generic"], _ = json.Marshal(e)
	for _, ch := range []string{"meta", "x", "generic"} {
		if out[ch] == nil {
			b.Fatalf("no sample payload for %s", ch)
		}
	}
	return out
}

func signed(ch string, body []byte) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "/webhooks/"+ch, bytes.NewReader(body))
	switch ch {
	case "meta":
		r.Header.Set("X-Hub-Signature-256", meta.Sign(secret, body))
	case "x":
		r.Header.Set("x-twitter-webhooks-signature", x.Sign(secret, body))
	case "generic":
		sig, ts := generic.Sign(secret, time.Now(), body)
		r.Header.Set(generic.SignatureHeader, sig)
		r.Header.Set(generic.TimestampHeader, ts)
	}
	return r
}

func chans() map[string]channels.Channel {
	return map[string]channels.Channel{
		"meta":    meta.New(secret, "verify"),
		"x":       x.New(secret),
		"generic": generic.New(secret, time.Now),
	}
}

// BenchmarkVerify compares signature verification with a plain SHA-256 of
// the body.
func BenchmarkVerify(b *testing.B) {
	bodies := payloads(b)
	for name, ch := range chans() {
		body := bodies[name]
		r := signed(name, body)
		b.Run(name, func(b *testing.B) {
			compare(b, func() error { return ch.Verify(r, body) },
				func() error { _ = sha256.Sum256(body); return nil })
		})
	}
}

// BenchmarkParse compares parsing and validation with a plain
// json.Unmarshal of the same body.
func BenchmarkParse(b *testing.B) {
	bodies := payloads(b)
	for name, ch := range chans() {
		body := bodies[name]
		b.Run(name, func(b *testing.B) {
			compare(b, func() error { _, err := ch.Parse(body); return err },
				func() error { var v any; return json.Unmarshal(body, &v) })
		})
	}
}

var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// BenchmarkExtract compares identity extraction (e-mail, phone, address)
// with a single e-mail regexp scan of the same text.
func BenchmarkExtract(b *testing.B) {
	texts := map[string]string{
		"details": "Hoi, mijn ordernummer is 12345. Mail me op sanne.devries@example.nl of bel 06 12345678, ik woon op Oudegracht 12, 3511 AB Utrecht.",
		"none":    "My parcel still has not arrived and the tracking page shows nothing new since Monday.",
	}
	for name, text := range texts {
		b.Run(name, func(b *testing.B) {
			compare(b, func() error { _ = identity.Extract(text, identity.Options{DefaultRegion: "NL"}); return nil },
				func() error { _ = emailRE.FindAllString(text, -1); return nil })
		})
	}
}

// BenchmarkMapping compares the mapping of a post (CEL, templates,
// lookups, transforms) with building the same fields by hand.
func BenchmarkMapping(b *testing.B) {
	m := mappings.Default()
	e := event("bench", 1, 1)
	e.Author.Handle = "klant"
	compare(b, func() error {
		_, err := m.Record(mappings.ObjectPost, mappings.EventVars("conv-1", e))
		return err
	}, func() error {
		rec := map[string]any{
			"Name": "Post from " + e.Author.Handle, "Content": e.Text, "Headline": e.Text, "Provider": "Other",
			"MessageType": "Direct", "Posted": e.OccurredAt.Format(time.RFC3339), "R6PostId": e.PlatformMessageID,
		}
		_ = rec
		return nil
	})
}

// TestHotPathInputsAreValid keeps the benchmarks honest: what they
// measure succeeds.
func TestHotPathInputsAreValid(t *testing.T) {
	bodies := payloads(t)
	for name, ch := range chans() {
		if err := ch.Verify(signed(name, bodies[name]), bodies[name]); err != nil {
			t.Errorf("%s: Verify: %v", name, err)
		}
		events, err := ch.Parse(bodies[name])
		if err != nil || len(events) == 0 {
			t.Errorf("%s: Parse = %d events, %v", name, len(events), err)
		}
	}
	if d := identity.Extract("mail sanne.devries@example.nl", identity.Options{}); len(d.Emails) != 1 {
		t.Errorf("Extract found %v", d.Emails)
	}
	if _, err := mappings.Default().Record(mappings.ObjectPost, mappings.EventVars("c", event("t", 1, 1))); err != nil {
		t.Errorf("mapping: %v", err)
	}
}
