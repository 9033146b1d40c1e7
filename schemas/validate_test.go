package schemas

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const validEvent = `{
  "kind": "message",
  "channel": "livechat",
  "conversation_key": "livechat:site-1:visitor-42",
  "direction": "inbound",
  "visibility": "private",
  "platform_message_id": "lc-msg-0001",
  "reply_to_id": "lc-msg-0000",
  "author": {"platform_user_id": "visitor-42", "display_name": "Zoë Jansen"},
  "text": "Mijn pakket is nog steeds niet bezorgd 😤",
  "attachments": [{"type": "image", "url": "https://cdn.example.com/a.jpg", "mime_type": "image/jpeg"}],
  "occurred_at": "2024-05-01T09:30:00+02:00",
  "brand": {"id": "site-1", "handle": "webshop"}
}`

// mutate replaces one exact substring of validEvent, failing the test if the
// substring is missing so that a stale table entry cannot pass silently.
func mutate(t *testing.T, old, new string) []byte {
	t.Helper()
	if !strings.Contains(validEvent, old) {
		t.Fatalf("test bug: %q not in validEvent", old)
	}
	return []byte(strings.Replace(validEvent, old, new, 1))
}

func TestValidateAcceptsValidEvent(t *testing.T) {
	if err := Validate([]byte(validEvent)); err != nil {
		t.Fatalf("Validate(valid) = %v, want nil", err)
	}
}

func TestValidateReportsField(t *testing.T) {
	long := strings.Repeat("é", MaxTextLength+1)
	tests := []struct {
		name  string
		raw   []byte
		field string
	}{
		{"missing kind", mutate(t, `"kind": "message",`, ``), "kind"},
		{"bad kind", mutate(t, `"kind": "message"`, `"kind": "note"`), "kind"},
		{"bad channel", mutate(t, `"channel": "livechat"`, `"channel": "telegram"`), "channel"},
		{"bad direction", mutate(t, `"direction": "inbound"`, `"direction": "sideways"`), "direction"},
		{"bad visibility", mutate(t, `"visibility": "private"`, `"visibility": "secret"`), "visibility"},
		{"missing author id", mutate(t, `"platform_user_id": "visitor-42", `, ``), "author.platform_user_id"},
		{"empty author id", mutate(t, `"platform_user_id": "visitor-42"`, `"platform_user_id": ""`), "author.platform_user_id"},
		{"author id too long", mutate(t, `"platform_user_id": "visitor-42"`, `"platform_user_id": "`+strings.Repeat("9", 257)+`"`), "author.platform_user_id"},
		{"unknown author field", mutate(t, `"display_name"`, `"displayname"`), "author.displayname"},
		{"unknown top-level field", mutate(t, `"text":`, `"body":`), "body"},
		{"unsafe unknown name not echoed", mutate(t, `"text":`, `"sanne@example.com":`), ""},
		{"text too long", mutate(t, `"Mijn pakket is nog steeds niet bezorgd 😤"`, `"`+long+`"`), "text"},
		{"text not a string", mutate(t, `"Mijn pakket is nog steeds niet bezorgd 😤"`, `42`), "text"},
		{"bad timestamp", mutate(t, `"2024-05-01T09:30:00+02:00"`, `"01-05-2024 09:30"`), "occurred_at"},
		{"timestamp without zone", mutate(t, `"2024-05-01T09:30:00+02:00"`, `"2024-05-01T09:30:00"`), "occurred_at"},
		{"missing brand id", mutate(t, `"id": "site-1", `, ``), "brand.id"},
		{"bad attachment type", mutate(t, `"type": "image"`, `"type": "hologram"`), "attachments[0].type"},
		{"status on message", mutate(t, `"kind": "message",`, `"kind": "message", "status": "read",`), "status"},
		{"status event without status", mutate(t, `"kind": "message"`, `"kind": "status"`), "status"},
		{"bad status", mutate(t, `"kind": "message",`, `"kind": "status", "status": "seen",`), "status"},
		{"not an object", []byte(`[1,2]`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.raw)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want *FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("Field = %q, want %q (message %q)", fe.Field, tt.field, fe.Message)
			}
			if fe.Message == "" {
				t.Error("Message is empty")
			}
			for _, pii := range []string{"visitor-42", "Zoë", "pakket", "sanne@", "01-05-2024", "hologram", "seen"} {
				if strings.Contains(fe.Error(), pii) {
					t.Errorf("error %q quotes payload content %q", fe.Error(), pii)
				}
			}
		})
	}
}

func TestValidateMalformedJSON(t *testing.T) {
	for _, raw := range []string{``, `{`, `{"kind":"message"} trailing`, `{"text":"Sanne` + "\x00" + `"}`, `nul`} {
		err := Validate([]byte(raw))
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("Validate(%q) = %v, want *FieldError", raw, err)
		}
		if fe.Field != "" || !strings.Contains(fe.Message, "JSON") {
			t.Errorf("Validate(%q) = %+v, want a whole-body JSON error", raw, fe)
		}
		if strings.Contains(fe.Message, "Sanne") {
			t.Errorf("message %q quotes input", fe.Message)
		}
	}
}

func TestValidateEvent(t *testing.T) {
	e := Event{
		Kind:              KindStatus,
		Channel:           ChannelWhatsApp,
		ConversationKey:   "whatsapp:1060000000:31612345678",
		Direction:         Outbound,
		Visibility:        Private,
		PlatformMessageID: "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBI=",
		Author:            Author{PlatformUserID: "1060000000"},
		OccurredAt:        time.Date(2024, 5, 1, 7, 30, 0, 0, time.UTC),
		Brand:             BrandAccount{ID: "1060000000"},
		Status:            StatusRead,
	}
	if err := ValidateEvent(e); err != nil {
		t.Fatalf("ValidateEvent(valid status) = %v", err)
	}
	zero := e
	zero.OccurredAt = time.Time{}
	assertField(t, ValidateEvent(zero), "occurred_at")
	noStatus := e
	noStatus.Status = ""
	assertField(t, ValidateEvent(noStatus), "status")
	noKind := e
	noKind.Kind = ""
	assertField(t, ValidateEvent(noKind), "kind")
	badAttachment := e
	badAttachment.Kind, badAttachment.Status = KindMessage, ""
	badAttachment.Attachments = []Attachment{{Type: "image"}, {}}
	assertField(t, ValidateEvent(badAttachment), "attachments[1].type")
}

func assertField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want *FieldError for %s", err, field)
	}
	if fe.Field != field {
		t.Fatalf("Field = %q (%s), want %q", fe.Field, fe.Message, field)
	}
}

func TestFieldPath(t *testing.T) {
	tests := map[string][]string{
		"":                        nil,
		"author.platform_user_id": {"author", "platform_user_id"},
		"attachments[2].type":     {"attachments", "2", "type"},
		"events[0].brand.id":      {"events", "0", "brand", "id"},
	}
	for want, tokens := range tests {
		if got := FieldPath(tokens); got != want {
			t.Errorf("FieldPath(%q) = %q, want %q", tokens, got, want)
		}
	}
}

func FuzzValidate(f *testing.F) {
	f.Add([]byte(validEvent))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"kind":"status","status":"read"}`))
	f.Add([]byte(`{"author":{"platform_user_id":1},"attachments":[{"type":null}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := Validate(raw)
		if err == nil {
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("Validate returned %T, want *FieldError", err)
		}
		if fe.Message == "" {
			t.Fatal("empty message")
		}
	})
}
