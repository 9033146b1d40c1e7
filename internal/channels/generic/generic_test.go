package generic

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/schemas"
)

const testSecret = "generic-secret-for-tests"

var fixedNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

const oneEvent = `{"kind":"message","channel":"livechat","conversation_key":"livechat:site-1:visitor-42","direction":"inbound","visibility":"private","platform_message_id":"lc-1","author":{"platform_user_id":"visitor-42","display_name":"Zoë"},"text":"Hallo, ik heb een vraag over mijn factuur 🧾","occurred_at":"2024-05-01T14:00:00+02:00","brand":{"id":"site-1"}}`

const twoEvents = `[` + oneEvent + `,{"kind":"message","channel":"livechat","conversation_key":"livechat:site-1:visitor-42","direction":"outbound","visibility":"private","platform_message_id":"lc-2","reply_to_id":"lc-1","author":{"platform_user_id":"agent-7"},"text":"Natuurlijk, waar kan ik je mee helpen? ^MK","occurred_at":"2024-05-01T12:01:00Z","brand":{"id":"site-1"},"agent_id":"MK"}]`

func request(sig, ts string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/generic", nil)
	if sig != "" {
		r.Header.Set(SignatureHeader, sig)
	}
	if ts != "" {
		r.Header.Set(TimestampHeader, ts)
	}
	return r
}

func TestVerify(t *testing.T) {
	c := New(testSecret, clock)
	body := []byte(oneEvent)
	sig, ts := Sign(testSecret, fixedNow, body)
	oldSig, oldTS := Sign(testSecret, fixedNow.Add(-6*time.Minute), body)
	futSig, futTS := Sign(testSecret, fixedNow.Add(6*time.Minute), body)
	edgeSig, edgeTS := Sign(testSecret, fixedNow.Add(-5*time.Minute), body)
	tests := []struct {
		name, sig, ts string
		body          []byte
		ok            bool
	}{
		{"signed now", sig, ts, body, true},
		{"exactly 5 minutes old", edgeSig, edgeTS, body, true},
		{"6 minutes old", oldSig, oldTS, body, false},
		{"6 minutes ahead", futSig, futTS, body, false},
		{"timestamp swapped", sig, edgeTS, body, false},
		{"wrong secret", func() string { s, _ := Sign("x", fixedNow, body); return s }(), ts, body, false},
		{"tampered", sig, ts, []byte(strings.Replace(oneEvent, "Zoë", "Zoe", 1)), false},
		{"no signature", "", ts, body, false},
		{"no timestamp", sig, "", body, false},
		{"timestamp not a number", sig, "2024-05-01", body, false},
		{"bad hex", "sha256=xyz", ts, body, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Verify(request(tt.sig, tt.ts), tt.body)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if !tt.ok && !errors.Is(err, channels.ErrUnauthorized) {
				t.Fatalf("Verify = %v, want ErrUnauthorized", err)
			}
		})
	}
}

const signVectorHex = "0a705d49b8d6bf5024bf4d9e518b37483bc0150286b668e2741cd31aa902e5c2"

func TestSignVector(t *testing.T) {
	// printf '%s' '1714564800.{}' | openssl dgst -sha256 -hmac generic-secret-for-tests
	const want = "sha256=" + signVectorHex
	sig, ts := Sign(testSecret, time.Unix(1714564800, 0), []byte(`{}`))
	if ts != "1714564800" || sig != want {
		t.Fatalf("Sign = %s, %s; want %s, 1714564800", sig, ts, want)
	}
}

