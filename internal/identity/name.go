package identity

import (
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// nameLabelRE finds the labels after which a customer writes their name.
var nameLabelRE = regexp.MustCompile(`(?i)\b(?:volledige naam|voor- en achternaam|achternaam|naam|full name|last name|surname|name)\s*:\s*|\b(?:mijn naam is|my name is|my name's|ik heet)\s+`)

// notPersonLabel are words that, before "naam:" or "name:", make it the
// name of something else ("company name:", "user name:").
var notPersonLabel = map[string]bool{
	"company": true, "user": true, "account": true, "product": true, "file": true,
	"bedrijf": true, "bedrijfs": true, "product-": true, "bestand": true, "street": true,
	"display": true, "screen": true, "domain": true, "host": true, "app": true,
}

// closers are the closing greetings after which a signature may follow,
// lowercased. "beste" and "hoi" are not here: they open a message and name
// the agent, not the customer.
var closers = []string{
	"met vriendelijke groeten", "met vriendelijke groet", "vriendelijke groeten",
	"vriendelijke groet", "hartelijke groeten", "hartelijke groet", "met groet",
	"groetjes", "groeten", "groet", "mvg", "m.v.g.", "m.v.g", "gr.", "gr",
	"alvast bedankt", "bedankt", "dank je wel", "dankjewel", "dank u wel", "dank je", "dank u",
	"liefs", "kind regards", "best regards", "warm regards", "regards", "best wishes",
	"yours sincerely", "sincerely", "many thanks", "thanks in advance", "thank you",
	"thanks", "cheers", "best",
}

// particles are the lowercase parts of Dutch and other surnames.
var particles = map[string]bool{
	"van": true, "de": true, "der": true, "den": true, "het": true, "ten": true,
	"ter": true, "te": true, "'t": true, "d'": true, "la": true, "le": true, "du": true,
	"di": true, "da": true, "von": true, "vom": true, "dos": true, "del": true,
	"della": true, "zu": true, "ver": true,
}

// titles are dropped from the start of a name.
var titles = map[string]bool{
	"dhr": true, "mevr": true, "mw": true, "mr": true, "mrs": true, "ms": true,
	"miss": true, "meneer": true, "mevrouw": true, "dr": true, "ir": true, "drs": true,
}

// notNames are capitalised words that follow a closer or label but are not
// a name.
var notNames = map[string]bool{
	"team": true, "again": true, "alvast": true, "bye": true, "doei": true, "hoi": true,
	"hi": true, "hello": true, "hallo": true, "dank": true, "thanks": true, "thank": true,
	"ok": true, "oke": true, "oké": true, "groet": true, "groeten": true, "mvg": true,
	"regards": true, "best": true, "cheers": true, "ik": true, "je": true, "jij": true,
	"wij": true, "we": true, "hij": true, "zij": true, "mijn": true, "my": true,
	"your": true, "uw": true, "sent": true, "verzonden": true, "klant": true,
	"customer": true, "i": true, "you": true, "the": true, "een": true, "a": true,
	"sorry": true, "please": true, "graag": true, "nogmaals": true, "webcare": true,
	"support": true, "iphone": true, "android": true, "anoniem": true, "anonymous": true,
}

// labelStops end a lowercase name after a label: "mijn naam is sanne en ik".
var labelStops = map[string]bool{
	"en": true, "and": true, "ik": true, "i": true, "mijn": true, "my": true, "maar": true,
	"but": true, "met": true, "with": true, "uit": true, "from": true, "is": true,
	"ben": true, "am": true, "woon": true, "live": true, "heb": true, "have": true,
	"wil": true, "want": true, "graag": true, "please": true, "of": true, "or": true,
	"email": true, "e-mail": true, "mail": true, "tel": true, "telefoon": true,
	"phone": true, "nummer": true, "number": true, "postcode": true, "adres": true,
	"address": true, "hier": true, "here": true, "dit": true, "this": true, "dat": true,
	"that": true, "die": true, "wat": true, "what": true, "niet": true, "not": true,
	"ook": true, "also": true, "nog": true, "en/of": true,
}

// extractNames finds clearly labelled names and signature names.
func extractNames(text string) []string {
	type hit struct {
		at   int
		name string
	}
	var hits []hit
	for _, loc := range nameLabelRE.FindAllStringIndex(text, -1) {
		if prev := wordsBefore(text, loc[0], 1); len(prev) == 1 && notPersonLabel[prev[0]] {
			continue
		}
		if name, ok := readName(text[loc[1]:], false); ok {
			hits = append(hits, hit{loc[1], name})
		}
	}
	offset := 0
	lines := strings.Split(text, "\n")
	for k, line := range lines {
		at := offset
		offset += len(line) + 1
		restAt, ok := afterCloser(line)
		if !ok {
			continue
		}
		if restAt >= 0 {
			if name, ok := readName(line[restAt:], true); ok {
				hits = append(hits, hit{at + restAt, name})
			}
			continue
		}
		// The closer stands alone; the name is on the next non-empty line.
		next := offset
		for j := k + 1; j < len(lines) && j <= k+2; j++ {
			if strings.TrimSpace(lines[j]) == "" {
				next += len(lines[j]) + 1
				continue
			}
			if name, ok := readName(lines[j], true); ok {
				hits = append(hits, hit{next, name})
			}
			break
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].at < hits[j].at })
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, h.name)
	}
	return dedupe(out, strings.ToLower)
}

