package logging

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Replacements written by ScrubString.
const (
	ScrubbedEmail = "[email]"
	ScrubbedPhone = "[phone]"
)

// ScrubCore wraps a zapcore.Core and, as a safety net behind the redaction
// helpers, masks anything that looks like an email address or a phone
// number in the message and in every string-like field: strings, byte
// strings, errors, Stringers, and (through a JSON round trip) reflected,
// object and array fields. Context fields added with With are scrubbed once,
// when added.
//
// Cost: every string is scanned once; strings without "@" and with fewer
// than 9 digits (most of them) are returned without allocating. Error and
// Stringer fields are formatted to be scanned, and reflected, object and
// array fields are encoded to JSON and decoded again, which costs about as
// much as encoding them twice. BenchmarkScrubCore measures it.
//
// The heuristics are deliberately eager: a run of 9 to 15 digits (with
// spaces, dashes or parentheses) not touching a letter or digit counts as a
// phone number, so unix timestamps in text are masked too. Handles, names and
// free text cannot be recognised; log them only through the redaction
// helpers.
type ScrubCore struct {
	zapcore.Core
}

// NewScrubCore wraps core in a ScrubCore.
func NewScrubCore(core zapcore.Core) *ScrubCore {
	return &ScrubCore{Core: core}
}

// With implements zapcore.Core.
func (s *ScrubCore) With(fields []zapcore.Field) zapcore.Core {
	return &ScrubCore{Core: s.Core.With(scrubFields(fields))}
}

// Check implements zapcore.Core. The wrapped core decides (levels, sampling),
// but the entry is written through the ScrubCore.
func (s *ScrubCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if s.Core.Check(ent, nil) != nil {
		return ce.AddCore(ent, s)
	}
	return ce
}

// Write implements zapcore.Core.
func (s *ScrubCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	ent.Message = ScrubString(ent.Message)
	return s.Core.Write(ent, scrubFields(fields))
}

// scrubFields returns fields with personal data masked, copying the slice
// only when a field changes.
func scrubFields(fields []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	for i, f := range fields {
		g, changed := scrubField(f)
		if !changed {
			if out != nil {
				out = append(out, f)
			}
			continue
		}
		if out == nil {
			out = append(make([]zapcore.Field, 0, len(fields)+4), fields[:i]...)
		}
		out = append(out, g...)
	}
	if out == nil {
		return fields
	}
	return out
}

func scrubField(f zapcore.Field) (out []zapcore.Field, changed bool) {
	switch f.Type {
	case zapcore.StringType:
		if s := ScrubString(f.String); s != f.String {
			return []zapcore.Field{zap.String(f.Key, s)}, true
		}
	case zapcore.ByteStringType:
		b, _ := f.Interface.([]byte)
		if s := ScrubString(string(b)); s != string(b) {
			return []zapcore.Field{zap.ByteString(f.Key, []byte(s))}, true
		}
	case zapcore.ErrorType:
		err, _ := f.Interface.(error)
		if err == nil {
			return nil, false
		}
		msg := safeString(err.Error)
		if s := ScrubString(msg); s != msg {
			return []zapcore.Field{zap.String(f.Key, s)}, true
		}
	case zapcore.StringerType:
		st, _ := f.Interface.(fmt.Stringer)
		if st == nil {
			return nil, false
		}
		msg := safeString(st.String)
		if s := ScrubString(msg); s != msg {
			return []zapcore.Field{zap.String(f.Key, s)}, true
		}
	case zapcore.ReflectType, zapcore.ObjectMarshalerType, zapcore.ArrayMarshalerType, zapcore.InlineMarshalerType:
		return scrubStructured(f)
	}
	return nil, false
}

// scrubStructured encodes a structured field into plain maps, lists and
// scalars through JSON, scrubs every string in it, and replaces the field
// only if something changed.
func scrubStructured(f zapcore.Field) (out []zapcore.Field, changed bool) {
	enc := zapcore.NewMapObjectEncoder()
	if err := safeAddTo(f, enc); err != nil {
		return nil, false
	}
	raw, err := json.Marshal(enc.Fields)
	if err != nil {
		// Not representable as JSON; the encoder will fail on it too.
		return nil, false
	}
	if !mayContainPII(string(raw)) {
		return nil, false
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, false
	}
	if !scrubTree(tree) {
		return nil, false
	}
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, zap.Any(k, tree[k]))
	}
	return out, true
}

func safeAddTo(f zapcore.Field, enc zapcore.ObjectEncoder) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("field panicked")
		}
	}()
	f.AddTo(enc)
	return nil
}

