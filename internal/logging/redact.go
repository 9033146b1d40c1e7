package logging

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
)

// fingerprintKey keys the log fingerprints. It starts as a random per-process
// key, so fingerprints correlate within one process; SetFingerprintKey with a
// key derived from the deployment's pepper makes them correlate across
// processes and restarts.
var fingerprintKey atomic.Pointer[[]byte]

func init() {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("logging: no randomness for the fingerprint key: " + err.Error())
	}
	fingerprintKey.Store(&k)
}

// SetFingerprintKey sets the key of log fingerprints, for example
// privacy.Hasher.Subkey("log-fingerprint"). Keys shorter than 16 bytes are
// ignored.
func SetFingerprintKey(key []byte) {
	if len(key) < 16 {
		return
	}
	k := append([]byte(nil), key...)
	fingerprintKey.Store(&k)
}

// Fingerprint returns a short keyed hash of value, "fp:" and 12 hex digits
// (48 bits): enough to tell values apart in logs, too short and keyed to be
// reversed. An empty value gives "".
func Fingerprint(value string) string {
	if value == "" {
		return ""
	}
	m := hmac.New(sha256.New, *fingerprintKey.Load())
	m.Write([]byte(value))
	return "fp:" + hex.EncodeToString(m.Sum(nil)[:6])
}

// Redacted returns a field that logs a fingerprint of value under key, never
// the value itself.
func Redacted(key, value string) zap.Field {
	return zap.String(key, Fingerprint(value))
}

// Email returns an "email" field with the fingerprint of the address,
// normalised (trimmed, lowercase) so that spellings of one address match.
func Email(value string) zap.Field {
	return Redacted("email", strings.ToLower(strings.TrimSpace(value)))
}

// Phone returns a "phone" field with the fingerprint of the number's digits
// (and a leading +), so "+31 6 1234 5678" and "+31612345678" match.
func Phone(value string) zap.Field {
	var b strings.Builder
	for i, r := range strings.TrimSpace(value) {
		if unicode.IsDigit(r) || (r == '+' && i == 0) {
			b.WriteRune(r)
		}
	}
	return Redacted("phone", b.String())
}

// Handle returns a "handle" field with the fingerprint of a social media
// handle or platform user ID (trimmed, lowercase, without a leading @).
func Handle(value string) zap.Field {
	return Redacted("handle", strings.TrimPrefix(strings.ToLower(strings.TrimSpace(value)), "@"))
}

// Text returns a "text" field for message text: its fingerprint and its
// length in characters, never the words.
func Text(value string) zap.Field {
	if value == "" {
		return zap.String("text", "")
	}
	return zap.String("text", Fingerprint(value)+" len="+strconv.Itoa(utf8.RuneCountInString(value)))
}
