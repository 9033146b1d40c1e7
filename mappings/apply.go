package mappings

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/nyaruka/phonenumbers"

	"github.com/webcaresync/webcaresync/schemas"
)

// Field is one compiled field mapping.
type Field struct {
	// Name is the CRM field name.
	Name string
	// Line is the line of the field in the mapping file.
	Line int
	// CreateOnly fields can only be set when the record is created; they
	// are left out of updates.
	CreateOnly bool

	from       []string
	constant   any
	tmpl       *template.Template
	expr       cel.Program
	lookup     map[string]string
	def        any
	transforms []transform
	when       cel.Program
}

// ContactDetails are the details a new Contact is created from.
type ContactDetails struct {
	FirstName  string
	LastName   string
	Email      string
	Phone      string
	Mobile     string
	PostalCode string
	Street     string
}

// Vars are the values a mapping reads: event.*, contact.* and
// conversation.*. Build them with EventVars and ContactVars.
type Vars map[string]any

// EventVars returns the values of one event for the event.* names of the
// mapping file, plus conversation.id.
func EventVars(conversationID string, e schemas.Event) Vars {
	kind := string(e.Kind)
	if kind == "" {
		kind = string(schemas.KindMessage)
	}
	return Vars{
		"event": map[string]any{
			"kind":                kind,
			"channel":             string(e.Channel),
			"conversation_key":    e.ConversationKey,
			"direction":           string(e.Direction),
			"visibility":          string(e.Visibility),
			"platform_message_id": e.PlatformMessageID,
			"reply_to_id":         e.ReplyToID,
			"author": map[string]any{
				"platform_user_id": e.Author.PlatformUserID,
				"handle":           e.Author.Handle,
				"display_name":     e.Author.DisplayName,
			},
			"text":             e.Text,
			"occurred_at":      e.OccurredAt.UTC(),
			"brand":            map[string]any{"id": e.Brand.ID, "handle": e.Brand.Handle},
			"status":           e.Status,
			"agent_id":         e.AgentID,
			"attachment_count": int64(len(e.Attachments)),
		},
		"contact":      map[string]any{},
		"conversation": map[string]any{"id": conversationID},
	}
}

// ContactVars returns the values of contact details for the contact.* names.
func ContactVars(c ContactDetails) Vars {
	return Vars{
		"event": map[string]any{},
		"contact": map[string]any{
			"first_name":  c.FirstName,
			"last_name":   c.LastName,
			"email":       c.Email,
			"phone":       c.Phone,
			"mobile":      c.Mobile,
			"postal_code": c.PostalCode,
			"street":      c.Street,
		},
		"conversation": map[string]any{},
	}
}

// sampleVars are used at validation to try every template and expression.
func sampleVars() Vars {
	v := EventVars("conv-1", schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:1:2",
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: "m1",
		ReplyToID: "m0", Author: schemas.Author{PlatformUserID: "u1", Handle: "handle", DisplayName: "Name"},
		Text: "text", OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Brand: schemas.BrandAccount{ID: "b1", Handle: "brand"}, Status: "sent", AgentID: "AB",
	})
	v["contact"] = ContactVars(ContactDetails{FirstName: "a", LastName: "b", Email: "c", Phone: "d", Mobile: "e", PostalCode: "f", Street: "g"})["contact"]
	return v
}

