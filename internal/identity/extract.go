// Package identity finds contact details in the private messages customers
// send (emails, phone numbers, Dutch postcodes with house numbers, labelled
// names) and decides, by strict rules, whether a social handle may be linked
// to a CRM contact. It is pure logic: it calls no CRM and no Temporal API, so
// the activities that wire it in can test it without either.
//
// Extraction is deliberately conservative. A wrong automatic link shows one
// customer's data to another, so a value that might be something else (an
// order number, a tracking code, a date, an IBAN) is left out rather than
// guessed.
package identity

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultRegion is the region used to read phone numbers written without a
// country code when Options.DefaultRegion is empty.
const DefaultRegion = "NL"

// maxInputBytes bounds the text Extract reads. A DM is short; anything past
// this is ignored so that a hostile message cannot make extraction slow.
const maxInputBytes = 16 << 10

// Options configures Extract.
type Options struct {
	// DefaultRegion is the ISO 3166-1 region (for example "NL" or "BE") used
	// for phone numbers written in national format. Default: "NL".
	DefaultRegion string
}

// Address is a Dutch postal address as far as matching needs it.
type Address struct {
	// Postcode is normalised to four digits and two capitals, "1234AB".
	Postcode string `json:"postcode"`
	// HouseNumber is the number alone, "12", or empty when none was given.
	HouseNumber string `json:"house_number,omitempty"`
	// Addition is the normalised addition, "A" or "II", or empty.
	Addition string `json:"addition,omitempty"`
}

// Details are the contact details found in one message. Every list is
// deduplicated and in order of appearance.
type Details struct {
	// Emails are addresses with the domain lowercased; the local part is
	// kept as written.
	Emails []string `json:"emails,omitempty"`
	// Phones are valid numbers in E.164 form, "+31612345678".
	Phones []string `json:"phones,omitempty"`
	// Addresses are Dutch postcodes with the house number and addition
	// when they were given.
	Addresses []Address `json:"addresses,omitempty"`
	// Names are full names that were clearly labelled ("naam:", "my name
	// is", a signature after a closing greeting).
	Names []string `json:"names,omitempty"`
}

// Empty reports whether no detail was found.
func (d Details) Empty() bool {
	return len(d.Emails) == 0 && len(d.Phones) == 0 && len(d.Addresses) == 0 && len(d.Names) == 0
}

// Extract returns the contact details in text, a private message in Dutch or
// English. It never fails: text it cannot read yields no details. Only text
// from private (DM) messages may be passed in for matching; public posts are
// never a source of identity evidence.
func Extract(text string, opts Options) Details {
	region := strings.ToUpper(strings.TrimSpace(opts.DefaultRegion))
	if region == "" {
		region = DefaultRegion
	}
	text = prepare(text)
	m := []byte(text) // masked copy: spans already read are blanked out

	var d Details
	maskAll(m, urlRE)
	d.Emails = extractEmails(m)
	maskAll(m, ibanRE)
	maskAll(m, dateRE)
	maskAll(m, isoDateRE)
	d.Addresses = extractAddresses(text, m)
	d.Phones = extractPhones(text, m, region)
	d.Names = extractNames(text)
	return d
}

// prepare makes text safe and uniform to scan: valid UTF-8, bounded length,
// and the odd spaces and dashes people paste turned into plain ones.
func prepare(text string) string {
	if len(text) > maxInputBytes {
		text = text[:maxInputBytes]
		for len(text) > 0 && !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
	}
	text = strings.ToValidUTF8(text, " ")
	return strings.Map(func(r rune) rune {
		switch r {
		case '\u00a0', '\u2007', '\u202f', '\u2009', '\u200a', '\t', '\u3000':
			return ' '
		case '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212':
			return '-'
		case '\uff0b':
			return '+'
		case '\u200b', '\u200c', '\u200d', '\ufeff', '\u2060':
			return -1
		case '\r':
			return '\n'
		}
		return r
	}, text)
}

// maskByte replaces consumed bytes in the masked copy. It is neither a
// letter, a digit nor a separator, so nothing joins across it.
const maskByte = '\x00'

func mask(m []byte, start, end int) {
	for i := start; i < end; i++ {
		m[i] = maskByte
	}
}

func maskAll(m []byte, re *regexp.Regexp) {
	for _, loc := range re.FindAllIndex(m, -1) {
		mask(m, loc[0], loc[1])
	}
}

var (
	urlRE = regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s<>"]+`)
	// ibanRE finds IBANs, compact or in groups of four, in either case.
	ibanRE = regexp.MustCompile(`(?i)\b[a-z]{2}[0-9]{2}(?: ?[a-z0-9]{4}){3,7}(?: ?[a-z0-9]{1,3})?\b`)
	// dateRE finds day-month-year dates with a four-digit year.
	dateRE    = regexp.MustCompile(`\b[0-3]?[0-9][-/.][01]?[0-9][-/.](?:19|20)[0-9]{2}\b`)
	isoDateRE = regexp.MustCompile(`\b(?:19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]\b`)
)

// isWordRune reports whether r belongs to a word (letters and digits).
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// runeBefore returns the rune that ends just before byte offset i.
func runeBefore(s []byte, i int) rune {
	if i <= 0 {
		return 0
	}
	r, _ := utf8.DecodeLastRune(s[:i])
	return r
}

// runeAt returns the rune that starts at byte offset i.
func runeAt(s []byte, i int) rune {
	if i >= len(s) {
		return 0
	}
	r, _ := utf8.DecodeRune(s[i:])
	return r
}

// runeAtString returns the rune that starts at byte offset i of s.
func runeAtString(s string, i int) rune {
	if i >= len(s) {
		return 0
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}

// lineBefore returns at most max bytes of the line that ends at byte
// offset i, starting on a rune boundary.
func lineBefore(text string, i, max int) string {
	line := text[:i]
	if len(line) > max {
		line = line[len(line)-max:]
		for len(line) > 0 && !utf8.RuneStart(line[0]) {
			line = line[1:]
		}
	}
	if nl := strings.LastIndexByte(line, '\n'); nl >= 0 {
		line = line[nl+1:]
	}
	return line
}

// wordsBefore returns up to n lowercased words that end before byte offset
// i on the same line, nearest first. Words keep inner '&' and '-' so that
// "track&trace" stays one word.
func wordsBefore(text string, i, n int) []string {
	// Labels sit right before the value; a bounded look-back keeps this
	// cheap on long lines.
	line := lineBefore(text, i, 120)
	fields := strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '&' || r == '-' || r == '.')
	})
	var out []string
	for k := len(fields) - 1; k >= 0 && len(out) < n; k-- {
		w := strings.Trim(fields[k], ".-&")
		if w == "" {
			continue
		}
		out = append(out, w)
	}
	return out
}

// dedupe keeps the first occurrence of each value, compared by key.
func dedupe(vals []string, key func(string) string) []string {
	seen := make(map[string]bool, len(vals))
	out := vals[:0]
	for _, v := range vals {
		k := key(v)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
