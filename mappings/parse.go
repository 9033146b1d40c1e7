package mappings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
	"github.com/nyaruka/phonenumbers"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// maxMappingBytes bounds a mapping file; real ones are a few KiB.
const maxMappingBytes = 1 << 20

var (
	schemaOnce sync.Once
	schemaVal  *jsonschema.Schema
	schemaErr  error
)

func compiledSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		data, err := files.ReadFile("mapping.schema.json")
		if err != nil {
			schemaErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("mapping.schema.json", doc); err != nil {
			schemaErr = err
			return
		}
		schemaVal, schemaErr = c.Compile("mapping.schema.json")
	})
	return schemaVal, schemaErr
}

// parser collects the mistakes of one file together with the line of every
// path in it.
type parser struct {
	file  string
	lines map[string]int
	errs  Errors
}

func (p *parser) add(path, format string, args ...any) {
	p.errs = append(p.errs, FieldError{File: p.file, Line: p.line(path), Field: path, Message: fmt.Sprintf(format, args...)})
}

// line returns the line of path, or of its nearest ancestor.
func (p *parser) line(path string) int {
	for {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return p.lines[""]
		}
		path = path[:i]
	}
}

// Parse validates and compiles a mapping from data; name is used in errors.
func Parse(name string, data []byte) (*Mapping, error) {
	p := &parser{file: name, lines: map[string]int{}}
	if len(data) > maxMappingBytes {
		p.add("", "file is larger than %d bytes; is this the right file?", maxMappingBytes)
		return nil, p.errs
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		line := 0
		var te *yaml.TypeError
		msg := err.Error()
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		if errors.As(err, &te) {
			msg = strings.Join(te.Errors, "; ")
		}
		p.errs = append(p.errs, FieldError{File: name, Line: line, Message: "not valid YAML: " + msg})
		return nil, p.errs
	}
	if len(root.Content) == 0 {
		p.add("", "file is empty; start from the bundled mappings/salesforce.yaml")
		return nil, p.errs
	}
	doc := root.Content[0]
	p.lines[""] = doc.Line
	inst, err := p.toJSON(doc, "", 0)
	if err != nil {
		p.add("", "%v", err)
		return nil, p.errs
	}
	sch, err := compiledSchema()
	if err != nil {
		return nil, fmt.Errorf("compile mapping schema: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			p.schemaErrors(ve)
		} else {
			p.add("", "%v", err)
		}
	}
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	var raw rawMapping
	if err := doc.Decode(&raw); err != nil {
		p.add("", "cannot read mapping: %v", err)
		return nil, p.errs
	}
	m := p.build(&raw)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return m, nil
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

// toJSON converts a YAML node to the JSON value model of the schema
// validator, recording the line of every path on the way.
func (p *parser) toJSON(n *yaml.Node, path string, depth int) (any, error) {
	if depth > 32 {
		return nil, errors.New("nesting is too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return p.toJSON(n.Content[0], path, depth+1)
	case yaml.AliasNode:
		return nil, errors.New("YAML aliases (*name) are not supported; write the value out")
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: keys must be plain words", k.Line)
			}
			child := join(path, k.Value)
			if _, dup := out[k.Value]; dup {
				p.add(child, "key appears twice; keep one")
			}
			p.lines[child] = k.Line
			val, err := p.toJSON(v, child, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			child := join(path, strconv.Itoa(i))
			p.lines[child] = c.Line
			val, err := p.toJSON(c, child, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, err
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, err
			}
			return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), nil
		default:
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var printer = message.NewPrinter(language.English)

// schemaErrors turns the validator's error tree into one FieldError per
// leaf, worded for a person editing the file.
func (p *parser) schemaErrors(ve *jsonschema.ValidationError) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			p.schemaErrors(c)
		}
		return
	}
	path := strings.Join(ve.InstanceLocation, ".")
	switch k := ve.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		for _, prop := range k.Properties {
			p.add(join(path, prop), "unknown key; check the spelling (see mappings/mapping.schema.json for the allowed keys)")
		}
	case *kind.Required:
		for _, prop := range k.Missing {
			p.add(path, "missing required key %q", prop)
		}
	case *kind.OneOf:
		p.add(path, "give exactly one of from, value, template or cel")
	default:
		p.add(path, "%s", ve.ErrorKind.LocalizedString(printer))
	}
}

