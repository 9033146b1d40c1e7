package mappings

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the mapping parser: it must return a
// mapping or errors, never panic.
func FuzzParse(f *testing.F) {
	base, err := os.ReadFile("salesforce.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(base)
	f.Add([]byte("version: 1\nobjects: {}\n"))
	f.Add([]byte("version: 1\nobjects:\n  post:\n    sobject: SocialPost\n    external_id_field: x\n    fields: {Name: {cel: '1 +'}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data)
		if err == nil && m == nil {
			t.Fatal("no mapping and no error")
		}
		if err != nil {
			if errs, ok := err.(Errors); ok {
				for _, e := range errs {
					_ = e.Error()
				}
			}
		}
	})
}

// FuzzTransform checks transforms never panic on any spec and input.
func FuzzTransform(f *testing.F) {
	f.Add("truncate(3)", "héllo wereld")
	f.Add("e164", "+31 (0)6 1234 5678")
	f.Add("lower", "ABC")
	f.Fuzz(func(t *testing.T, spec, in string) {
		tr, err := parseTransform(spec, "NL")
		if err != nil {
			return
		}
		_ = tr(in)
	})
}