func safeString(fn func() string) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = ""
		}
	}()
	return fn()
}

// scrubTree scrubs strings (values and keys) in a decoded JSON tree in place
// and reports whether anything changed.
func scrubTree(v any) bool {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if s, ok := val.(string); ok {
				if r := ScrubString(s); r != s {
					t[k] = r
					changed = true
				}
			} else if scrubTree(val) {
				changed = true
			}
			if nk := ScrubString(k); nk != k {
				t[nk] = t[k]
				delete(t, k)
				changed = true
			}
		}
	case []any:
		for i, val := range t {
			if s, ok := val.(string); ok {
				if r := ScrubString(s); r != s {
					t[i] = r
					changed = true
				}
			} else if scrubTree(val) {
				changed = true
			}
		}
	}
	return changed
}

// mayContainPII is the cheap pre-check: an "@" or at least 9 digits.
func mayContainPII(s string) bool {
	if strings.IndexByte(s, '@') >= 0 {
		return true
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
			if digits >= minPhoneDigits {
				return true
			}
		}
	}
	return false
}

const (
	minPhoneDigits = 9
	maxPhoneDigits = 15
)

// ScrubString masks email addresses and phone numbers in s. It returns s
// itself when there is nothing to mask.
func ScrubString(s string) string {
	if !mayContainPII(s) {
		return s
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = scrubEmails(s)
	}
	return scrubPhones(s)
}

func isEmailLocal(c byte) bool {
	return isAlnum(c) || strings.IndexByte(".!#$%&'*+/=?^_`{|}~-", c) >= 0
}

func isDomainChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func scrubEmails(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '@' {
			continue
		}
		start := i
		for start > last && isEmailLocal(s[start-1]) {
			start--
		}
		end := i + 1
		for end < len(s) && isDomainChar(s[end]) {
			end++
		}
		for end > i+1 && (s[end-1] == '.' || s[end-1] == '-') {
			end--
		}
		domain := s[i+1 : end]
		dot := strings.LastIndexByte(domain, '.')
		if start == i || dot <= 0 || len(domain)-dot-1 < 2 || !isLetter(domain[len(domain)-1]) {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(ScrubbedEmail)
		last = end
		i = end - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// phoneMayStart reports whether a phone number may start at s[i]: not inside
// a word, number or hyphenated or dotted token (UUIDs, versions), and not
// right after a digit and one of ".,/:" (decimals, dates, times). It mirrors
// phoneMayEnd, which keeps ScrubString idempotent.
func phoneMayStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	c := s[i-1]
	if isAlnum(c) || strings.IndexByte("-._/\\+", c) >= 0 {
		return false
	}
	if strings.IndexByte(",:", c) >= 0 && i >= 2 && s[i-2] >= '0' && s[i-2] <= '9' {
		return false
	}
	return true
}

// phoneMayEnd reports whether a phone number may end at s[end]: not glued to
// a word or a "+", and not a date or time followed by ":" or by ".", "," or
// "/" and a digit.
func phoneMayEnd(s string, end int) bool {
	if end >= len(s) {
		return true
	}
	c := s[end]
	if isAlnum(c) || c == ':' || c == '+' {
		return false
	}
	if strings.IndexByte(".,/", c) >= 0 && end+1 < len(s) && s[end+1] >= '0' && s[end+1] <= '9' {
		return false
	}
	return true
}

func isPhoneSep(c byte) bool { return c == ' ' || c == '-' || c == '(' || c == ')' }

func scrubPhones(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9') && c != '+' && c != '(' {
			continue
		}
		if !phoneMayStart(s, i) {
			// Inside a word, number or hyphenated ID: skip to its end.
			for i+1 < len(s) && isAlnum(s[i+1]) {
				i++
			}
			continue
		}
		end, digits := i, 0
		if c == '+' || c == '(' {
			end++
		}
		for end < len(s) && ((s[end] >= '0' && s[end] <= '9') || isPhoneSep(s[end])) {
			if s[end] >= '0' && s[end] <= '9' {
				digits++
			}
			end++
		}
		for end > i && isPhoneSep(s[end-1]) && s[end-1] != ')' {
			end--
		}
		if digits < minPhoneDigits || digits > maxPhoneDigits || !phoneMayEnd(s, end) {
			if end > i {
				i = end - 1
			}
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(ScrubbedPhone)
		last = end
		i = end - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

var _ zapcore.Core = (*ScrubCore)(nil)
