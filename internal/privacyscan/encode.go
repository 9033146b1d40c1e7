package privacyscan

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"
)

// minEncodedLen is the shortest encoded form searched for. Shorter base64
// fragments (of a short value at an awkward alignment) would match random
// bytes.
const minEncodedLen = 6

// pattern is one encoded form of a needle.
type pattern struct {
	encoding string
	bytes    []byte
}

// Encodings returns the names of the encodings Scan searches, in the order
// they are tried.
func Encodings() []string {
	return []string{"plain", "lowercase", "json-escaped", "json-escaped-upper", "json-escaped-all", "utf-16le",
		"base64", "base64url", "hex", "hex-upper"}
}

// patterns returns every encoded form of v, without duplicates.
func patterns(v string) []pattern {
	var out []pattern
	seen := map[string]bool{}
	add := func(enc string, b []byte) {
		if len(b) < minEncodedLen && enc != "plain" {
			return
		}
		if seen[string(b)] {
			return
		}
		seen[string(b)] = true
		out = append(out, pattern{enc, b})
	}
	add("plain", []byte(v))
	add("lowercase", []byte(strings.ToLower(v)))
	add("json-escaped", []byte(jsonEscape(v, false, false)))
	add("json-escaped-upper", []byte(jsonEscape(v, true, false)))
	add("json-escaped-all", []byte(jsonEscape(v, false, true)))
	add("utf-16le", utf16LE(v))
	for i, frag := range base64Fragments(base64.RawStdEncoding, []byte(v)) {
		add(fmt.Sprintf("base64 (alignment %d)", i), []byte(frag))
	}
	for i, frag := range base64Fragments(base64.RawURLEncoding, []byte(v)) {
		add(fmt.Sprintf("base64url (alignment %d)", i), []byte(frag))
	}
	add("hex", []byte(hex.EncodeToString([]byte(v))))
	add("hex-upper", []byte(strings.ToUpper(hex.EncodeToString([]byte(v)))))
	return out
}

// jsonEscape writes v as it appears inside a JSON string written by an
// encoder that escapes every non-ASCII rune as \uXXXX (UTF-16 surrogate
// pairs above U+FFFF) and the characters HTML-safe encoders escape (<, >,
// &, and + as \u002b). With all set, every character that is not a letter
// or digit is escaped, as some JavaScript encoders do. Upper selects
// uppercase hex digits.
func jsonEscape(v string, upper, all bool) string {
	format := "\\u%04x"
	if upper {
		format = "\\u%04X"
	}
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20, r == '<', r == '>', r == '&', r == '+', r == '\'', r == 0x2028, r == 0x2029:
			fmt.Fprintf(&b, format, r)
		case r > 0x7e:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, format, u)
			}
		case all && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			fmt.Fprintf(&b, format, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func utf16LE(v string) []byte {
	units := utf16.Encode([]rune(v))
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		out = append(out, byte(u), byte(u>>8))
	}
	return out
}

// base64Fragments returns, for each of the three byte alignments v can have
// inside a longer base64-encoded message, the characters of its encoding
// that depend on v alone. A value embedded anywhere in base64 data (such as
// a phone number inside a WhatsApp message ID) contains one of them.
func base64Fragments(enc *base64.Encoding, v []byte) []string {
	var out []string
	for shift := 0; shift < 3; shift++ {
		buf := make([]byte, shift+len(v))
		copy(buf[shift:], v)
		s := enc.EncodeToString(buf)
		// Character i covers bits [6i, 6i+6) of the input; keep those
		// that lie entirely inside v.
		first := (8*shift + 5) / 6
		last := 8 * (shift + len(v)) / 6
		if last > len(s) {
			last = len(s)
		}
		if last-first >= minEncodedLen {
			out = append(out, s[first:last])
		}
	}
	return out
}