type rawMapping struct {
	Version  int `yaml:"version"`
	Settings struct {
		DefaultPhoneRegion string `yaml:"default_phone_region"`
	} `yaml:"settings"`
	CustomFields []CustomField `yaml:"custom_fields"`
	Objects      map[string]struct {
		SObject         string              `yaml:"sobject"`
		ExternalIDField string              `yaml:"external_id_field"`
		Links           map[string]string   `yaml:"links"`
		Fields          map[string]rawField `yaml:"fields"`
	} `yaml:"objects"`
	CaseRules struct {
		OpenOn           string   `yaml:"open_on"`
		Keywords         []string `yaml:"keywords"`
		Condition        string   `yaml:"condition"`
		ReopenWithinDays *int     `yaml:"reopen_within_days"`
		ReopenStatus     string   `yaml:"reopen_status"`
	} `yaml:"case_rules"`
	StatusUpdates *struct {
		Field        string            `yaml:"field"`
		Values       map[string]string `yaml:"values"`
		MessageField string            `yaml:"message_field"`
	} `yaml:"status_updates"`
	Erasure map[string]yaml.Node `yaml:"erasure"`
}

type rawField struct {
	From       string            `yaml:"from"`
	Value      any               `yaml:"value"`
	Template   string            `yaml:"template"`
	CEL        string            `yaml:"cel"`
	Lookup     map[string]string `yaml:"lookup"`
	Default    any               `yaml:"default"`
	Transforms []string          `yaml:"transforms"`
	When       string            `yaml:"when"`
	CreateOnly bool              `yaml:"create_only"`
}

type rawErasureRule struct {
	Action      string            `yaml:"action"`
	Fallback    string            `yaml:"fallback"`
	Fields      []string          `yaml:"fields"`
	Set         map[string]string `yaml:"set"`
	Replacement string            `yaml:"replacement"`
	Clear       []string          `yaml:"clear"`
}

// linkRoles are the link roles each object may declare.
var linkRoles = map[string][]string{
	ObjectPersona: {"contact"},
	ObjectPost:    {"persona", "case", "contact", "reply_to"},
	ObjectCase:    {"contact"},
	ObjectContact: {},
}

func (p *parser) build(raw *rawMapping) *Mapping {
	env, err := newEnv()
	if err != nil {
		p.add("", "internal: cannot build the expression environment: %v", err)
		return nil
	}
	m := &Mapping{
		File:               p.file,
		DefaultPhoneRegion: raw.Settings.DefaultPhoneRegion,
		Objects:            map[string]*Object{},
		custom:             raw.CustomFields,
		env:                env,
		lines:              p.lines,
	}
	if m.DefaultPhoneRegion == "" {
		m.DefaultPhoneRegion = "NL"
	}
	if phonenumbers.GetCountryCodeForRegion(m.DefaultPhoneRegion) == 0 {
		p.add("settings.default_phone_region", "unknown region %q; use a two-letter country code such as NL", m.DefaultPhoneRegion)
	}
	seen := map[string]bool{}
	for i, cf := range raw.CustomFields {
		path := fmt.Sprintf("custom_fields.%d", i)
		if _, ok := standardFields[cf.Object]; !ok {
			p.add(path+".object", "unknown object %q; use one of %s", cf.Object, objectNames())
		}
		key := cf.Object + "." + cf.Name
		if seen[key] {
			p.add(path+".name", "%s is declared twice", key)
		}
		seen[key] = true
		if cf.Unique && !cf.ExternalID {
			p.add(path+".unique", "unique needs external_id: true as well")
		}
	}
	names := make([]string, 0, len(raw.Objects))
	for name := range raw.Objects {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ro := raw.Objects[name]
		base := "objects." + name
		o := &Object{Name: name, SObject: ro.SObject, ExternalIDField: ro.ExternalIDField, Links: ro.Links}
		if _, ok := standardFields[o.SObject]; !ok {
			p.add(base+".sobject", "unknown Salesforce object %q; use one of %s", o.SObject, objectNames())
			continue
		}
		if cf, ok := m.custom1(o.SObject, o.ExternalIDField); !ok || !cf.ExternalID {
			p.add(base+".external_id_field", "%s.%s must be declared under custom_fields with external_id: true", o.SObject, o.ExternalIDField)
		}
		allowed := linkRoles[name]
		for role, field := range ro.Links {
			if !contains(allowed, role) {
				p.add(base+".links."+role, "unknown link %q; %s can link %s", role, name, strings.Join(allowed, ", "))
				continue
			}
			if !m.hasField(o.SObject, field) {
				p.add(base+".links."+role, "unknown %s field %q", o.SObject, field)
			}
		}
		fnames := make([]string, 0, len(ro.Fields))
		for fname := range ro.Fields {
			fnames = append(fnames, fname)
		}
		sort.Strings(fnames)
		for _, fname := range fnames {
			path := base + ".fields." + fname
			if !m.hasField(o.SObject, fname) {
				p.add(path, "unknown %s field %q; check the spelling or declare it under custom_fields", o.SObject, fname)
				continue
			}
			for role, lf := range o.Links {
				if lf == fname {
					p.add(path, "%s is filled by webcaresync (links.%s); remove it from fields", fname, role)
				}
			}
			f := p.field(m, name, fname, path, ro.Fields[fname])
			if f != nil {
				o.Fields = append(o.Fields, f)
			}
		}
		m.Objects[name] = o
	}
	p.caseRules(m, raw)
	p.statusUpdates(m, raw)
	p.erasure(m, raw)
	return m
}

