package identity

import (
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// blockWords are words that, shortly before a run of digits, say it is a
// reference and not a phone number: order and shipment numbers, customer
// and invoice numbers, bank accounts. Words are matched on their start, so
// "bestelnummer" also covers "bestelnummers".
var blockWords = []string{
	"bestel", "order", "zending", "verzend", "track", "t&t", "klantnummer", "klantnr",
	"klant-nr", "customer", "factuur", "invoice", "iban", "rekening", "account",
	"referentie", "reference", "ref", "kenmerk", "dossier", "ticket", "case", "pakket",
	"parcel", "package", "barcode", "contract", "polis", "policy", "bsn", "artikel",
	"article", "sku", "ean", "serie", "serial", "transactie", "transaction", "betaling",
	"payment", "bon", "receipt", "boeking", "booking", "reservering", "reservation",
	"abonnement", "subscription", "lidmaatschap", "member", "vlucht", "flight",
	"kvk", "btw", "vat", "pin", "code", "nummerbord", "kenteken", "id", "retour",
	"return", "rma", "shipment", "zaak", "aanvraag",
}

// phoneWords say that what follows is a phone number. When one is nearer to
// the digits than a block word, it wins: "ordernr 123, tel 06 1234 5678".
var phoneWords = []string{
	"tel", "telefoon", "telefoonnummer", "telnr", "tel.nr", "phone", "mobiel", "mobile",
	"mob", "gsm", "cell", "cellphone", "whatsapp", "bel", "bellen", "call", "telephone",
	"mobielnummer", "mobiele", "06-nummer", "bereikbaar", "reachable",
}

// blockedBefore reports whether the digits at byte offset i are labelled as
// a reference rather than a phone number by the words just before them.
func blockedBefore(text string, i int) bool {
	if i > 0 && text[i-1] == '#' {
		return true
	}
	for _, w := range wordsBefore(text, i, 3) {
		for _, p := range phoneWords {
			if w == p {
				return false
			}
		}
		for _, b := range blockWords {
			if strings.HasPrefix(w, b) {
				return true
			}
		}
	}
	return false
}

// maxPhoneGroups is the most digit groups one phone number is read from.
const maxPhoneGroups = 8

// maxPhoneParses bounds the candidates parsed in one message. Parsing is
// the expensive step; a DM has a handful of candidates, and a hostile run
// of digits must not make extraction slow.
const maxPhoneParses = 200

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// digitGroup is a run of digits inside a phone-like span.
type digitGroup struct {
	start, end int
	// spaced is true when whitespace or a slash separates the group from
	// the one before it, so a number may start here.
	spaced bool
}

// isPhoneSep reports whether c may sit between the digit groups of one
// phone number.
func isPhoneSep(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')'
}

// extractPhones finds valid phone numbers in the masked text m and returns
// them in E.164 form.
func extractPhones(text string, m []byte, region string) []string {
	var out []string
	budget := maxPhoneParses
	i := 0
	for i < len(m) {
		c := m[i]
		if !(c >= '0' && c <= '9') && c != '+' && c != '(' {
			i++
			continue
		}
		// A span starts at a word boundary: "NL0612345678" and
		// "A1234567890" are codes.
		if isWordRune(runeBefore(m, i)) || (i > 0 && (m[i-1] >= '0' && m[i-1] <= '9')) {
			i = skipSpan(m, i)
			continue
		}
		end := scanSpan(m, i)
		out = append(out, phonesInSpan(text, m, i, end, region, &budget)...)
		if end <= i {
			end = i + 1
		}
		i = end
	}
	return dedupe(out, func(s string) string { return s })
}

// skipSpan moves past the digits and letters starting at i.
func skipSpan(m []byte, i int) int {
	for i < len(m) && (isWordRune(runeAt(m, i)) || m[i] == '+' || m[i] == '(') {
		i++
	}
	return i
}

// scanSpan returns the end of the phone-like span starting at i: digits,
// at most three separators in a row, and a '+' only at the start.
func scanSpan(m []byte, i int) int {
	j := i
	if m[j] == '+' || m[j] == '(' {
		j++
	}
	if j < len(m) && m[j] == '+' {
		j++
	}
	lastDigit := -1
	seps := 0
	for j < len(m) {
		c := m[j]
		switch {
		case c >= '0' && c <= '9':
			lastDigit = j
			seps = 0
		case isPhoneSep(c):
			seps++
			if seps > 3 {
				return lastDigit + 1
			}
		default:
			return lastDigit + 1
		}
		j++
	}
	return lastDigit + 1
}

// phonesInSpan finds the numbers in one span by trying, from each group
// where a number may start, the longest run of groups that is a valid
// number.
func phonesInSpan(text string, m []byte, start, end int, region string, budget *int) []string {
	if end <= start {
		return nil
	}
	// A letter glued to the end makes it a code: "0612345678NL".
	if unicode.IsLetter(runeAt(m, end)) {
		return nil
	}
	var groups []digitGroup
	spaced := true
	for j := start; j < end; {
		if m[j] >= '0' && m[j] <= '9' {
			k := j
			for k < end && m[k] >= '0' && m[k] <= '9' {
				k++
			}
			groups = append(groups, digitGroup{start: j, end: k, spaced: spaced})
			spaced = false
			j = k
			continue
		}
		if m[j] == ' ' || m[j] == '/' {
			spaced = true
		}
		j++
	}
	var out []string
	for g := 0; g < len(groups); {
		if !groups[g].spaced {
			g++
			continue
		}
		from := groups[g].start
		// Include a '+' or '(' that opens the number.
		for from > start && (m[from-1] == '+' || m[from-1] == '(') {
			from--
		}
		// The longest run worth trying holds at most 17 digits ("00" and
		// fifteen), which also bounds the work on a long run of digits.
		// No one writes a number in more than maxPhoneGroups groups
		// ("+31 (0)6 12 34 56 78" is seven).
		last, n := g, 0
		for h := g; h < len(groups) && h-g < maxPhoneGroups; h++ {
			n += groups[h].end - groups[h].start
			if n > 17 {
				break
			}
			last = h
		}
		if countDigits(string(m[from:groups[last].end])) < 8 {
			g++
			continue
		}
		if blockedBefore(text, from) {
			// The label covers the whole span: "order 0612345678 / 0687654321".
			return out
		}
		found := false
		for h := last; h >= g; h-- {
			if *budget <= 0 {
				return out
			}
			raw := string(m[from:groups[h].end])
			if countDigits(raw) < 8 {
				break
			}
			*budget--
			if e164, ok := parsePhone(raw, region); ok {
				out = append(out, e164)
				g = h + 1
				found = true
				break
			}
		}
		if !found {
			g++
		}
	}
	return out
}

// parsePhone parses one candidate and returns it in E.164 form when it is
// a valid number written the way people write phone numbers.
func parsePhone(raw string, region string) (string, bool) {
	digits := countDigits(raw)
	if digits < 8 || digits > 17 {
		return "", false
	}
	s := strings.TrimLeft(raw, "(")
	international := strings.HasPrefix(s, "+") || strings.HasPrefix(s, "00")
	if !international {
		// A national number starts with the trunk prefix where the region
		// has one ("06…", "020…"); bare digit runs are order numbers.
		// Only regions whose trunk prefix is "0" get this check; elsewhere
		// (the US, for one) numbers are written without it.
		ndd := phonenumbers.GetNddPrefixForRegion(region, true)
		if ndd == "0" && !strings.HasPrefix(s, ndd) {
			return "", false
		}
	}
	if international {
		// "+31 (0)6 1234 5678": the "(0)" is the trunk prefix that must be
		// dropped after a country code.
		s = strings.Replace(s, "(0)", "", 1)
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}