// afterCloser reports whether line holds a closing greeting, at its start or
// after the end of a sentence, and returns the offset of what follows it on
// the line when a comma or dash separates the two. A closer that ends the
// line returns -1.
func afterCloser(line string) (int, bool) {
	lower := asciiLower(line)
	for start := 0; start < len(lower); {
		s := strings.TrimLeft(lower[start:], " ")
		pos := len(lower) - len(s)
		for _, c := range closers {
			if !strings.HasPrefix(s, c) {
				continue
			}
			end := pos + len(c)
			if r := runeAt([]byte(lower), end); unicode.IsLetter(r) {
				continue
			}
			tail := line[end:]
			trimmed := strings.TrimLeftFunc(tail, func(r rune) bool { return r == ' ' || r == '!' || r == '.' })
			if onlySymbols(trimmed) {
				return -1, true
			}
			if strings.HasPrefix(trimmed, ",") || strings.HasPrefix(trimmed, "-") {
				after := trimmed[1:]
				after = after[len(after)-len(strings.TrimLeft(after, " ")):]
				return len(line) - len(after), true
			}
			return 0, false
		}
		// Move to the start of the next sentence on the line.
		next := strings.IndexAny(lower[pos:], ".!?")
		if next < 0 {
			return 0, false
		}
		start = pos + next + 1
	}
	return 0, false
}

// onlySymbols reports whether s holds no letters or digits (emoji,
// punctuation and spaces only).
func onlySymbols(s string) bool {
	for _, r := range s {
		if isWordRune(r) {
			return false
		}
	}
	return true
}

// readName reads a name at the start of s. In signature mode (strict) the
// name must fill the rest of the line and every part but the particles must
// be capitalised. After an explicit label a lowercase name is accepted and
// capitalised, and it ends at a word such as "en" or "and".
func readName(s string, strict bool) (string, bool) {
	if nl := strings.IndexByte(s, '\n'); nl >= 0 {
		s = s[:nl]
	}
	s = strings.TrimLeft(s, " ")
	var words []string
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if !(unicode.IsLetter(r) || r == '\'' || r == '-' || r == '’') {
				break
			}
			j += size
		}
		// An initial: "J." or "J.P.".
		for j < len(s) && s[j] == '.' && j > i && j-i <= 3 {
			j++
			for j < len(s) && unicode.IsUpper(runeAt([]byte(s), j)) && s[j] != ' ' {
				_, size := utf8.DecodeRuneInString(s[j:])
				j += size
			}
		}
		if j == i {
			break
		}
		w := strings.ReplaceAll(s[i:j], "’", "'")
		lw := strings.ToLower(w)
		switch {
		case len(words) == 0 && titles[strings.TrimSuffix(lw, ".")]:
		case particles[lw]:
			words = append(words, lw)
		case isCapitalised(w):
			words = append(words, w)
		case !strict && isLowerWord(w):
			if labelStops[lw] {
				return finishName(words)
			}
			words = append(words, titleCase(w))
		default:
			if strict {
				return "", false
			}
			return finishName(words)
		}
		if len(words) > 5 {
			return "", false
		}
		i = j
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i < len(s) {
			r, _ := utf8.DecodeRuneInString(s[i:])
			if !(unicode.IsLetter(r) || r == '\'') {
				break
			}
		}
	}
	if strict && !onlySymbols(s[i:]) {
		return "", false
	}
	return finishName(words)
}

// finishName trims particles from the end and rejects what is not a name.
func finishName(words []string) (string, bool) {
	for len(words) > 0 && particles[words[len(words)-1]] {
		words = words[:len(words)-1]
	}
	if len(words) == 0 || len(words) > 5 {
		return "", false
	}
	for _, w := range words {
		if notNames[strings.ToLower(w)] {
			return "", false
		}
	}
	name := strings.Join(words, " ")
	if utf8.RuneCountInString(name) < 2 {
		return "", false
	}
	return name, true
}

// isCapitalised reports whether w is a capitalised name part: "Sanne",
// "Jansen-Bakker", "O'Brien", "J.".
func isCapitalised(w string) bool {
	r, size := utf8.DecodeRuneInString(w)
	if !unicode.IsUpper(r) {
		return false
	}
	if strings.HasSuffix(w, ".") {
		return true
	}
	if utf8.RuneCountInString(w) < 2 {
		return false
	}
	rest := w[size:]
	// All capitals ("SANNE") is shouting or an acronym, not a signature.
	if strings.ToUpper(rest) == rest && strings.ToLower(rest) != rest {
		return false
	}
	return true
}

func isLowerWord(w string) bool {
	return w == strings.ToLower(w) && utf8.RuneCountInString(w) >= 2
}

// titleCase capitalises each hyphen-separated part: "jansen-bakker" becomes
// "Jansen-Bakker".
func titleCase(w string) string {
	parts := strings.Split(w, "-")
	for k, p := range parts {
		r, size := utf8.DecodeRuneInString(p)
		if size == 0 {
			continue
		}
		parts[k] = string(unicode.ToUpper(r)) + p[size:]
	}
	return strings.Join(parts, "-")
}

// asciiLower lowercases ASCII letters only, so byte offsets stay those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
