package schemas

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// EventSchema is the JSON Schema (draft 2020-12) of Event, as published to
// senders of the generic webhook and writers of JSONL import files.
//
//go:embed event.schema.json
var EventSchema []byte

// schemaURL is the $id of event.schema.json; the compiler resolves the
// embedded copy under this name and never fetches anything.
const schemaURL = "https://webcaresync.dev/schemas/event.schema.json"

// FieldError reports why an event failed validation. Field is a dotted path
// to the failing property with array indexes in brackets, such as
// "author.platform_user_id" or "attachments[0].type"; it is empty when the
// whole document is at fault. Message says what is wrong without quoting
// the offending value, so the error is safe to log and to return to callers.
type FieldError struct {
	// Field is the path of the failing property.
	Field string
	// Message says what is wrong and what is expected.
	Message string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	compileErr  error
)

// schema returns the compiled event schema, compiling it on first use.
func schema() (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(EventSchema))
		if err != nil {
			compileErr = fmt.Errorf("parse embedded event schema: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		if err := c.AddResource(schemaURL, doc); err != nil {
			compileErr = fmt.Errorf("add embedded event schema: %w", err)
			return
		}
		compiled, compileErr = c.Compile(schemaURL)
	})
	return compiled, compileErr
}

// Validate checks one JSON-encoded event against the event schema. It
// returns nil for a valid event and a *FieldError naming the first failing
// field otherwise, including for input that is not JSON at all.
func Validate(raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return syntaxError(err)
	}
	return validateInstance(inst)
}

// ValidateEvent checks an Event against the event schema, exactly as
// Validate would check its JSON encoding. It also rejects a zero OccurredAt,
// which JSON Schema cannot express.
func ValidateEvent(e Event) error {
	if e.OccurredAt.IsZero() {
		return &FieldError{Field: "occurred_at", Message: "is required: set the time the message was written"}
	}
	raw, err := json.Marshal(e)
	if err != nil {
		// Only a time outside years 0-9999 fails to marshal.
		return &FieldError{Field: "occurred_at", Message: "must be a timestamp between years 0 and 9999"}
	}
	return Validate(raw)
}

// validateInstance runs the compiled schema over a decoded JSON value.
func validateInstance(inst any) error {
	sch, err := schema()
	if err != nil {
		return fmt.Errorf("event schema is broken, fix schemas/event.schema.json: %w", err)
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &FieldError{Message: "event could not be validated"}
	}
	return firstLeaf(ve)
}

// syntaxError turns a JSON decoding error into a FieldError that reports
// where the problem is without echoing any of the input.
func syntaxError(err error) *FieldError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Message: "body is not valid JSON (syntax error at byte " + strconv.FormatInt(se.Offset, 10) + ")"}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &FieldError{Message: "body is not valid JSON (unexpected value at byte " + strconv.FormatInt(te.Offset, 10) + ")"}
	}
	return &FieldError{Message: "body is not valid JSON: send exactly one JSON value"}
}

// firstLeaf picks the most specific failure out of a validation error tree
// and converts it to a FieldError. Leaves are sorted by field and message so
// the same input always reports the same field.
func firstLeaf(ve *jsonschema.ValidationError) *FieldError {
	var leaves []*FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, leafError(e))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(leaves) == 0 {
		return &FieldError{Message: "event does not match the schema"}
	}
	sort.SliceStable(leaves, func(i, j int) bool {
		if leaves[i].Field != leaves[j].Field {
			return leaves[i].Field < leaves[j].Field
		}
		return leaves[i].Message < leaves[j].Message
	})
	return leaves[0]
}

// leafError converts one leaf of the validation error tree. Messages are
// written here rather than taken from the library because the library's
// messages quote the offending value, which may be personal data.
func leafError(e *jsonschema.ValidationError) *FieldError {
	loc := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		missing := append([]string(nil), k.Missing...)
		sort.Strings(missing)
		return &FieldError{Field: FieldPath(append(append([]string(nil), loc...), missing[0])), Message: "is required"}
	case *kind.AdditionalProperties:
		props := append([]string(nil), k.Properties...)
		sort.Strings(props)
		if !plainName(props[0]) {
			// The name itself is outside data; do not echo it.
			return &FieldError{Field: FieldPath(loc), Message: "has a field that is not in the schema: remove it"}
		}
		return &FieldError{Field: FieldPath(append(append([]string(nil), loc...), props[0])), Message: "is not a known field: remove it or check its spelling"}
	case *kind.FalseSchema:
		if len(loc) == 1 && loc[0] == "status" {
			return &FieldError{Field: "status", Message: "is only allowed when kind is status"}
		}
		return &FieldError{Field: FieldPath(loc), Message: "is not allowed here"}
	case *kind.Type:
		return &FieldError{Field: FieldPath(loc), Message: "must be of type " + strings.Join(k.Want, " or ") + ", not " + k.Got}
	case *kind.Enum:
		want := make([]string, 0, len(k.Want))
		for _, w := range k.Want {
			want = append(want, fmt.Sprint(w))
		}
		return &FieldError{Field: FieldPath(loc), Message: "must be one of " + strings.Join(want, ", ")}
	case *kind.Const:
		return &FieldError{Field: FieldPath(loc), Message: "must be " + fmt.Sprint(k.Want)}
	case *kind.Format:
		if k.Want == "date-time" {
			return &FieldError{Field: FieldPath(loc), Message: "must be an RFC 3339 timestamp such as 2024-05-01T09:30:00Z"}
		}
		return &FieldError{Field: FieldPath(loc), Message: "must be a valid " + k.Want}
	case *kind.MinLength:
		if k.Want == 1 {
			return &FieldError{Field: FieldPath(loc), Message: "must not be empty"}
		}
		return &FieldError{Field: FieldPath(loc), Message: "must be at least " + strconv.Itoa(k.Want) + " characters"}
	case *kind.MaxLength:
		return &FieldError{Field: FieldPath(loc), Message: "must be at most " + strconv.Itoa(k.Want) + " characters, got " + strconv.Itoa(k.Got)}
	case *kind.MaxItems:
		return &FieldError{Field: FieldPath(loc), Message: "must have at most " + strconv.Itoa(k.Want) + " items"}
	default:
		return &FieldError{Field: FieldPath(loc), Message: "does not match the event schema"}
	}
}

// FieldPath renders a JSON Pointer's tokens as a dotted field path with
// array indexes in brackets: ["attachments","0","type"] becomes
// "attachments[0].type".
func FieldPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil && b.Len() > 0 {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}

// plainName reports whether an unknown property name looks like a field name
// (short ASCII letters, digits and underscores) and so is safe to echo in an
// error message.
func plainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
