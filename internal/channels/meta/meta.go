// Package meta receives Meta webhooks on /webhooks/meta: Messenger
// (object "page"), Instagram (object "instagram") and WhatsApp Cloud API
// (object "whatsapp_business_account"). Meta verifies the endpoint with a
// hub.challenge GET and signs every POST with X-Hub-Signature-256, an
// HMAC-SHA256 of the body under the app secret.
package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/webcaresync/webcaresync/internal/channels"
)

// SignatureHeader is the header Meta signs POST bodies in.
const SignatureHeader = "X-Hub-Signature-256"

// Channel is the Meta webhook source. Create it with New.
type Channel struct {
	appSecret   []byte
	verifyToken string
}

// New returns the Meta channel. appSecret is the app's App Secret (Meta's
// app dashboard, Settings > Basic) that keys X-Hub-Signature-256;
// verifyToken is the string entered as "Verify token" when subscribing the
// webhook. An empty appSecret makes every Verify fail and an empty
// verifyToken makes every Handshake fail.
func New(appSecret, verifyToken string) *Channel {
	return &Channel{appSecret: []byte(appSecret), verifyToken: verifyToken}
}

// Name returns "meta".
func (c *Channel) Name() string { return "meta" }

// Handshake answers Meta's subscription check: GET
// ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C is answered 200
// with C as plain text when T is the configured verify token, and 403
// otherwise.
func (c *Channel) Handshake(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("hub.verify_token")
	ok := c.verifyToken != "" && q.Get("hub.mode") == "subscribe" &&
		hmac.Equal([]byte(token), []byte(c.verifyToken))
	if !ok {
		http.Error(w, "verification failed: hub.mode must be subscribe and hub.verify_token must match the configured token", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(q.Get("hub.challenge")))
}

// Verify checks X-Hub-Signature-256 ("sha256=" and 64 lowercase or
// uppercase hex digits) against the body. Meta computes the HMAC over the
// payload with non-ASCII characters escaped as lowercase \uXXXX (äöå
// becomes \u00e4\u00f6\u00e5, emoji become UTF-16 surrogate pairs) but may
// deliver the body unescaped, so Verify accepts the HMAC of the raw bytes,
// of that escaped form, and of the escaped form with the further escapes
// Meta's Messenger documentation once listed (/ as \/, < % @ as \u003C
// \u0025 \u0040). All comparisons are constant-time.
func (c *Channel) Verify(r *http.Request, body []byte) error {
	if len(c.appSecret) == 0 {
		return channels.Unauthorized("meta app secret is not configured")
	}
	header := r.Header.Get(SignatureHeader)
	if header == "" {
		return channels.Unauthorized("missing " + SignatureHeader + " header")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return channels.Unauthorized(SignatureHeader + " must start with sha256=")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return channels.Unauthorized(SignatureHeader + " must be sha256= followed by 64 hex digits")
	}
	for _, candidate := range signedForms(body) {
		if channels.EqualSignature(got, mac(c.appSecret, candidate)) {
			return nil
		}
	}
	return channels.Unauthorized(SignatureHeader + " does not match the body")
}

// signedForms returns the byte strings Meta may have signed for body,
// without duplicates.
func signedForms(body []byte) [][]byte {
	forms := [][]byte{body}
	escaped := EscapeNonASCII(body)
	if string(escaped) != string(body) {
		forms = append(forms, escaped)
	}
	legacy := escapeLegacy(escaped)
	if string(legacy) != string(escaped) {
		forms = append(forms, legacy)
	}
	return forms
}

// Sign returns the X-Hub-Signature-256 header value Meta would send for
// body: "sha256=" and the lowercase hex HMAC-SHA256 of the body with
// non-ASCII characters escaped as \uXXXX, under secret. Tests, the demo and
// the bench use it to sign payloads exactly as Meta does.
func Sign(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac([]byte(secret), EscapeNonASCII(body)))
}

// SignRaw returns the header value for an HMAC over the raw bytes of body,
// as Meta sends for a body that is pure ASCII.
func SignRaw(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac([]byte(secret), body))
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// EscapeNonASCII returns body with every non-ASCII character replaced by a
// JSON \uXXXX escape with lowercase hex digits; characters outside the
// Basic Multilingual Plane become a UTF-16 surrogate pair ("😀" becomes
// \ud83d\ude00). Invalid UTF-8 bytes become \ufffd. ASCII bytes are copied
// unchanged, so existing escapes such as \/ or \n survive. This is the form
// Meta computes X-Hub-Signature-256 over.
func EscapeNonASCII(body []byte) []byte {
	i := 0
	for i < len(body) && body[i] < utf8.RuneSelf {
		i++
	}
	if i == len(body) {
		return body
	}
	out := make([]byte, 0, len(body)+len(body)/2)
	out = append(out, body[:i]...)
	for i < len(body) {
		b := body[i]
		if b < utf8.RuneSelf {
			out = append(out, b)
			i++
			continue
		}
		r, size := utf8.DecodeRune(body[i:])
		i += size
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			out = appendEscape(out, hi)
			out = appendEscape(out, lo)
			continue
		}
		out = appendEscape(out, r)
	}
	return out
}

const hexDigits = "0123456789abcdef"

func appendEscape(out []byte, r rune) []byte {
	return append(out, '\\', 'u',
		hexDigits[(r>>12)&0xf], hexDigits[(r>>8)&0xf], hexDigits[(r>>4)&0xf], hexDigits[r&0xf])
}

// escapeLegacy applies the escapes the Messenger documentation once listed
// on top of EscapeNonASCII: "/" as "\/", "<" as "\u003C", "%" as "\u0025"
// and "@" as "\u0040". It copies existing escape sequences unchanged, so an
// already escaped "\/" is not escaped twice.
func escapeLegacy(body []byte) []byte {
	out := make([]byte, 0, len(body)+len(body)/8)
	for i := 0; i < len(body); i++ {
		b := body[i]
		if b == '\\' && i+1 < len(body) {
			out = append(out, b, body[i+1])
			i++
			continue
		}
		switch b {
		case '/':
			out = append(out, '\\', '/')
		case '<':
			out = append(out, `\u003C`...)
		case '%':
			out = append(out, `\u0025`...)
		case '@':
			out = append(out, `\u0040`...)
		default:
			out = append(out, b)
		}
	}
	return out
}

var _ channels.Channel = (*Channel)(nil)