func TestParseShapes(t *testing.T) {
	c := New(testSecret, clock)
	tests := []struct {
		name, body string
		n          int
	}{
		{"single", oneEvent, 1},
		{"array", twoEvents, 2},
		{"envelope", `{"events":` + twoEvents + `}`, 2},
		{"leading whitespace", "\n  " + oneEvent + "\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := c.Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != tt.n {
				t.Fatalf("got %d events, want %d", len(events), tt.n)
			}
			e := events[0]
			if e.OccurredAt.Location() != time.UTC || !e.OccurredAt.Equal(fixedNow) {
				t.Errorf("OccurredAt = %v, want %v in UTC", e.OccurredAt, fixedNow)
			}
			if e.Author.DisplayName != "Zoë" || e.Text != "Hallo, ik heb een vraag over mijn factuur 🧾" {
				t.Errorf("event = %+v", e)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	c := New(testSecret, clock)
	bad := strings.Replace(oneEvent, `"channel":"livechat"`, `"channel":"telegram"`, 1)
	tests := []struct{ name, body, field string }{
		{"malformed", `{"kind":`, ""},
		{"empty", ``, ""},
		{"scalar", `42`, ""},
		{"empty array", `[]`, "events"},
		{"bad channel single", bad, "channel"},
		{"bad channel at index 2", `[` + oneEvent + `,` + oneEvent + `,` + bad + `]`, "events[2].channel"},
		{"envelope index", `{"events":[` + oneEvent + `,` + strings.Replace(oneEvent, `"platform_user_id":"visitor-42",`, ``, 1) + `]}`, "events[1].author.platform_user_id"},
		{"envelope extra key", `{"events":[` + oneEvent + `],"source":"coosto"}`, ""},
		{"envelope not array", `{"events":{}}`, "events"},
		{"array element not object", `[` + oneEvent + `,"Zoë"]`, "events[1]"},
		{"unknown field", strings.Replace(oneEvent, `"text"`, `"txt"`, 1), "txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Parse([]byte(tt.body))
			var br *channels.BadRequest
			if !errors.As(err, &br) {
				t.Fatalf("Parse = %v, want *BadRequest", err)
			}
			if br.Field != tt.field {
				t.Errorf("Field = %q, want %q (%s)", br.Field, tt.field, br.Message)
			}
			if strings.Contains(br.Error(), "Zoë") || strings.Contains(br.Error(), "telegram") || strings.Contains(br.Error(), "factuur") {
				t.Errorf("error %q quotes payload", br.Error())
			}
		})
	}
}

func TestParseEventJSONL(t *testing.T) {
	e, err := ParseEvent([]byte(oneEvent + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.PlatformMessageID != "lc-1" || e.OccurredAt.Location() != time.UTC {
		t.Fatalf("event = %+v", e)
	}
	_, err = ParseEvent([]byte(`{"kind":"message"}`))
	var br *channels.BadRequest
	if !errors.As(err, &br) || br.Field == "" {
		t.Fatalf("ParseEvent(incomplete) = %v, want BadRequest with a field", err)
	}
}

func TestHandshakeIs404(t *testing.T) {
	w := httptest.NewRecorder()
	New(testSecret, clock).Handshake(w, httptest.NewRequest(http.MethodGet, "/webhooks/generic", nil))
	if w.Code != 404 {
		t.Fatalf("code = %d, want 404", w.Code)
	}
}

func FuzzGenericParse(f *testing.F) {
	for _, s := range []string{oneEvent, twoEvents, `{"events":` + twoEvents + `}`, `[]`, `{"events":null}`, strconv.Quote(oneEvent)} {
		f.Add([]byte(s))
	}
	c := New(testSecret, clock)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := c.Parse(body)
		if err != nil {
			var br *channels.BadRequest
			if !errors.As(err, &br) {
				t.Fatalf("Parse error %T, want *BadRequest", err)
			}
			return
		}
		if len(events) == 0 {
			t.Fatal("no events and no error")
		}
		for _, e := range events {
			if err := schemas.ValidateEvent(e); err != nil {
				t.Fatalf("invalid event: %v", err)
			}
		}
	})
}

func TestParseLeapSecond(t *testing.T) {
	body := strings.Replace(oneEvent, "2024-05-01T14:00:00+02:00", "2016-12-31T23:59:60Z", 1)
	_, err := New(testSecret, clock).Parse([]byte(body))
	var br *channels.BadRequest
	if err != nil && (!errors.As(err, &br) || br.Field != "occurred_at") {
		t.Fatalf("Parse(leap second) = %v, want nil or a BadRequest for occurred_at", err)
	}
}
