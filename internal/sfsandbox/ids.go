package sfsandbox

import "strings"

const (
	idAlphabet   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	base62       = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	idInstance   = "5g0"
	sandboxOrgID = "00D5g000004SbxAEAS"
)

// caseSafeSuffix computes the 3-character suffix that turns a 15-character
// Salesforce ID into its case-insensitive 18-character form.
func caseSafeSuffix(id15 string) string {
	var b strings.Builder
	for chunk := 0; chunk < 3; chunk++ {
		n := 0
		for i := 0; i < 5; i++ {
			c := id15[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		b.WriteByte(idAlphabet[n])
	}
	return b.String()
}

// newID builds an 18-character ID from a key prefix and a sequence number.
func newID(prefix string, seq uint64) string {
	var body [9]byte
	for i := 8; i >= 0; i-- {
		body[i] = base62[seq%62]
		seq /= 62
	}
	id15 := prefix + idInstance + string(body[:])
	return id15 + caseSafeSuffix(id15)
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// normalizeID returns the canonical 18-character form of a 15- or
// 18-character ID, restoring the case of an 18-character ID from its
// suffix as Salesforce does. ok is false for a malformed ID.
func normalizeID(s string) (string, bool) {
	if !isAlnum(s) {
		return "", false
	}
	switch len(s) {
	case 15:
		return s + caseSafeSuffix(s), true
	case 18:
		b := []byte(s[:15])
		for chunk := 0; chunk < 3; chunk++ {
			n := strings.IndexByte(idAlphabet, upper(s[15+chunk]))
			if n < 0 {
				return "", false
			}
			for i := 0; i < 5; i++ {
				c := b[chunk*5+i]
				if n&(1<<i) != 0 {
					b[chunk*5+i] = upper(c)
				} else if c >= 'A' && c <= 'Z' {
					b[chunk*5+i] = c + 'a' - 'A'
				}
			}
		}
		id15 := string(b)
		if !strings.EqualFold(caseSafeSuffix(id15), s[15:]) {
			return "", false
		}
		return id15 + caseSafeSuffix(id15), true
	}
	return "", false
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
