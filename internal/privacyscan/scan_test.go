package privacyscan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	email = "sanne.devries@example.nl"
	phone = "+31612345678"
)

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func labels(r Report) []string {
	var out []string
	for _, nr := range r.Found() {
		out = append(out, nr.Label)
	}
	return out
}

func TestPhoneForms(t *testing.T) {
	var got []string
	for _, f := range PhoneForms(phone, "NL") {
		got = append(got, f.Value)
	}
	for _, want := range []string{"+31612345678", "31612345678", "0612345678", "06-12345678", "06 12345678", "+31 6 12345678"} {
		if !slices.Contains(got, want) {
			t.Errorf("forms %q lack %q", got, want)
		}
	}
	got = nil
	for _, f := range PhoneForms("06-12345678", "NL") {
		got = append(got, f.Value)
	}
	if !slices.Contains(got, "+31612345678") {
		t.Errorf("national input: forms %q lack E.164", got)
	}
}

func TestTextWindows(t *testing.T) {
	text := "Hallo, ik had via Twitter al contact over mijn bestelling. Kunnen jullie me even bellen? ☎️"
	ws := TextWindows(text)
	if len(ws) != 3 {
		t.Fatalf("windows %q: want 3", ws)
	}
	for _, w := range ws {
		if !strings.Contains(text, w) || len([]rune(w)) < 20 {
			t.Errorf("window %q is not a 20+ character slice of the text", w)
		}
	}
	if got := TextWindows("  kort  "); len(got) != 1 || got[0] != "kort" {
		t.Errorf("short text: %q", got)
	}
}

// TestScanFindsEveryEncoding hides the e-mail address in one file per
// encoding and checks that each is found at the right offset.
func TestScanFindsEveryEncoding(t *testing.T) {
	enc := map[string][]byte{
		"plain":     []byte(email),
		"lowercase": []byte(strings.ToLower("Sanne.DeVries@Example.nl")),
		"json":      mustJSON(t, "Chloé Müller"),
		"utf16":     utf16LE(email),
		"b64":       []byte(base64.StdEncoding.EncodeToString([]byte("x" + email + "y"))),
		"b64a2":     []byte(base64.StdEncoding.EncodeToString([]byte("xy" + email))),
		"b64url":    []byte(base64.URLEncoding.EncodeToString([]byte("??>" + email + ">>"))),
		"hex":       []byte(hex.EncodeToString([]byte(email))),
		"HEX":       []byte(strings.ToUpper(hex.EncodeToString([]byte(email)))),
		"plus":      []byte(`{"phone":"\u002b31612345678"}`),
	}
	dir := t.TempDir()
	prefix := bytes.Repeat([]byte{0}, 1000)
	for name, b := range enc {
		write(t, dir, name+".bin", append(slices.Clone(prefix), b...))
	}
	write(t, dir, "sandbox/crm.json", []byte(email))
	needles := []Needle{
		{Kind: "email", Label: "email", Value: strings.ToLower("Sanne.DeVries@Example.nl")},
		{Kind: "name", Label: "name", Value: "Chloé Müller"},
		{Kind: "phone", Label: "phone", Value: phone},
		{Kind: "absent", Label: "absent", Value: "nobody@example.org"},
	}
	rep, err := Scan(dir, needles)
	if err != nil {
		t.Fatal(err)
	}
	bySource := map[string]Hit{}
	for _, nr := range rep.Needles {
		for _, h := range nr.Hits {
			bySource[h.Source] = h
		}
	}
	for name := range enc {
		h, ok := bySource[name+".bin"]
		if !ok {
			t.Errorf("%s: not found", name)
			continue
		}
		if h.Offset < 1000 {
			t.Errorf("%s: offset %d, want >= 1000", name, h.Offset)
		}
	}
	if _, ok := bySource["sandbox/crm.json"]; ok {
		t.Error("the sandbox was scanned; it is excluded by default")
	}
	if rep.Needles[3].Count != 0 {
		t.Errorf("absent needle found %d times", rep.Needles[3].Count)
	}
	if h := bySource["plain.bin"]; h.Offset != 1000 || h.Encoding != "plain" {
		t.Errorf("plain hit %+v: want offset 1000, encoding plain", h)
	}

	all, err := Options{Exclude: []string{}}.Scan(dir, needles[:1])
	if err != nil {
		t.Fatal(err)
	}
	if all.CountIn("email", "sandbox/") != 1 {
		t.Errorf("with no exclusions the sandbox hit is missing: %+v", all.Needles[0].Hits)
	}
}