func objectNames() string {
	names := make([]string, 0, len(standardFields))
	for n := range standardFields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *Mapping) custom1(sobject, field string) (CustomField, bool) {
	for _, cf := range m.custom {
		if cf.Object == sobject && cf.Name == field {
			return cf, true
		}
	}
	return CustomField{}, false
}

func (m *Mapping) hasField(sobject, field string) bool {
	if KnownField(sobject, field) {
		return true
	}
	_, ok := m.custom1(sobject, field)
	return ok
}

func (p *parser) caseRules(m *Mapping, raw *rawMapping) {
	r := raw.CaseRules
	m.CaseRules = CaseRules{
		OpenOn:       r.OpenOn,
		Keywords:     r.Keywords,
		ReopenWithin: 5 * 24 * time.Hour,
		ReopenStatus: r.ReopenStatus,
	}
	if m.CaseRules.OpenOn == "" {
		m.CaseRules.OpenOn = OpenOnFirstInbound
	}
	if m.CaseRules.ReopenStatus == "" {
		m.CaseRules.ReopenStatus = "New"
	}
	if r.ReopenWithinDays != nil {
		m.CaseRules.ReopenWithin = time.Duration(*r.ReopenWithinDays) * 24 * time.Hour
	}
	if m.CaseRules.OpenOn == OpenOnKeywords && len(r.Keywords) == 0 {
		p.add("case_rules.keywords", "open_on: keywords needs at least one keyword")
	}
	if r.Condition != "" {
		prg, err := compileCEL(m.env, r.Condition, true)
		if err != nil {
			p.add("case_rules.condition", "%v", err)
		}
		m.CaseRules.condition = prg
	}
	if m.CaseRules.OpenOn == OpenOnCondition && r.Condition == "" {
		p.add("case_rules.condition", "open_on: condition needs a condition")
	}
}

func (p *parser) statusUpdates(m *Mapping, raw *rawMapping) {
	post := m.Objects[ObjectPost]
	if raw.StatusUpdates == nil || post == nil {
		return
	}
	su := raw.StatusUpdates
	m.StatusUpdates = StatusUpdates{Field: su.Field, Values: su.Values, MessageField: su.MessageField}
	if !m.hasField(post.SObject, su.Field) {
		p.add("status_updates.field", "unknown %s field %q", post.SObject, su.Field)
	}
	if su.MessageField != "" && !m.hasField(post.SObject, su.MessageField) {
		p.add("status_updates.message_field", "unknown %s field %q", post.SObject, su.MessageField)
	}
	for k := range su.Values {
		switch k {
		case "sent", "delivered", "read", "failed":
		default:
			p.add("status_updates.values."+k, "unknown status %q; use sent, delivered, read or failed", k)
		}
	}
}

