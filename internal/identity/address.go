package identity

import (
	"regexp"
	"strings"
	"unicode"
)

// postcodeRE finds candidate Dutch postcodes: four digits without a leading
// zero, an optional single space, two letters. PostNL writes them as
// "1234 AB"; "1234AB" and "1234ab" are common too. A hyphen ("1234-AB") is
// not a Dutch postcode form and is not read, because hyphenated digit-letter
// codes are more often product or order codes.
var postcodeRE = regexp.MustCompile(`\b([1-9][0-9]{3})( ?)([A-Za-z]{2})\b`)

// maxAddresses bounds the postcodes read from one message.
const maxAddresses = 32

// PostcodeRE matches a normalised Dutch postcode as Address.Postcode holds it.
var PostcodeRE = regexp.MustCompile(`^[1-9][0-9]{3}[A-Z]{2}$`)

// houseLabelRE finds an explicitly labelled house number anywhere.
var houseLabelRE = regexp.MustCompile(`(?i)\b(?:huisnummer|huisnr|huis nr|house number|house no|nr|no)\b\.?\s*:?\s*([1-9][0-9]{0,4})`)

// twoLetterWords are words and units that follow a number often enough that
// "2024 en" or "1500 km" must not read as a postcode without a label.
var twoLetterWords = map[string]bool{
	"en": true, "in": true, "op": true, "is": true, "te": true, "of": true, "om": true,
	"al": true, "nu": true, "ik": true, "je": true, "we": true, "ze": true, "na": true,
	"zo": true, "de": true, "an": true, "at": true, "to": true, "be": true, "by": true,
	"do": true, "go": true, "he": true, "if": true, "it": true, "me": true, "my": true,
	"no": true, "on": true, "or": true, "so": true, "up": true, "us": true, "as": true,
	"am": true, "pm": true, "er": true, "ga": true, "ja": true, "ok": true, "uw": true,
	"km": true, "kg": true, "mb": true, "gb": true, "cm": true, "mm": true, "ml": true,
	"kb": true, "tb": true, "hz": true, "st": true, "nd": true, "rd": true, "th": true,
	"gr": true, "mg": true, "kw": true, "dl": true, "cl": true, "pk": true, "xl": true,
	"hd": true, "eu": true, "ex": true, "id": true, "tv": true, "ps": true, "cc": true,
}

// unusedPostcodeLetters are letter pairs PostNL does not issue.
var unusedPostcodeLetters = map[string]bool{"SA": true, "SD": true, "SS": true}

// extractAddresses finds postcodes with their house numbers in the masked
// text m and blanks the postcodes out of it.
func extractAddresses(text string, m []byte) []Address {
	var out []Address
	var spans [][2]int
	for _, loc := range postcodeRE.FindAllSubmatchIndex(m, maxAddresses) {
		digits := string(m[loc[2]:loc[3]])
		space := loc[5] > loc[4]
		letters := string(m[loc[6]:loc[7]])
		upper := strings.ToUpper(letters)
		if unusedPostcodeLetters[upper] {
			continue
		}
		if isDecimalContext(m, loc[0]) {
			continue
		}
		labelled := hasWord(wordsBefore(text, loc[0], 2), "postcode", "zip", "zipcode", "postal", "pc", "code")
		if !labelled && twoLetterWords[strings.ToLower(letters)] && !(space && letters == upper && afterAddressLine(text, loc[0])) {
			continue
		}
		a := Address{Postcode: digits + upper}
		if n, add, ok := houseNumberAfter(text, loc[1]); ok {
			a.HouseNumber, a.Addition = n, add
		} else if n, add, ok := houseNumberBefore(text, loc[0]); ok {
			a.HouseNumber, a.Addition = n, add
		}
		out = append(out, a)
		spans = append(spans, [2]int{loc[0], loc[1]})
	}
	for _, s := range spans {
		mask(m, s[0], s[1])
	}
	// A house number labelled elsewhere in the message belongs to the
	// postcode only when there is exactly one postcode.
	if len(out) == 1 && out[0].HouseNumber == "" {
		if loc := houseLabelRE.FindStringSubmatchIndex(text); loc != nil && !blockedBefore(text, loc[0]) {
			if n, add, ok := readHouseNumber(text, loc[2]); ok {
				out[0].HouseNumber, out[0].Addition = n, add
			}
		}
	}
	return dedupeAddresses(out)
}

// isDecimalContext reports whether the digits at i continue a number, as in
// "1.2024 EN" or "€ 1,1234 ab".
func isDecimalContext(m []byte, i int) bool {
	r := runeBefore(m, i)
	if r != '.' && r != ',' && r != '-' && r != '/' && r != '+' {
		return false
	}
	return unicode.IsDigit(runeBefore(m, i-1))
}

// afterAddressLine reports whether the postcode at i follows a street and
// house number on the same line, "Dorpsstraat 12, 2024 EN".
func afterAddressLine(text string, i int) bool {
	_, _, ok := houseNumberBefore(text, i)
	return ok
}

// streetBeforeRE matches a street name and house number right before a
// postcode, optionally followed by a comma and a "postcode" label.
var streetBeforeRE = regexp.MustCompile(`(?i)[\p{L}][\p{L}.'\-]+\s+([1-9][0-9]{0,4}(?:\s?[-/]\s?[a-z0-9]{1,4}|[a-z]{1,3}|\s[a-z]{1,3})?)\s*,?\s*(?:postcode\s*:?\s*)?$`)

