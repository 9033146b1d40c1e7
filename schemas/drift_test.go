package schemas

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// jsonSchemaNode is the subset of JSON Schema the drift test compares.
type jsonSchemaNode struct {
	Ref                  string                     `json:"$ref"`
	Type                 string                     `json:"type"`
	Format               string                     `json:"format"`
	Enum                 []string                   `json:"enum"`
	Required             []string                   `json:"required"`
	Properties           map[string]*jsonSchemaNode `json:"properties"`
	Items                *jsonSchemaNode            `json:"items"`
	AdditionalProperties *bool                      `json:"additionalProperties"`
	Defs                 map[string]*jsonSchemaNode `json:"$defs"`
}

// goEnums lists, per schema path, the Go values the schema's enum must equal.
var goEnums = map[string][]string{
	"kind":               stringsOf(Kinds),
	"channel":            stringsOf(Channels),
	"direction":          stringsOf(Directions),
	"visibility":         stringsOf(Visibilities),
	"status":             Statuses,
	"attachments[].type": AttachmentTypes,
}

func stringsOf[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// TestSchemaMatchesGoType proves schemas.Event and event.schema.json cannot
// drift: every json-tagged field has a property and every property a field,
// at every nesting level; the required list equals the fields without
// omitempty; the JSON types and enums agree.
func TestSchemaMatchesGoType(t *testing.T) {
	var root jsonSchemaNode
	if err := json.Unmarshal(EventSchema, &root); err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	compareStruct(t, "", reflect.TypeFor[Event](), &root, root.Defs)
}

func resolve(t reporter, path string, n *jsonSchemaNode, defs map[string]*jsonSchemaNode) *jsonSchemaNode {
	t.Helper()
	if n.Ref == "" {
		return n
	}
	name, ok := strings.CutPrefix(n.Ref, "#/$defs/")
	if !ok || defs[name] == nil {
		t.Fatalf("%s: unresolvable $ref %q", path, n.Ref)
		return &jsonSchemaNode{}
	}
	return defs[name]
}

func compareStruct(t reporter, path string, typ reflect.Type, node *jsonSchemaNode, defs map[string]*jsonSchemaNode) {
	t.Helper()
	if node.Type != "object" {
		t.Errorf("%s: schema type %q, Go type %s is a struct", orRoot(path), node.Type, typ)
	}
	if node.AdditionalProperties == nil || *node.AdditionalProperties {
		t.Errorf("%s: schema must set additionalProperties false", orRoot(path))
	}
	var goRequired []string
	seen := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			t.Errorf("%s.%s: exported field without json tag", typ, f.Name)
			continue
		}
		seen[name] = true
		if !slices.Contains(strings.Split(opts, ","), "omitempty") {
			goRequired = append(goRequired, name)
		}
		fieldPath := join(path, name)
		prop, ok := node.Properties[name]
		if !ok {
			t.Errorf("%s: Go field %s.%s has no schema property", fieldPath, typ, f.Name)
			continue
		}
		compareValue(t, fieldPath, f.Type, resolve(t, fieldPath, prop, defs), defs)
	}
	for name := range node.Properties {
		if !seen[name] {
			t.Errorf("%s: schema property has no Go field in %s", join(path, name), typ)
		}
	}
	sort.Strings(goRequired)
	schemaRequired := slices.Clone(node.Required)
	sort.Strings(schemaRequired)
	if !slices.Equal(goRequired, schemaRequired) {
		t.Errorf("%s: required %v in schema, %v in Go (fields without omitempty)", orRoot(path), schemaRequired, goRequired)
	}
}

func compareValue(t reporter, path string, typ reflect.Type, node *jsonSchemaNode, defs map[string]*jsonSchemaNode) {
	t.Helper()
	switch {
	case typ == reflect.TypeFor[time.Time]():
		if node.Type != "string" || node.Format != "date-time" {
			t.Errorf("%s: time.Time needs type string, format date-time; schema has %q/%q", path, node.Type, node.Format)
		}
	case typ.Kind() == reflect.String:
		if node.Type != "string" {
			t.Errorf("%s: Go string, schema type %q", path, node.Type)
		}
		if want, ok := goEnums[path]; ok && !slices.Equal(want, node.Enum) {
			t.Errorf("%s: schema enum %v, Go values %v", path, node.Enum, want)
		}
		if _, ok := goEnums[path]; !ok && len(node.Enum) > 0 {
			t.Errorf("%s: schema has an enum the drift test does not know: add it to goEnums", path)
		}
	case typ.Kind() == reflect.Slice:
		if node.Type != "array" || node.Items == nil {
			t.Errorf("%s: Go slice, schema type %q", path, node.Type)
			return
		}
		compareValue(t, path+"[]", typ.Elem(), resolve(t, path, node.Items, defs), defs)
	case typ.Kind() == reflect.Struct:
		compareStruct(t, path, typ, node, defs)
	default:
		t.Errorf("%s: Go kind %s not covered by the drift test", path, typ.Kind())
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

// TestDriftTestCanFail checks the drift test notices a mismatch, so that it
// cannot pass vacuously.
func TestDriftTestCanFail(t *testing.T) {
	type drifted struct {
		Kind  Kind   `json:"kind"`
		Extra string `json:"extra"`
	}
	var root jsonSchemaNode
	if err := json.Unmarshal(EventSchema, &root); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	compareStruct(rec, "", reflect.TypeFor[drifted](), &root, root.Defs)
	if len(rec.errs) < 2 {
		t.Fatal("drift test did not fail for a struct that misses fields and adds one")
	}
}

// reporter is the part of testing.T the comparison uses, so the drift test
// can also be run against a recorder.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// recorder collects failures instead of failing a test.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