func (p *parser) erasure(m *Mapping, raw *rawMapping) {
	m.Erasure = Erasure{Rules: map[string]ErasureRule{}}
	keys := make([]string, 0, len(raw.Erasure))
	for k := range raw.Erasure {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, obj := range keys {
		node := raw.Erasure[obj]
		path := "erasure." + obj
		if obj == "individual" {
			var ind struct {
				ShouldForget bool              `yaml:"should_forget"`
				Fields       []string          `yaml:"fields"`
				Set          map[string]string `yaml:"set"`
			}
			if err := node.Decode(&ind); err != nil {
				p.add(path, "%v", err)
				continue
			}
			m.Erasure.IndividualShouldForget = ind.ShouldForget
			if len(ind.Fields) == 0 && len(ind.Set) == 0 {
				continue
			}
			r := rawErasureRule{Action: EraseAnonymise, Fields: ind.Fields, Set: ind.Set}
			p.erasureFields(m, "Individual", path, r)
			m.Erasure.Rules["Individual"] = ErasureRule(r)
			continue
		}
		var r rawErasureRule
		if err := node.Decode(&r); err != nil {
			p.add(path, "%v", err)
			continue
		}
		p.erasureFields(m, obj, path, r)
		needsFields := r.Action != EraseDelete || r.Fallback != ""
		if needsFields && len(r.Fields) == 0 && len(r.Set) == 0 && len(r.Clear) == 0 {
			p.add(path+".fields", "%s needs the fields to blank or replace", r.Action)
		}
		if (r.Action == EraseRedact || r.Fallback == EraseRedact) && r.Replacement == "" {
			p.add(path+".replacement", "redact needs a replacement text")
		}
		m.Erasure.Rules[obj] = ErasureRule(r)
	}
}

// erasureFields checks that every field an erasure rule names exists.
func (p *parser) erasureFields(m *Mapping, obj, path string, r rawErasureRule) {
	for i, f := range r.Fields {
		if !m.hasField(obj, f) {
			p.add(fmt.Sprintf("%s.fields.%d", path, i), "unknown %s field %q", obj, f)
		}
	}
	for i, f := range r.Clear {
		if !m.hasField(obj, f) {
			p.add(fmt.Sprintf("%s.clear.%d", path, i), "unknown %s field %q", obj, f)
		}
	}
	for f := range r.Set {
		if !m.hasField(obj, f) {
			p.add(path+".set."+f, "unknown %s field %q", obj, f)
		}
	}
}

// field compiles one field mapping.
func (p *parser) field(m *Mapping, object, name, path string, rf rawField) *Field {
	f := &Field{Name: name, Line: p.line(path), CreateOnly: rf.CreateOnly, lookup: rf.Lookup, def: rf.Default, constant: rf.Value}
	switch {
	case rf.From != "":
		f.from = strings.Split(rf.From, ".")
		if _, ok := lookupPath(sampleVars(), f.from); !ok {
			p.add(path+".from", "unknown value %q; see the list at the top of the file", rf.From)
		}
		if f.from[0] == "contact" && object != ObjectContact || f.from[0] != "contact" && object == ObjectContact && f.from[0] != "conversation" {
			p.add(path+".from", "%q is not available for %s", rf.From, object)
		}
	case rf.Template != "":
		t, err := parseTemplate(path, rf.Template, m.DefaultPhoneRegion)
		if err != nil {
			p.add(path+".template", "%v", err)
			return nil
		}
		if _, err := execTemplate(t, sampleVars()); err != nil {
			p.add(path+".template", "%v", err)
			return nil
		}
		f.tmpl = t
	case rf.CEL != "":
		prg, err := compileCEL(m.env, rf.CEL, false)
		if err != nil {
			p.add(path+".cel", "%v", err)
			return nil
		}
		f.expr = prg
	}
	if rf.When != "" {
		prg, err := compileCEL(m.env, rf.When, true)
		if err != nil {
			p.add(path+".when", "%v", err)
			return nil
		}
		f.when = prg
	}
	for i, s := range rf.Transforms {
		t, err := parseTransform(s, m.DefaultPhoneRegion)
		if err != nil {
			p.add(fmt.Sprintf("%s.transforms.%d", path, i), "%v", err)
			continue
		}
		f.transforms = append(f.transforms, t)
	}
	// Try the field on a sample so that runtime mistakes (a CEL expression
	// reading a missing value) show up at config check.
	if f.expr != nil || f.when != nil {
		if _, err := f.apply(m.env, sampleVars()); err != nil {
			p.add(path, "%v", err)
		}
	}
	return f
}

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// newEnv returns the shared CEL environment; a cel.Env is safe for
// concurrent use and costly to build.
func newEnv() (*cel.Env, error) {
	envOnce.Do(func() { envVal, envErr = buildEnv() })
	return envVal, envErr
}

func buildEnv() (*cel.Env, error) {
	dyn := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.Variable("event", dyn),
		cel.Variable("contact", dyn),
		cel.Variable("conversation", dyn),
		ext.Strings(),
	)
}

// compileCEL compiles an expression; conditions must yield a bool.
func compileCEL(env *cel.Env, src string, condition bool) (cel.Program, error) {
	ast, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("expression does not compile: %s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if condition {
		t := ast.OutputType()
		if !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
			return nil, fmt.Errorf("condition must be true or false, but gives %s", t)
		}
	}
	prg, err := env.Program(ast, cel.CostLimit(100000))
	if err != nil {
		return nil, fmt.Errorf("expression does not compile: %v", err)
	}
	return prg, nil
}
