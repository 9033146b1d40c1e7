// Package mappings loads, validates and applies the declarative CRM mapping
// (mappings/salesforce.yaml): which CRM fields webcaresync writes for each
// canonical event, when a conversation gets a case, and what an erasure
// request does per object. The file is meant to be read and edited by an IT
// person who does not write Go; every mistake is reported with the file, line
// and field it is on.
package mappings

import (
	"context"
	"embed"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
)

//go:embed salesforce.yaml mapping.schema.json
var files embed.FS

// DefaultFile is the name Default reports in errors and in Mapping.File.
const DefaultFile = "mappings/salesforce.yaml"

// The mapped objects, as named under `objects:` in the mapping file.
const (
	ObjectPersona = "persona"
	ObjectPost    = "post"
	ObjectCase    = "case"
	ObjectContact = "contact"
)

// The case rule modes of case_rules.open_on.
const (
	OpenOnFirstInbound = "first_inbound"
	OpenOnKeywords     = "keywords"
	OpenOnCondition    = "condition"
)

// Mapping is a loaded and validated mapping file. It is safe for concurrent
// use once loaded.
type Mapping struct {
	// File is the path the mapping was loaded from.
	File string
	// DefaultPhoneRegion is the region for phone numbers without a country
	// code. Default: NL.
	DefaultPhoneRegion string
	// Objects are the mapped objects by name (persona, post, case, contact).
	Objects map[string]*Object
	// CaseRules decide when a conversation gets a case.
	CaseRules CaseRules
	// StatusUpdates say how delivery status events change a post.
	StatusUpdates StatusUpdates
	// Erasure is the per-object erasure policy for GDPR erasure requests.
	Erasure Erasure

	custom []CustomField
	env    *cel.Env
	lines  map[string]int
}

// CustomField is a custom field the mapping needs in the CRM.
type CustomField struct {
	// Object is the Salesforce object, such as SocialPost.
	Object string `json:"object" yaml:"object"`
	// Name is the field's API name, ending in __c.
	Name string `json:"name" yaml:"name"`
	// Type is the Salesforce field type, such as Text.
	Type string `json:"type" yaml:"type"`
	// Length is the maximum length of a Text field.
	Length int `json:"length,omitempty" yaml:"length"`
	// ExternalID marks the field as an external id usable for upserts.
	ExternalID bool `json:"external_id,omitempty" yaml:"external_id"`
	// Unique makes Salesforce reject two records with the same value.
	Unique bool `json:"unique,omitempty" yaml:"unique"`
}

// Object is the mapping of one CRM object.
type Object struct {
	// Name is the mapping's name for the object (persona, post, case, contact).
	Name string
	// SObject is the Salesforce object name, such as SocialPost.
	SObject string
	// ExternalIDField is the custom external id field used for upserts.
	ExternalIDField string
	// Links maps a link role (persona, case, contact, reply_to) to the
	// reference field the connector fills with the linked record's id.
	Links map[string]string
	// Fields are the mapped fields, sorted by name.
	Fields []*Field
}

// Link returns the reference field for role, or "" when the mapping does not
// link that role.
func (o *Object) Link(role string) string {
	if o == nil {
		return ""
	}
	return o.Links[role]
}

// CaseRules decide when a conversation gets a case and when a closed case is
// reopened.
type CaseRules struct {
	// OpenOn is first_inbound, keywords or condition. Default: first_inbound.
	OpenOn string
	// Keywords open a case when OpenOn is keywords (case-insensitive).
	Keywords []string
	// ReopenWithin is how long after closing a case a new customer message
	// reopens it instead of opening a new case. Default: 5 days.
	ReopenWithin time.Duration
	// ReopenStatus is the status a reopened case gets. Default: New.
	ReopenStatus string

	condition cel.Program
}

// StatusUpdates say how a delivery status event updates its post.
type StatusUpdates struct {
	// Field is the post field that receives the mapped status.
	Field string
	// Values maps the canonical status (sent, delivered, read, failed) to the
	// CRM value.
	Values map[string]string
	// MessageField, if set, receives the canonical status word.
	MessageField string
}

// Erasure is the erasure policy per CRM object.
type Erasure struct {
	// Rules are keyed by Salesforce object name (SocialPost, Case, ...).
	// The `individual:` block's fields and set become the anonymise rule
	// of "Individual".
	Rules map[string]ErasureRule
	// IndividualShouldForget sets Individual.ShouldForget on erasure.
	IndividualShouldForget bool
}

// The erasure actions.
const (
	EraseDelete    = "delete"
	EraseAnonymise = "anonymise"
	EraseRedact    = "redact"
)

