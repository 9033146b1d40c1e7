package x

import (
	"errors"
	"testing"

	"github.com/webcaresync/webcaresync/internal/channels"
)

// FuzzXVerify checks x-twitter-webhooks-signature verification on outside
// input: it never panics and fails only with ErrUnauthorized; the header X
// sends for a body verifies; and no other header does: not an arbitrary
// one, not the valid one with one byte replaced or inserted (including
// base64's ignored newlines and unused padding bits), and not the valid
// one over a body with one byte changed, added or removed.
func FuzzXVerify(f *testing.F) {
	seeds := []struct {
		body, header string
	}{
		{dmBatch, Sign(testSecret, []byte(dmBatch))},
		{tweetBatch, ""},
		{`{"for_user_id":"1"}`, "sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9g="},
		{"", Sign(testSecret, nil)},
		{"äöå 😀 \xff\x00", "sha256="},
		{"{}", "sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9g"},
		{"{}", "sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9h="},
		{"{}", "sha256=uNC4JqSmcPgeiuC+j/6V8iwu\nJlhoTr00Bq1+uHQTE9g="},
		{"{}", "SHA256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9g="},
		{"{}", "sha256=" + "abababababababababababababababababababababababababababababababab"},
		{"{}", "sha256=uNC4JqSmcPgeiuC-j_6V8iwuJlhoTr00Bq1-uHQTE9g="},
		{"{}", " sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9g= "},
		{"{}", "sha256=====" + "===="},
	}
	for i, s := range seeds {
		f.Add([]byte(s.body), s.header, uint16(i*7), byte('a'+i))
	}
	c := New(testSecret)
	f.Fuzz(func(t *testing.T, body []byte, header string, pos uint16, b byte) {
		valid := Sign(testSecret, body)
		if err := c.Verify(request(valid), body); err != nil {
			t.Fatalf("the signature X sends was rejected: %v", err)
		}

		// An arbitrary header verifies only if it is the valid one.
		err := c.Verify(request(header), body)
		if err != nil && !errors.Is(err, channels.ErrUnauthorized) {
			t.Fatalf("Verify error %v does not wrap ErrUnauthorized", err)
		}
		if err == nil && header != valid {
			t.Fatalf("header %q verified; only %q may", header, valid)
		}

		// The valid header with one byte replaced or inserted fails.
		i := int(pos) % (len(valid) + 1)
		if i < len(valid) && valid[i] != b {
			replaced := valid[:i] + string([]byte{b}) + valid[i+1:]
			if c.Verify(request(replaced), body) == nil {
				t.Fatalf("the valid header with byte %d replaced by %#x verified: %q", i, b, replaced)
			}
		}
		inserted := valid[:i] + string([]byte{b}) + valid[i:]
		if c.Verify(request(inserted), body) == nil {
			t.Fatalf("the valid header with %#x inserted at %d verified: %q", b, i, inserted)
		}

		// The valid header over a changed body fails.
		j := int(pos) % (len(body) + 1)
		if j < len(body) {
			changed := append([]byte(nil), body...)
			changed[j] ^= b | 1
			if c.Verify(request(valid), changed) == nil {
				t.Fatalf("a body with byte %d changed verified", j)
			}
			removed := append(append([]byte(nil), body[:j]...), body[j+1:]...)
			if c.Verify(request(valid), removed) == nil {
				t.Fatalf("a body with byte %d removed verified", j)
			}
		}
		added := append(append(append([]byte(nil), body[:j]...), b), body[j:]...)
		if c.Verify(request(valid), added) == nil {
			t.Fatalf("a body with a byte added at %d verified", j)
		}

		// Another secret's signature fails.
		if c.Verify(request(Sign("another secret", body)), body) == nil {
			t.Fatal("a signature under another secret verified")
		}
	})
}

// Only the encoding X sends verifies: the same HMAC with other values in
// the unused bits of the last base64 character, or with a line break
// inside, which Go's decoder would skip, is refused.
func TestVerifyRefusesOtherEncodingsOfTheHMAC(t *testing.T) {
	c := New(testSecret)
	body := []byte(`{"for_user_id":"1"}`)
	const valid = "sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9g="
	if err := c.Verify(request(valid), body); err != nil {
		t.Fatalf("the valid header: %v", err)
	}
	// 'g' is 100000: 'h', 'i' and 'j' differ only in the two unused bits.
	for _, h := range []string{
		"sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9h=",
		"sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9j=",
		"sha256=uNC4JqSmcPgeiuC+j/6V8iwu\nJlhoTr00Bq1+uHQTE9g=",
		"sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9g=\r\n",
	} {
		if err := c.Verify(request(h), body); !errors.Is(err, channels.ErrUnauthorized) {
			t.Errorf("header %q: %v, want ErrUnauthorized", h, err)
		}
	}
}
