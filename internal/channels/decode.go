package channels

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DecodeJSON unmarshals one JSON value from body into v. Malformed JSON or
// a value of the wrong type becomes a *BadRequest that names the byte offset
// or the field, never the offending content.
func DecodeJSON(body []byte, v any) *BadRequest {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Invalid("", "body must hold exactly one JSON value: remove trailing data")
	}
	return nil
}

// decodeError converts an encoding/json error to a BadRequest.
func decodeError(err error) *BadRequest {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return Invalid("", "body is not valid JSON (syntax error at byte "+strconv.FormatInt(se.Offset, 10)+")")
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return Invalid(te.Field, "must be "+jsonKind(te.Type)+", not "+te.Value)
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return Invalid("", "a timestamp is not an RFC 3339 time such as 2024-05-01T09:30:00Z")
	}
	var fe *FlexError
	if errors.As(err, &fe) {
		return Invalid("", fe.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Invalid("", "body is empty or truncated: send a complete JSON document")
	}
	return Invalid("", "body is not valid JSON")
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "another type"
	}
}

// FlexString is a JSON string or number decoded as its text. Platforms send
// ids and timestamps as either ("1603059201" in WhatsApp, 1603059201 in
// Messenger); null decodes as the empty string.
type FlexString string

// FlexError reports a value that is neither a string nor a number.
type FlexError struct{}

// Error implements error.
func (*FlexError) Error() string {
	return "an id or timestamp must be a string or a number"
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return &FlexError{}
	case string(b) == "null":
		*f = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = FlexString(b)
		return nil
	default:
		return &FlexError{}
	}
}

// String returns the text of f.
func (f FlexString) String() string { return string(f) }

// msThreshold separates Unix seconds from Unix milliseconds: 1e11 seconds is
// the year 5138, while 1e11 milliseconds is March 1973, before any of the
// platforms existed.
const msThreshold = 100_000_000_000

// UnixTime parses a Unix timestamp in seconds or milliseconds (detected by
// magnitude), given as decimal text with an optional fraction, and returns
// it in UTC. It reports false for anything else, including zero, negative
// and absurd values.
func UnixTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1e15 || f != f {
		return time.Time{}, false
	}
	if f >= msThreshold {
		ms := int64(f)
		return time.UnixMilli(ms).UTC(), true
	}
	sec := int64(f)
	nsec := int64((f - float64(sec)) * 1e9)
	return time.Unix(sec, nsec).UTC(), true
}

// agentSignature matches the initials webcare agents sign replies with at
// the end of a message: "^MK", "^mk", "-MK", "/MK" or "~MK".
var agentSignature = regexp.MustCompile(`(?:^|\s)[\^~/-]([A-Za-z]{1,4})\s*$`)

// AgentInitials returns the initials an agent signed an outbound reply with
// ("Fijne dag! ^MK" gives "MK"), upper-cased, or "" when there are none.
func AgentInitials(text string) string {
	m := agentSignature.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return strings.ToUpper(m[1])
}

// Index formats an indexed field path such as "entry[2]".
func Index(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