// ErasureRule is what an erasure does with one kind of record.
type ErasureRule struct {
	// Action is delete, anonymise (blank Fields) or redact (replace Fields
	// with Replacement).
	Action string
	// Fallback is the action used when the CRM refuses the delete.
	Fallback string
	// Fields are the fields anonymise blanks or redact replaces.
	Fields []string
	// Set are fields set to fixed values when anonymising (for required
	// fields that cannot be blank, such as Contact.LastName).
	Set map[string]string
	// Replacement is the text redact writes.
	Replacement string
	// Clear are fields emptied by anonymise and redact alike: reference
	// fields that would link a kept record back to the subject (such as
	// Case.ContactId), and fields that cannot hold the replacement text
	// (such as an email field).
	Clear []string
}

// For returns the erasure rule for a Salesforce object.
func (e Erasure) For(sobject string) (ErasureRule, bool) {
	r, ok := e.Rules[sobject]
	return r, ok
}

// CustomFields returns the custom fields the mapping needs, so that the
// sandbox (or an admin) can declare them.
func (m *Mapping) CustomFields() []CustomField {
	return append([]CustomField(nil), m.custom...)
}

// Object returns the mapped object by name (persona, post, case, contact),
// or nil when the mapping does not map it.
func (m *Mapping) Object(name string) *Object {
	return m.Objects[name]
}

// Load reads, validates and compiles the mapping file at path. A mapping
// with mistakes returns Errors, one per mistake.
func Load(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read mapping: %w", err)
	}
	return Parse(path, data)
}

// Default returns the mapping bundled with webcaresync
// (mappings/salesforce.yaml).
func Default() *Mapping {
	data, err := files.ReadFile("salesforce.yaml")
	if err != nil {
		panic("mappings: bundled salesforce.yaml missing: " + err.Error())
	}
	m, err := Parse(DefaultFile, data)
	if err != nil {
		// The bundled file is covered by tests; this is a build defect.
		panic("mappings: bundled salesforce.yaml is invalid: " + err.Error())
	}
	return m
}

// Validate checks the mapping file at path and returns every mistake, or
// nil. The CLI prints one line per error: "file:line: field: message".
func Validate(path string) Errors {
	_, err := Load(path)
	if err == nil {
		return nil
	}
	if errs, ok := err.(Errors); ok {
		return errs
	}
	return Errors{{File: path, Field: "", Message: err.Error()}}
}

// FieldError is one mistake in a mapping file.
type FieldError struct {
	File    string
	Line    int
	Field   string
	Message string
}

// Error formats the mistake as "file:line: field: message".
func (e FieldError) Error() string {
	field := e.Field
	if field == "" {
		field = "(file)"
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, field, e.Message)
}

// Errors are all mistakes found in a mapping file, sorted by line.
type Errors []FieldError

// Error joins the mistakes, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Field < es[j].Field
	})
	return es
}

// DescribeFunc returns the field names of a Salesforce object, as a live
// describe call does (salesforce.Client.Describe fits).
type DescribeFunc func(ctx context.Context, sobject string) ([]string, error)

// ValidateAgainstDescribe checks every field the mapping writes against
// the live org's describe, catching fields that exist in Salesforce's
// reference but not in this org or not for the integration user.
func (m *Mapping) ValidateAgainstDescribe(ctx context.Context, describe DescribeFunc) Errors {
	var errs Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, FieldError{File: m.File, Line: m.lineOf(path), Field: path, Message: fmt.Sprintf(format, args...)})
	}
	names := make([]string, 0, len(m.Objects))
	for n := range m.Objects {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		o := m.Objects[name]
		base := "objects." + name
		fields, err := describe(ctx, o.SObject)
		if err != nil {
			add(base+".sobject", "cannot describe %s: %v", o.SObject, err)
			continue
		}
		have := make(map[string]bool, len(fields))
		for _, f := range fields {
			have[f] = true
		}
		if !have[o.ExternalIDField] {
			add(base+".external_id_field", "%s has no field %s in this org; create it (see custom_fields)", o.SObject, o.ExternalIDField)
		}
		for role, f := range o.Links {
			if !have[f] {
				add(base+".links."+role, "%s has no field %s in this org or it is hidden from the integration user", o.SObject, f)
			}
		}
		for _, f := range o.Fields {
			if !have[f.Name] {
				add(base+".fields."+f.Name, "%s has no field %s in this org or it is hidden from the integration user", o.SObject, f.Name)
			}
		}
	}
	return errs.sorted()
}

func (m *Mapping) lineOf(path string) int {
	p := &parser{lines: m.lines}
	return p.line(path)
}