// ApplyError is returned by Record when a field cannot be computed. Its
// message names the field, never the value.
type ApplyError struct {
	Object string
	Field  string
	Err    error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("mapping %s.%s: %v", e.Object, e.Field, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

// Record computes the CRM fields of object for the given values. Fields
// whose condition is false or whose value is empty are left out.
func (m *Mapping) Record(object string, v Vars) (map[string]any, error) {
	o := m.Objects[object]
	if o == nil {
		return nil, fmt.Errorf("mapping has no %s object; add it under objects", object)
	}
	rec := make(map[string]any, len(o.Fields))
	for _, f := range o.Fields {
		val, err := f.apply(m.env, v)
		if err != nil {
			return nil, &ApplyError{Object: object, Field: f.Name, Err: err}
		}
		if val == nil {
			continue
		}
		rec[f.Name] = val
	}
	return rec, nil
}

// CreateOnly returns the fields of object that can only be set when the
// record is created.
func (m *Mapping) CreateOnly(object string) []string {
	o := m.Objects[object]
	if o == nil {
		return nil
	}
	var out []string
	for _, f := range o.Fields {
		if f.CreateOnly {
			out = append(out, f.Name)
		}
	}
	return out
}

// OpensCase reports whether event e may open a case under the case rules.
// Only customer (inbound) messages open cases.
func (m *Mapping) OpensCase(v Vars) (bool, error) {
	ev, _ := v["event"].(map[string]any)
	if ev["direction"] != string(schemas.Inbound) || ev["kind"] == string(schemas.KindStatus) {
		return false, nil
	}
	switch m.CaseRules.OpenOn {
	case OpenOnKeywords:
		text, _ := ev["text"].(string)
		text = strings.ToLower(text)
		for _, k := range m.CaseRules.Keywords {
			if strings.Contains(text, strings.ToLower(k)) {
				return true, nil
			}
		}
		return false, nil
	case OpenOnCondition:
		if m.CaseRules.condition == nil {
			return false, nil
		}
		return evalBool(m.CaseRules.condition, v)
	default:
		return true, nil
	}
}

// Reopens reports whether a case closed at closedAt is reopened by a
// customer message at now (true) or a new case is opened (false).
func (r CaseRules) Reopens(closedAt, now time.Time) bool {
	if closedAt.IsZero() {
		return true
	}
	return now.Sub(closedAt) <= r.ReopenWithin
}

// StatusFields returns the post fields a delivery status event sets, or nil
// when the mapping ignores that status.
func (m *Mapping) StatusFields(status string) map[string]any {
	su := m.StatusUpdates
	if su.Field == "" {
		return nil
	}
	out := map[string]any{}
	if v, ok := su.Values[status]; ok {
		out[su.Field] = v
	}
	if su.MessageField != "" && status != "" {
		out[su.MessageField] = truncateRunes(status, 255)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func evalBool(prg cel.Program, v Vars) (bool, error) {
	out, _, err := prg.Eval(map[string]any(v))
	if err != nil {
		return false, fmt.Errorf("condition failed: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("condition did not give true or false")
	}
	return b, nil
}

func (f *Field) apply(_ *cel.Env, v Vars) (any, error) {
	if f.when != nil {
		ok, err := evalBool(f.when, v)
		if err != nil {
			return nil, fmt.Errorf("when: %w", err)
		}
		if !ok {
			return nil, nil
		}
	}
	var val any
	switch {
	case f.from != nil:
		val, _ = lookupPath(v, f.from)
	case f.tmpl != nil:
		s, err := execTemplate(f.tmpl, v)
		if err != nil {
			return nil, err
		}
		val = s
	case f.expr != nil:
		out, _, err := f.expr.Eval(map[string]any(v))
		if err != nil {
			return nil, fmt.Errorf("cel: %w", err)
		}
		val = out.Value()
	default:
		val = f.constant
	}
	if f.lookup != nil {
		if s, ok := val.(string); ok {
			if mapped, ok := f.lookup[s]; ok {
				val = mapped
			} else if f.def != nil {
				val = f.def
			}
		}
	}
	for _, t := range f.transforms {
		s, ok := val.(string)
		if !ok {
			continue
		}
		val = t(s)
	}
	if isEmpty(val) {
		val = f.def
	}
	if isEmpty(val) {
		return nil, nil
	}
	if t, ok := val.(time.Time); ok {
		return t.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	}
	return val, nil
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case time.Time:
		return x.IsZero()
	}
	return false
}

func lookupPath(v Vars, path []string) (any, bool) {
	var cur any = map[string]any(v)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[p]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// transform changes a string value.
type transform func(string) string

var transformRe = regexp.MustCompile(`^([a-z0-9]+)(?:\(\s*([0-9]+)\s*\))?$`)

// parseTransform parses one entry of transforms, such as truncate(80).
func parseTransform(s, region string) (transform, error) {
	m := transformRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return nil, fmt.Errorf("cannot read transform %q; write it like truncate(80) or lower", s)
	}
	name, arg := m[1], m[2]
	noArg := func(t transform) (transform, error) {
		if arg != "" {
			return nil, fmt.Errorf("%s takes no argument; write %s", name, name)
		}
		return t, nil
	}
	switch name {
	case "truncate":
		if arg == "" {
			return nil, errors.New("truncate needs a length, such as truncate(255)")
		}
		n, err := strconv.Atoi(arg)
		if err != nil || n <= 0 || n > 131072 {
			return nil, fmt.Errorf("truncate length must be between 1 and 131072, not %s", arg)
		}
		return func(s string) string { return truncateRunes(s, n) }, nil
	case "lower":
		return noArg(strings.ToLower)
	case "upper":
		return noArg(strings.ToUpper)
	case "trim":
		return noArg(strings.TrimSpace)
	case "e164":
		return noArg(func(s string) string { return E164(s, region) })
	}
	return nil, fmt.Errorf("unknown transform %q; use truncate(n), lower, upper, trim or e164", name)
}

// E164 normalises a phone number to E.164 (+31612345678), reading numbers
// without a country code in region. It returns "" for text that is not a
// valid phone number.
func E164(s, region string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return ""
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return ""
	}
	return phonenumbers.Format(num, phonenumbers.E164)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

func parseTemplate(name, src, region string) (*template.Template, error) {
	funcs := template.FuncMap{
		"lower":    strings.ToLower,
		"upper":    strings.ToUpper,
		"trim":     strings.TrimSpace,
		"truncate": func(n int, s string) string { return truncateRunes(s, n) },
		"e164":     func(s string) string { return E164(s, region) },
		"date": func(layout string, t time.Time) string {
			return t.UTC().Format(layout)
		},
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template does not parse: %s", stripTemplateName(err.Error(), name))
	}
	return t, nil
}

func execTemplate(t *template.Template, v Vars) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, map[string]any(v)); err != nil {
		return "", fmt.Errorf("template failed: %s", stripTemplateName(err.Error(), t.Name()))
	}
	return b.String(), nil
}

func stripTemplateName(msg, name string) string {
	return strings.ReplaceAll(msg, "template: "+name+":", "")
}