// houseNumberBefore reads "Dorpsstraat 12a, " right before byte offset i.
func houseNumberBefore(text string, i int) (string, string, bool) {
	line := lineBefore(text, i, 100)
	loc := streetBeforeRE.FindStringSubmatchIndex(line)
	if loc == nil {
		return "", "", false
	}
	n, add, ok := readHouseNumber(line, loc[2])
	if !ok {
		return "", "", false
	}
	return n, add, true
}

// houseAfterRE matches the separator and optional label between a postcode
// and a house number that follows it.
var houseAfterRE = regexp.MustCompile(`(?i)^[ ,]*(?:(?:huisnummer|huisnr|house number|house no|nummer|number|nr|no)\b\.?\s*:?\s*)?`)

// houseNumberAfter reads "1234 AB 12-II" after the postcode ending at i.
func houseNumberAfter(text string, i int) (string, string, bool) {
	rest := text[i:]
	if len(rest) > 60 {
		rest = rest[:60]
	}
	if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
		rest = rest[:nl]
	}
	loc := houseAfterRE.FindStringIndex(rest)
	j := loc[1]
	if j >= len(rest) || rest[j] < '1' || rest[j] > '9' {
		return "", "", false
	}
	return readHouseNumber(rest, j)
}

// romanAdditions are floor numbers written as Roman numerals, "12-II".
var romanAdditions = map[string]bool{"I": true, "II": true, "III": true, "IV": true, "V": true, "VI": true, "VII": true, "VIII": true, "IX": true, "X": true}

// wordAdditions are the common written additions: huis, bis, begane grond,
// bovenwoning, rood (Amsterdam), zwart.
var wordAdditions = map[string]bool{"HS": true, "BIS": true, "BG": true, "BV": true, "H": true, "RD": true, "ZW": true}

// readHouseNumber reads a house number and its addition starting at byte
// offset i of s, which must be the first digit. It accepts "12", "12a",
// "12 A", "12-II", "12-1", "12/2" and "12 hs". It rejects a number that runs
// on into other digits or into a word ("12km", "12345678").
func readHouseNumber(s string, i int) (string, string, bool) {
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	num := s[i:j]
	if len(num) == 0 || len(num) > 5 || num[0] == '0' {
		return "", "", false
	}
	b := s
	rest := s[j:]
	// Letters glued to the number: "12a", "12hs".
	if k := letterRun(rest); k > 0 {
		word := strings.ToUpper(rest[:k])
		if !endsToken(b, j+k) {
			return "", "", false
		}
		if k == 1 || wordAdditions[word] {
			return num, word, true
		}
		return "", "", false
	}
	// "12-II", "12 - 2", "12/2".
	t := strings.TrimLeft(rest, " ")
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "/") {
		off := j + (len(rest) - len(t)) + 1
		u := strings.TrimLeft(s[off:], " ")
		off += len(s[off:]) - len(u)
		if k := letterRun(u); k > 0 && k <= 4 && endsToken(b, off+k) {
			w := strings.ToUpper(u[:k])
			if k == 1 || romanAdditions[w] || wordAdditions[w] {
				return num, w, true
			}
		}
		if k := digitRun(u); k > 0 && k <= 3 && u[0] != '0' && endsToken(b, off+k) {
			return num, u[:k], true
		}
		return num, "", endsNumber(b, j)
	}
	// "12 A", "12 II", "12 hs", "12 a." (a lone lowercase letter only at
	// the end of a clause, so "nr 12 a few" does not read as "12A").
	if strings.HasPrefix(rest, " ") {
		u := rest[1:]
		if k := letterRun(u); k > 0 && endsToken(b, j+1+k) {
			w := u[:k]
			up := strings.ToUpper(w)
			switch {
			case k == 1 && w == up && w != "I":
				return num, up, true
			case k == 1 && w != up && endsClause(b, j+1+k):
				return num, up, true
			case k >= 2 && w == up && romanAdditions[up]:
				return num, up, true
			case wordAdditions[up] && k >= 2 && up != "RD":
				return num, up, true
			}
		}
	}
	return num, "", endsNumber(b, j)
}

func letterRun(s string) int {
	k := 0
	for k < len(s) && (s[k]|0x20) >= 'a' && (s[k]|0x20) <= 'z' {
		k++
	}
	return k
}

func digitRun(s string) int {
	k := 0
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	return k
}

// endsToken reports whether no letter or digit follows byte offset i.
func endsToken(b string, i int) bool {
	return !isWordRune(runeAtString(b, i))
}

// endsNumber reports whether the digits ending at i are a whole number and
// not the start of a longer one ("12.500", "12,5", "12 345").
func endsNumber(b string, i int) bool {
	if !endsToken(b, i) {
		return false
	}
	r := runeAtString(b, i)
	if (r == '.' || r == ',') && unicode.IsDigit(runeAtString(b, i+1)) {
		return false
	}
	return true
}

// endsClause reports whether byte offset i is the end of the text, a line
// or a clause.
func endsClause(b string, i int) bool {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	if i >= len(b) {
		return true
	}
	switch b[i] {
	case '\n', ',', '.', ';', '!', '?', ')':
		return true
	}
	return false
}

func hasWord(words []string, want ...string) bool {
	for _, w := range words {
		for _, x := range want {
			if w == x {
				return true
			}
		}
	}
	return false
}

// dedupeAddresses drops repeated addresses. A bare postcode repeated with
// a house number later is completed rather than listed twice.
func dedupeAddresses(in []Address) []Address {
	var out []Address
	for _, a := range in {
		dup := false
		for k := range out {
			if out[k].Postcode != a.Postcode {
				continue
			}
			if out[k] == a || a.HouseNumber == "" {
				dup = true
				break
			}
			if out[k].HouseNumber == "" {
				out[k] = a
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}
