package channels

import (
	"errors"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/schemas"
)

func TestUnixTime(t *testing.T) {
	want := time.Unix(1714556000, 0).UTC()
	tests := []struct {
		in string
		ok bool
		t  time.Time
	}{
		{"1714556000", true, want},
		{"1714556000000", true, want},
		{"1714556000123", true, want.Add(123 * time.Millisecond)},
		{"1714556000.5", true, want.Add(500 * time.Millisecond)},
		{"0", false, time.Time{}},
		{"-5", false, time.Time{}},
		{"abc", false, time.Time{}},
		{"", false, time.Time{}},
		{"1e300", false, time.Time{}},
		{"NaN", false, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := UnixTime(tt.in)
		if ok != tt.ok || !got.Equal(tt.t) || (ok && got.Location() != time.UTC) {
			t.Errorf("UnixTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.t, tt.ok)
		}
	}
}

func TestAgentInitials(t *testing.T) {
	tests := map[string]string{
		"Fijne dag nog! ^MK":     "MK",
		"Graag gedaan 😊 ^lb":     "LB",
		"We kijken ernaar. -JdV": "JDV",
		"Prima /AB ":             "AB",
		"Geen handtekening":      "",
		"x^MK":                   "",
		"Bedankt ^ABCDE":         "",
	}
	for in, want := range tests {
		if got := AgentInitials(in); got != want {
			t.Errorf("AgentInitials(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	var v struct {
		ID  FlexString `json:"id"`
		N   []int      `json:"n"`
		Obj struct {
			Name string `json:"name"`
		} `json:"obj"`
	}
	if err := DecodeJSON([]byte(`{"id":123,"n":[1]}`), &v); err != nil || v.ID != "123" {
		t.Fatalf("DecodeJSON = %v, id %q", err, v.ID)
	}
	if err := DecodeJSON([]byte(`{"id":"abc"}`), &v); err != nil || v.ID != "abc" {
		t.Fatalf("DecodeJSON = %v, id %q", err, v.ID)
	}
	tests := map[string]string{
		`{"id":true}`:           "",
		`{"n":"Sanne"}`:         "n",
		`{"obj":{"name":5}}`:    "obj.name",
		`{"id":"1"} {"id":"2"}`: "",
		`{"id":"Sanne"`:         "",
		``:                      "",
	}
	for in, field := range tests {
		err := DecodeJSON([]byte(in), &v)
		if err == nil {
			t.Errorf("DecodeJSON(%q) = nil, want error", in)
			continue
		}
		if err.Field != field {
			t.Errorf("DecodeJSON(%q).Field = %q, want %q", in, err.Field, field)
		}
	}
}

func TestFromValidation(t *testing.T) {
	err := FromValidation("events[2]", &schemas.FieldError{Field: "channel", Message: "must be one of x"})
	if err.Field != "events[2].channel" {
		t.Fatalf("Field = %q", err.Field)
	}
	err = FromValidation("events[2]", &schemas.FieldError{Message: "body is not valid JSON"})
	if err.Field != "events[2]" {
		t.Fatalf("Field = %q", err.Field)
	}
	if !errors.Is(Unauthorized("x"), ErrUnauthorized) {
		t.Fatal("Unauthorized does not wrap ErrUnauthorized")
	}
}
