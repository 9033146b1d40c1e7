// Package privacyscan searches webcaresync's data, byte for byte, for a
// data subject's personal data: the e-mail address, phone numbers in their
// usual forms, handles and platform user IDs, and message texts. It looks
// for each value as is and in the encodings a store or log might use
// (lowercase, JSON escapes, UTF-16LE, base64 and hex), so that a value that
// survives in any readable form is found.
//
// A Report names the needle, the file and the byte offset of each hit, and
// never the bytes around it, so printing a report leaks nothing.
package privacyscan

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// MinNeedleLen is the shortest value, in bytes, that can be searched for.
// Shorter values would match by chance all over binary files.
const MinNeedleLen = 5

// textWindow is the length, in runes, of the slices of a message text
// searched for. A message stored truncated or split still contains one.
const textWindow = 24

// Needle is one value to search for.
type Needle struct {
	// Kind says what the value is: email, phone, handle, text, key-id, ...
	Kind string
	// Label names the needle in a report. A label that is empty or
	// contains the value is replaced by the needle's position (#3):
	// reports are printed and logged.
	Label string
	// Value is the plaintext searched for.
	Value string
}

// Subject lists the personal data of one data subject. Needles derives
// the values to search for from it.
type Subject struct {
	// Emails are e-mail addresses.
	Emails []string
	// Phones are phone numbers in any form; E.164 (+31612345678) is best.
	Phones []string
	// Handles are screen names and platform user IDs (X user ID, WhatsApp
	// wa_id, Messenger PSID). A provider prefix ("x:") is removed.
	Handles []string
	// Names are personal names ("Sanne de Vries").
	Names []string
	// Texts are message texts; slices of at least 20 characters of each
	// are searched for.
	Texts []string
	// Region is the default region for phone numbers written without a
	// country code. Default: NL.
	Region string
}

// Needles returns the values to search for: each e-mail address, each
// phone number in E.164, without the plus, in national forms (0612345678,
// 06-12345678, 06 12345678) and the international form, each handle (with
// and without @), each name and slices of each text. Values shorter than
// MinNeedleLen are left out. Labels number the values by kind and form and
// never contain them.
func (s Subject) Needles() []Needle {
	region := s.Region
	if region == "" {
		region = "NL"
	}
	var out []Needle
	seen := map[string]bool{}
	add := func(kind, label, v string) {
		if len(v) < MinNeedleLen || seen[v] {
			return
		}
		seen[v] = true
		out = append(out, Needle{Kind: kind, Label: label, Value: v})
	}
	for i, e := range s.Emails {
		add("email", fmt.Sprintf("email[%d]", i), strings.TrimSpace(e))
	}
	for i, p := range s.Phones {
		for _, f := range PhoneForms(p, region) {
			add("phone", fmt.Sprintf("phone[%d] %s", i, f.Form), f.Value)
		}
	}
	for i, h := range s.Handles {
		h = strings.TrimSpace(h)
		if p, id, ok := strings.Cut(h, ":"); ok && !strings.ContainsAny(p, "@ ") {
			h = id
		}
		h = strings.TrimPrefix(h, "@")
		add("handle", fmt.Sprintf("handle[%d]", i), h)
		add("handle", fmt.Sprintf("handle[%d] with @", i), "@"+h)
	}
	for i, n := range s.Names {
		add("name", fmt.Sprintf("name[%d]", i), strings.TrimSpace(n))
	}
	for i, t := range s.Texts {
		for j, w := range TextWindows(t) {
			add("text", fmt.Sprintf("text[%d] slice %d", i, j), w)
		}
	}
	return out
}

// PhoneForm is one way of writing a phone number.
type PhoneForm struct {
	// Form names the way of writing: e164, digits, national, ...
	Form string
	// Value is the number written that way.
	Value string
}

// PhoneForms returns the ways a phone number is commonly written: E.164
// (+31612345678), E.164 digits (31612345678, also WhatsApp's wa_id),
// national digits (0612345678), national with a dash after the area or
// mobile prefix (06-12345678), national with spaces (06 12345678) and
// international (+31 6 12345678). A number that does not parse is returned
// as given and as its digits.
func PhoneForms(phone, region string) []PhoneForm {
	phone = strings.TrimSpace(phone)
	out := []PhoneForm{{"as given", phone}}
	add := func(form, v string) {
		for _, f := range out {
			if f.Value == v {
				return
			}
		}
		out = append(out, PhoneForm{form, v})
	}
	num, err := phonenumbers.Parse(phone, region)
	if err != nil {
		add("digits", digits(phone))
		return out
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	add("e164", e164)
	add("e164 digits", strings.TrimPrefix(e164, "+"))
	national := phonenumbers.Format(num, phonenumbers.NATIONAL)
	add("national digits", digits(national))
	add("national", national)
	// Dutch and many other numbers are written with a dash between the
	// area (or 06) prefix and the subscriber number: 06-12345678.
	if prefix, rest, ok := strings.Cut(national, " "); ok {
		add("national dash", prefix+"-"+digits(rest))
		add("national space", prefix+" "+digits(rest))
	}
	add("international", phonenumbers.Format(num, phonenumbers.INTERNATIONAL))
	return out
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TextWindows returns the slices of a message text that are searched for:
// the whole text when it is at most 24 characters long, otherwise its first
// and last 24 characters and one from the middle. Surrounding spaces are
// trimmed from each slice.
func TextWindows(text string) []string {
	text = strings.TrimSpace(text)
	runes := []rune(text)
	if len(runes) <= textWindow {
		return []string{text}
	}
	var out []string
	for _, start := range []int{0, (len(runes) - textWindow) / 2, len(runes) - textWindow} {
		w := strings.TrimSpace(string(runes[start : start+textWindow]))
		if utf8.RuneCountInString(w) >= 20 && (len(out) == 0 || out[len(out)-1] != w) {
			out = append(out, w)
		}
	}
	return out
}
