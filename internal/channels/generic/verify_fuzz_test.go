package generic

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
)

// FuzzGenericVerify checks the generic webhook's signature and timestamp
// verification on outside input: it never panics and fails only with
// ErrUnauthorized; headers signed within five minutes of now verify and
// headers signed further away do not; an arbitrary pair of headers
// verifies only if the timestamp is Unix seconds within the window and
// the signature is the HMAC of exactly that timestamp string and the body
// (hex digits in either case, as senders' libraries differ); and the valid
// headers with one byte replaced or inserted, or over a body with one byte
// changed, added or removed, fail.
func FuzzGenericVerify(f *testing.F) {
	now := fixedNow.Unix()
	sig, ts := Sign(testSecret, fixedNow, []byte(oneEvent))
	seeds := []struct {
		body, sig, ts string
		offset        int64
	}{
		{oneEvent, sig, ts, 0},
		{twoEvents, "", "", 300},
		{"{}", "sha256=" + signVectorHex, "1714564800", -301},
		{"{}", "sha256=" + strings.ToUpper(signVectorHex), "1714564800", 1},
		{"", "sha256=", strconv.FormatInt(now, 10), -300},
		{"äöå 😀 \xff\x00", "sha256=" + strings.Repeat("0", 63), strconv.FormatInt(now, 10), 301},
		{oneEvent, sig, "+" + ts, 59},
		{oneEvent, sig, "0" + ts, -59},
		{oneEvent, sig, " " + ts, 1 << 40},
		{oneEvent, "SHA256=" + strings.TrimPrefix(sig, "sha256="), ts, -1 << 62},
		{oneEvent, sig, "99999999999999999999", 0},
		{oneEvent, sig, "-9223372036854775808", 0},
		{oneEvent, sig, "0x" + strconv.FormatInt(now, 16), 0},
		{oneEvent, "sha256=" + strings.Repeat("zz", 32), ts, 0},
	}
	for i, s := range seeds {
		f.Add([]byte(s.body), s.sig, s.ts, s.offset, uint16(i*11), byte('a'+i))
	}
	c := New(testSecret, clock)
	f.Fuzz(func(t *testing.T, body []byte, sigHeader, tsHeader string, offset int64, pos uint16, b byte) {
		// Headers signed offset seconds away from now.
		at := time.Unix(now+offset%1000, 0)
		validSig, validTS := Sign(testSecret, at, body)
		inWindow := offset%1000 >= -300 && offset%1000 <= 300
		if err := c.Verify(request(validSig, validTS), body); (err == nil) != inWindow {
			t.Fatalf("headers signed %ds from now: %v", offset%1000, err)
		}

		// Arbitrary headers verify only if they are what the secret signs.
		err := c.Verify(request(sigHeader, tsHeader), body)
		if err != nil && !errors.Is(err, channels.ErrUnauthorized) {
			t.Fatalf("Verify error %v does not wrap ErrUnauthorized", err)
		}
		if err == nil {
			sec, perr := strconv.ParseInt(tsHeader, 10, 64)
			if perr != nil || sec < now-300 || sec > now+300 {
				t.Fatalf("timestamp %q verified outside the window", tsHeader)
			}
			if want := "sha256=" + hex.EncodeToString(mac([]byte(testSecret), tsHeader, body)); strings.ToLower(sigHeader) != want || !strings.HasPrefix(sigHeader, "sha256=") {
				t.Fatalf("signature %q verified; only %q may", sigHeader, want)
			}
		}

		// Start from headers signed now: any change to them or to the body
		// fails.
		validSig, validTS = Sign(testSecret, fixedNow, body)
		i := int(pos) % (len(validSig) + 1)
		if i < len(validSig) && validSig[i] != b && !sameHexDigit(validSig[i], b, i) {
			replaced := validSig[:i] + string([]byte{b}) + validSig[i+1:]
			if c.Verify(request(replaced, validTS), body) == nil {
				t.Fatalf("the signature with byte %d replaced by %#x verified: %q", i, b, replaced)
			}
		}
		if inserted := validSig[:i] + string([]byte{b}) + validSig[i:]; c.Verify(request(inserted, validTS), body) == nil {
			t.Fatalf("the signature with %#x inserted at %d verified: %q", b, i, inserted)
		}
		k := int(pos) % (len(validTS) + 1)
		if k < len(validTS) && validTS[k] != b {
			replaced := validTS[:k] + string([]byte{b}) + validTS[k+1:]
			if c.Verify(request(validSig, replaced), body) == nil {
				t.Fatalf("the timestamp with byte %d replaced by %#x verified: %q", k, b, replaced)
			}
		}
		if inserted := validTS[:k] + string([]byte{b}) + validTS[k:]; c.Verify(request(validSig, inserted), body) == nil {
			t.Fatalf("the timestamp with %#x inserted at %d verified: %q", b, k, inserted)
		}
		j := int(pos) % (len(body) + 1)
		if j < len(body) {
			changed := append([]byte(nil), body...)
			changed[j] ^= b | 1
			if c.Verify(request(validSig, validTS), changed) == nil {
				t.Fatalf("a body with byte %d changed verified", j)
			}
			removed := append(append([]byte(nil), body[:j]...), body[j+1:]...)
			if c.Verify(request(validSig, validTS), removed) == nil {
				t.Fatalf("a body with byte %d removed verified", j)
			}
		}
		added := append(append(append([]byte(nil), body[:j]...), b), body[j:]...)
		if c.Verify(request(validSig, validTS), added) == nil {
			t.Fatalf("a body with a byte added at %d verified", j)
		}
		if other, _ := Sign("another secret", fixedNow, body); c.Verify(request(other, validTS), body) == nil {
			t.Fatal("a signature under another secret verified")
		}
	})
}

// sameHexDigit reports whether b is the hex digit at index i of a
// signature header in the other case, which Verify accepts as the same
// digit.
func sameHexDigit(digit, b byte, i int) bool {
	return i >= len("sha256=") && strings.EqualFold(string(digit), string(b))
}