func mustJSON(t *testing.T, s string) []byte {
	t.Helper()
	// The escaping of an ASCII-only encoder, as Python's json.dumps writes.
	var b strings.Builder
	for _, r := range s {
		if r > 0x7e {
			b.WriteString(`\u00`)
			b.WriteString(hex.EncodeToString([]byte{byte(r)}))
			continue
		}
		b.WriteRune(r)
	}
	out, _ := json.Marshal(map[string]json.RawMessage{"n": json.RawMessage(`"` + b.String() + `"`)})
	return out
}

// TestScanAcrossChunks puts needles across chunk boundaries and checks that
// each occurrence is counted once, at its offset.
func TestScanAcrossChunks(t *testing.T) {
	m, err := newMatcher([]Needle{{Kind: "email", Label: "email", Value: email}})
	if err != nil {
		t.Fatal(err)
	}
	m.chunk = 7
	data := []byte("ab" + email + email + "cdefghijk" + email)
	if _, err := m.scan("s", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, h := range m.reports[0].Hits {
		if h.Encoding == "plain" {
			offs = append(offs, h.Offset)
		}
	}
	want := []int64{2, int64(2 + len(email)), int64(2 + 2*len(email) + 9)}
	if !slices.Equal(offs, want) {
		t.Errorf("offsets %v, want %v", offs, want)
	}
}

// TestReportNeverContainsValues checks that a printed report names needles
// and offsets but not their values or the surrounding bytes.
func TestReportNeverContainsValues(t *testing.T) {
	s := Subject{Emails: []string{email}, Phones: []string{phone}, Handles: []string{"x:sannedv"},
		Names: []string{"Sanne de Vries"}, Texts: []string{"Hallo, ik had via Twitter al contact over mijn bestelling."}}
	needles := s.Needles()
	secret := "Oudegracht 12 secret context"
	data := secret + email + secret + "06-12345678 sannedv Sanne de Vries via Twitter al contact over"
	rep, err := Scan("", needles, NamedReader{Name: "logs", R: strings.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total() == 0 {
		t.Fatal("nothing found")
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(rep)
	for _, n := range needles {
		if strings.Contains(out.String(), n.Value) || bytes.Contains(js, []byte(n.Value)) {
			t.Errorf("the report contains the value of %s", n.Label)
		}
	}
	if strings.Contains(out.String(), "Oudegracht") {
		t.Error("the report contains surrounding bytes")
	}
	for _, want := range []string{"email[0]", "phone[0] national dash", "handle[0]", "name[0]"} {
		if !slices.Contains(labels(rep), want) {
			t.Errorf("%s not found; found %v", want, labels(rep))
		}
	}
}

func TestScanRejectsBadNeedles(t *testing.T) {
	if _, err := Scan("", []Needle{{Kind: "x", Label: "x", Value: "abc"}}); err == nil {
		t.Error("a 3-byte needle was accepted")
	}
	rep, err := Scan("", []Needle{{Kind: "x", Label: "mail a@b.nl", Value: "a@b.nl"}})
	if err != nil || rep.Needles[0].Label != "#0" {
		t.Errorf("a label containing the value was kept: %q, %v", rep.Needles[0].Label, err)
	}
	if _, err := Scan(filepath.Join(t.TempDir(), "missing"), []Needle{{Kind: "x", Label: "x", Value: "abcdef"}}); err == nil {
		t.Error("a missing data dir was accepted")
	}
}

// TestWhatsAppMessageIDCarriesThePhone documents why base64 is searched:
// a WhatsApp message ID (wamid) embeds the sender's number in base64.
func TestWhatsAppMessageIDCarriesThePhone(t *testing.T) {
	wamid := "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzRUIwMUE2QjlGNDY3QjY3MDAA"
	rep, err := Scan("", Subject{Phones: []string{phone}}.Needles(), NamedReader{Name: "id", R: strings.NewReader(wamid)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total() == 0 {
		t.Error("the phone number inside the wamid was not found")
	}
}
