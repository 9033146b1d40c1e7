package identity

import (
	"regexp"
	"strings"
)

var (
	// emailRE is deliberately plain: a local part, "@", and a domain with a
	// letters-only top-level label. Angle brackets, quotes, emoji and
	// trailing punctuation are not part of it, so "<jan@x.nl>." yields
	// "jan@x.nl".
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b`)

	// commaTypoRE finds the one typo fixed on purpose: a comma (optionally
	// with a space) typed instead of the dot before the top-level domain of
	// a well-known mail provider, "jan@gmail,com". Only these providers
	// are fixed, because for them the intended address is unambiguous;
	// "jan@example,com" is left alone.
	commaTypoRE = regexp.MustCompile(`(?i)[A-Za-z0-9._%+\-]+@(?:gmail|googlemail|hotmail|outlook|live|msn|icloud|yahoo|ziggo|kpnmail|kpnplanet|planet|xs4all|home|telfort|upcmail|hetnet|casema|quicknet|protonmail|proton|gmx|me)\s?,\s?(?:com|nl|be|net|de|me)\b`)
)

// extractEmails finds the email addresses in the masked text m and blanks
// them out of it, so that their digits are not read again as a phone
// number.
func extractEmails(m []byte) []string {
	type hit struct {
		at    int
		email string
	}
	var hits []hit
	for _, loc := range commaTypoRE.FindAllIndex(m, -1) {
		raw := string(m[loc[0]:loc[1]])
		raw = strings.ReplaceAll(raw, " ", "")
		if e, ok := normaliseEmail(strings.Replace(raw, ",", ".", 1)); ok {
			hits = append(hits, hit{loc[0], e})
		}
		mask(m, loc[0], loc[1])
	}
	for _, loc := range emailRE.FindAllIndex(m, -1) {
		if e, ok := normaliseEmail(string(m[loc[0]:loc[1]])); ok {
			hits = append(hits, hit{loc[0], e})
		}
		mask(m, loc[0], loc[1])
	}
	// The two passes each keep their own order; merge them by position.
	for i := 1; i < len(hits); i++ {
		for j := i; j > 0 && hits[j].at < hits[j-1].at; j-- {
			hits[j], hits[j-1] = hits[j-1], hits[j]
		}
	}
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, h.email)
	}
	return dedupe(out, strings.ToLower)
}

// normaliseEmail trims what cannot start or end an address, lowercases the
// domain and rejects what is not an address after all.
func normaliseEmail(raw string) (string, bool) {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return "", false
	}
	local := strings.Trim(raw[:at], ".-+%")
	domain := strings.ToLower(strings.Trim(raw[at+1:], ".-"))
	if local == "" || len(local) > 64 || strings.Contains(local, "..") {
		return "", false
	}
	if len(domain) > 253 || !strings.Contains(domain, ".") {
		return "", false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
	}
	return local + "@" + domain, true
}
