package privacyscan

import (
	"strings"
	"testing"
)

// FuzzScan feeds operator input (phone numbers, handles, texts) through the
// needle builder and the scanner: no panics, and a value put in the data is
// always found.
func FuzzScan(f *testing.F) {
	f.Add("+31612345678", "x:sannedv", "Hallo, ik had via Twitter al contact ☎️", "prefix")
	f.Add("06-12345678", "@handle", "kort", "")
	f.Add("not a phone", "whatsapp:31612345678", "\x00\xff\xfe invalid utf-8 text \xc3", "\u2028")
	f.Add("+1 (415) 555-0100 ext. 12", ":", strings.Repeat("é", 40), "zzz")
	f.Fuzz(func(t *testing.T, phone, handle, text, prefix string) {
		needles := Subject{Phones: []string{phone}, Handles: []string{handle}, Texts: []string{text}}.Needles()
		var data strings.Builder
		data.WriteString(prefix)
		for _, n := range needles {
			data.WriteString(n.Value)
			data.WriteString("|")
		}
		rep, err := Scan("", needles, NamedReader{Name: "data", R: strings.NewReader(data.String())})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, nr := range rep.Needles {
			if nr.Count == 0 {
				t.Errorf("%s: not found", nr.Label)
			}
		}
	})
}
