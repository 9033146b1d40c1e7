package meta

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/schemas"
)

const (
	testSecret = "a3f1c0de5ecret0fmetaapp00000001"
	testToken  = "wcs-verify-token"
)

// messengerBatch is a Messenger POST carrying two entries: an inbound text
// with emoji and accents, an echo (the page's agent reply), a read receipt
// that is not a message, and a standby message with an image and a reply.
const messengerBatch = `{"object":"page","entry":[{"id":"104857600000001","time":1714555800123,"messaging":[{"sender":{"id":"6543210987654321"},"recipient":{"id":"104857600000001"},"timestamp":1714555800000,"message":{"mid":"m_AbCdEf-in-1","text":"Hi! My order still hasn't arrived 😞 café crème mug"}},{"sender":{"id":"104857600000001"},"recipient":{"id":"6543210987654321"},"timestamp":1714555860000,"message":{"mid":"m_AbCdEf-echo-1","is_echo":true,"app_id":1517776481860111,"text":"So sorry to hear that! Could you DM us your order number? ^MK"}},{"sender":{"id":"6543210987654321"},"recipient":{"id":"104857600000001"},"timestamp":1714555870000,"read":{"watermark":1714555860000}}]},{"id":"104857600000001","time":1714555900000,"standby":[{"sender":{"id":"6543210987654321"},"recipient":{"id":"104857600000001"},"timestamp":1714555900000,"message":{"mid":"m_AbCdEf-in-2","text":"Here's the label","reply_to":{"mid":"m_AbCdEf-echo-1"},"attachments":[{"type":"image","payload":{"url":"https:\/\/scontent.xx.fbcdn.net\/v\/label.jpg"}},{"type":"image","payload":{"url":"https:\/\/scontent.xx.fbcdn.net\/v\/thumb.png","sticker_id":369239263222822}}]}}]}]}`

// instagramDMAndComments has an Instagram DM with a seconds timestamp, and
// comment changes on one media: a customer comment and the brand's reply.
const instagramDMAndComments = `{"object":"instagram","entry":[{"id":"17841400000000001","time":1714556000,"messaging":[{"sender":{"id":"1122334455667788"},"recipient":{"id":"17841400000000001"},"timestamp":1714556000,"message":{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx","text":"Wanneer is de actie weer geldig? 🙏"}}]},{"id":"17841400000000001","time":1714556100,"changes":[{"field":"comments","value":{"from":{"id":"2233445566","username":"joris.bakker"},"media":{"id":"18000000000000042","media_product_type":"FEED"},"id":"17865799348089039","text":"Waarom is mijn bestelling nog niet binnen? 😡"}},{"field":"comments","value":{"from":{"id":"17841400000000001","username":"webshop.nl"},"media":{"id":"18000000000000042","media_product_type":"FEED"},"id":"17865799348089040","parent_id":"17865799348089039","text":"Vervelend! Stuur je ons een DM met je ordernummer? ^LB"}},{"field":"mentions","value":{"media_id":"18000000000000043","comment_id":"17865799348089041"}}]}]}`

// whatsappBatch has an inbound text (with profile name, accents and a
// context reply), an image with caption, and statuses for a brand message.
const whatsappBatch = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"31201234567","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sanne de Vries"},"wa_id":"31612345678"}],"messages":[{"from":"31612345678","id":"wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQTdCRjE2MDc1","timestamp":"1714556400","text":{"body":"Hoi! Mijn nummer is 06-12345678, groetjes 😊 ü"},"type":"text","context":{"from":"31201234567","id":"wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBRTE="}},{"from":"31612345678","id":"wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQTdCRjE2MDc2","timestamp":"1714556460","type":"image","image":{"caption":"Foto van de doos","mime_type":"image/jpeg","sha256":"abc","id":"1234567890123456"}}]},"field":"messages"},{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"31201234567","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBRTE=","status":"delivered","timestamp":"1714556300","recipient_id":"31612345678","conversation":{"id":"abc","origin":{"type":"service"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"service"}},{"id":"wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBRTE=","status":"read","timestamp":"1714556350","recipient_id":"31612345678"},{"id":"wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBRTE=","status":"deleted","timestamp":"1714556360","recipient_id":"31612345678"}]},"field":"messages"}]}]}`

func TestHandshake(t *testing.T) {
	c := New(testSecret, testToken)
	tests := []struct {
		name, query string
		code        int
		body        string
	}{
		{"ok", "hub.mode=subscribe&hub.verify_token=" + testToken + "&hub.challenge=1158201444", 200, "1158201444"},
		{"wrong token", "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1158201444", 403, ""},
		{"wrong mode", "hub.mode=unsubscribe&hub.verify_token=" + testToken + "&hub.challenge=1", 403, ""},
		{"no token", "hub.mode=subscribe&hub.challenge=1", 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c.Handshake(w, httptest.NewRequest(http.MethodGet, "/webhooks/meta?"+tt.query, nil))
			if w.Code != tt.code {
				t.Fatalf("code = %d, want %d", w.Code, tt.code)
			}
			if tt.code == 200 && w.Body.String() != tt.body {
				t.Fatalf("body = %q, want %q", w.Body.String(), tt.body)
			}
		})
	}
	w := httptest.NewRecorder()
	New(testSecret, "").Handshake(w, httptest.NewRequest(http.MethodGet, "/webhooks/meta?hub.mode=subscribe&hub.verify_token=&hub.challenge=1", nil))
	if w.Code != 403 {
		t.Fatalf("empty configured token: code = %d, want 403", w.Code)
	}
}

// TestEscapeNonASCIIPublishedCase is Meta's published example: "äöå" is
// signed as "\u00e4\u00f6\u00e5" (lowercase hex).
func TestEscapeNonASCIIPublishedCase(t *testing.T) {
	tests := map[string]string{
		"äöå":              `\u00e4\u00f6\u00e5`,
		`{"text":"café"}`:  `{"text":"caf\u00e9"}`,
		"😀":                `\ud83d\ude00`,
		"€ ü ÿ":            `\u20ac \u00fc \u00ff`,
		`plain \/ ascii\n`: `plain \/ ascii\n`,
		"\xff":             `\ufffd`,
		"Zoë 👍🏽":           `Zo\u00eb \ud83d\udc4d\ud83c\udffd`,
	}
	for in, want := range tests {
		if got := string(EscapeNonASCII([]byte(in))); got != want {
			t.Errorf("EscapeNonASCII(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerifyVectors are fixed vectors computed independently with
// printf '%s' FORM | openssl dgst -sha256 -hmac my_app_secret, where FORM is
// the escaped form Meta signs. The bodies arrive with raw UTF-8, so only
// the escaped-form check can accept them; the last vector is the HMAC of
// the raw bytes, which must also be accepted.
func TestVerifyVectors(t *testing.T) {
	tests := []struct {
		name, body, hexSig string
	}{
		{"published äöå case", `{"text":"äöå"}`, "40a2372464abcac593143f74d555a83a49487161a1d2cfed901440188982234d"},
		{"emoji as surrogate pair", `{"text":"😀 café"}`, "8ac6d60329926f632177a781583cb73abcc24f8e617f941cfcc3b903e60370d7"},
		{"raw bytes", `{"text":"äöå"}`, "5cfa0161b2efef34151567dec4654407199be2534e647c220f2809f55b0accd4"},
	}
	c := New("my_app_secret", testToken)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.Verify(request("sha256="+tt.hexSig), []byte(tt.body)); err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
		})
	}
	if got := Sign("my_app_secret", []byte(`{"text":"äöå"}`)); got != "sha256="+tests[0].hexSig {
		t.Errorf("Sign = %s, want the published-case vector", got)
	}
}

func request(header string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/meta", nil)
	if header != "" {
		r.Header.Set(SignatureHeader, header)
	}
	return r
}

func TestVerify(t *testing.T) {
	c := New(testSecret, testToken)
	body := []byte(`{"object":"page","entry":[{"messaging":[{"message":{"text":"Dank je wel! 😊 één café"}}]}]}`)
	ascii := []byte(`{"object":"page","entry":[]}`)
	tests := []struct {
		name   string
		body   []byte
		header string
		ok     bool
	}{
		{"escaped form (as Meta signs)", body, Sign(testSecret, body), true},
		{"raw form", body, SignRaw(testSecret, body), true},
		{"uppercase hex", body, "sha256=" + strings.ToUpper(strings.TrimPrefix(Sign(testSecret, body), "sha256=")), true},
		{"ascii body", ascii, Sign(testSecret, ascii), true},
		{"legacy slash escapes", []byte(`{"u":"https://x/é"}`), "sha256=" + hexMAC(testSecret, `{"u":"https:\/\/x\/\u00e9"}`), true},
		{"wrong secret", body, Sign("other", body), false},
		{"tampered body", []byte(strings.Replace(string(body), "één", "een", 1)), Sign(testSecret, body), false},
		{"missing header", body, "", false},
		{"sha1 header", body, "sha1=0123", false},
		{"not hex", body, "sha256=zz", false},
		{"short", body, "sha256=abcd", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Verify(request(tt.header), tt.body)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, channels.ErrUnauthorized) {
				t.Fatalf("Verify = %v, want ErrUnauthorized", err)
			}
		})
	}
	if err := New("", testToken).Verify(request(Sign("", body)), body); !errors.Is(err, channels.ErrUnauthorized) {
		t.Fatalf("empty secret: Verify = %v, want ErrUnauthorized", err)
	}
}

func hexMAC(secret, msg string) string {
	return strings.TrimPrefix(SignRaw(secret, []byte(msg)), "sha256=")
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestParseMessenger(t *testing.T) {
	events, err := New(testSecret, testToken).Parse([]byte(messengerBatch))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3 (read receipt skipped): %+v", len(events), events)
	}
	in, echo, standby := events[0], events[1], events[2]
	want := schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelMessenger,
		ConversationKey: "messenger:104857600000001:6543210987654321",
		Direction:       schemas.Inbound, Visibility: schemas.Private,
		PlatformMessageID: "m_AbCdEf-in-1",
		Author:            schemas.Author{PlatformUserID: "6543210987654321"},
		Text:              "Hi! My order still hasn't arrived 😞 café crème mug",
		OccurredAt:        ms(1714555800000),
		Brand:             schemas.BrandAccount{ID: "104857600000001"},
	}
	assertEvent(t, in, want)
	if echo.Direction != schemas.Outbound || echo.ConversationKey != want.ConversationKey || echo.Author.PlatformUserID != "104857600000001" || echo.AgentID != "MK" {
		t.Errorf("echo = %+v, want outbound in the same conversation by the page, agent MK", echo)
	}
	if standby.ReplyToID != "m_AbCdEf-echo-1" || len(standby.Attachments) != 2 {
		t.Fatalf("standby = %+v, want reply to echo with 2 attachments", standby)
	}
	if a := standby.Attachments[0]; a.Type != "image" || a.URL != "https://scontent.xx.fbcdn.net/v/label.jpg" {
		t.Errorf("attachment 0 = %+v", a)
	}
	if a := standby.Attachments[1]; a.Type != "sticker" || a.ID != "369239263222822" {
		t.Errorf("attachment 1 = %+v, want sticker", a)
	}
}

func TestParseInstagram(t *testing.T) {
	events, err := New(testSecret, testToken).Parse([]byte(instagramDMAndComments))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(events) != 4 {
		t.Fatalf("got %d events, want 4: %+v", len(events), events)
	}
	dm, comment, reply, mention := events[0], events[1], events[2], events[3]
	assertEvent(t, dm, schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelInstagram,
		ConversationKey: "instagram:17841400000000001:1122334455667788",
		Direction:       schemas.Inbound, Visibility: schemas.Private,
		PlatformMessageID: "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx",
		Author:            schemas.Author{PlatformUserID: "1122334455667788"},
		Text:              "Wanneer is de actie weer geldig? 🙏",
		OccurredAt:        time.Unix(1714556000, 0).UTC(),
		Brand:             schemas.BrandAccount{ID: "17841400000000001"},
	})
	assertEvent(t, comment, schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelInstagram,
		ConversationKey: "instagram:thread:18000000000000042",
		Direction:       schemas.Inbound, Visibility: schemas.Public,
		PlatformMessageID: "17865799348089039",
		Author:            schemas.Author{PlatformUserID: "2233445566", Handle: "joris.bakker"},
		Text:              "Waarom is mijn bestelling nog niet binnen? 😡",
		OccurredAt:        time.Unix(1714556100, 0).UTC(),
		Brand:             schemas.BrandAccount{ID: "17841400000000001"},
	})
	if reply.Direction != schemas.Outbound || reply.ReplyToID != "17865799348089039" || reply.ConversationKey != comment.ConversationKey || reply.AgentID != "LB" {
		t.Errorf("brand reply = %+v", reply)
	}
	if mention.ConversationKey != "instagram:thread:18000000000000043" || mention.Visibility != schemas.Public || mention.PlatformMessageID != "17865799348089041" {
		t.Errorf("mention = %+v", mention)
	}
}

func TestParseWhatsApp(t *testing.T) {
	events, err := New(testSecret, testToken).Parse([]byte(whatsappBatch))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(events) != 4 {
		t.Fatalf("got %d events, want 4 (deleted status skipped): %+v", len(events), events)
	}
	assertEvent(t, events[0], schemas.Event{
		Kind: schemas.KindMessage, Channel: schemas.ChannelWhatsApp,
		ConversationKey: "whatsapp:106540352242922:31612345678",
		Direction:       schemas.Inbound, Visibility: schemas.Private,
		PlatformMessageID: "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQTdCRjE2MDc1",
		ReplyToID:         "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBRTE=",
		Author:            schemas.Author{PlatformUserID: "31612345678", DisplayName: "Sanne de Vries"},
		Text:              "Hoi! Mijn nummer is 06-12345678, groetjes 😊 ü",
		OccurredAt:        time.Unix(1714556400, 0).UTC(),
		Brand:             schemas.BrandAccount{ID: "106540352242922"},
	})
	img := events[1]
	if img.Text != "Foto van de doos" || len(img.Attachments) != 1 || img.Attachments[0] != (schemas.Attachment{Type: "image", ID: "1234567890123456", MimeType: "image/jpeg"}) {
		t.Errorf("image = %+v", img)
	}
	for i, want := range []string{"delivered", "read"} {
		s := events[2+i]
		if s.Kind != schemas.KindStatus || s.Status != want || s.PlatformMessageID != "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJBRTE=" || s.Direction != schemas.Outbound || s.ConversationKey != "whatsapp:106540352242922:31612345678" {
			t.Errorf("status %d = %+v, want %s", i, s, want)
		}
	}
}

func assertEvent(t *testing.T, got, want schemas.Event) {
	t.Helper()
	if !got.OccurredAt.Equal(want.OccurredAt) || got.OccurredAt.Location() != time.UTC {
		t.Errorf("OccurredAt = %v, want %v in UTC", got.OccurredAt, want.OccurredAt)
	}
	got.OccurredAt, want.OccurredAt = time.Time{}, time.Time{}
	if got.Kind != want.Kind || got.Channel != want.Channel || got.ConversationKey != want.ConversationKey ||
		got.Direction != want.Direction || got.Visibility != want.Visibility || got.PlatformMessageID != want.PlatformMessageID ||
		got.ReplyToID != want.ReplyToID || got.Author != want.Author || got.Text != want.Text || got.Brand != want.Brand ||
		got.Status != want.Status || got.AgentID != want.AgentID || len(got.Attachments) != len(want.Attachments) {
		t.Errorf("event mismatch\n got %+v\nwant %+v", got, want)
	}
}

func TestParseTimestampSecondsAndMillis(t *testing.T) {
	c := New(testSecret, testToken)
	for _, ts := range []string{"1714556000", "1714556000000"} {
		body := `{"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":` + ts + `,"message":{"mid":"m1","text":"hé"}}]}]}`
		events, err := c.Parse([]byte(body))
		if err != nil {
			t.Fatalf("Parse(%s): %v", ts, err)
		}
		if want := time.Unix(1714556000, 0).UTC(); !events[0].OccurredAt.Equal(want) {
			t.Errorf("timestamp %s parsed as %v, want %v", ts, events[0].OccurredAt, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	c := New(testSecret, testToken)
	tests := []struct {
		name, body, field string
	}{
		{"malformed JSON", `{"object":"page","entry":[`, ""},
		{"trailing garbage", `{"object":"page","entry":[]} x`, ""},
		{"unknown object", `{"object":"user","entry":[]}`, "object"},
		{"missing object", `{"entry":[]}`, "object"},
		{"entry not array", `{"object":"page","entry":{}}`, "entry"},
		{"missing mid", `{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1714556000000,"message":{"text":"Sanne"}}]}]}`, "entry[0].messaging[0].message.mid"},
		{"missing sender", `{"object":"page","entry":[{"id":"1","messaging":[{"recipient":{"id":"1"},"timestamp":1714556000000,"message":{"mid":"m","text":"Sanne"}}]}]}`, "entry[0].messaging[0].sender.id"},
		{"bad timestamp", `{"object":"page","entry":[{"id":"1","standby":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":"gisteren","message":{"mid":"m","text":"Sanne"}}]}]}`, "entry[0].standby[0].timestamp"},
		{"object id", `{"object":"page","entry":[{"id":{"a":1}}]}`, ""},
		{"text too long", `{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1714556000000,"message":{"mid":"m","text":"` + strings.Repeat("ä", schemas.MaxTextLength+1) + `"}}]}]}`, "entry[0].messaging[0].text"},
		{"whatsapp missing phone id", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"316","id":"w","timestamp":"1714556000","type":"text","text":{"body":"Sanne"}}]}}]}]}`, "entry[0].changes[0].value.metadata.phone_number_id"},
		{"whatsapp missing from", `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"9"},"messages":[{"id":"w","timestamp":"1714556000","type":"text","text":{"body":"Sanne"}}]}}]}]}`, "entry[0].changes[0].value.messages[0].from"},
		{"instagram comment without media", `{"object":"instagram","entry":[{"id":"1","time":1714556000,"changes":[{"field":"comments","value":{"from":{"id":"2"},"id":"c","text":"Sanne"}}]}]}`, "entry[0].changes[0].value.media.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Parse([]byte(tt.body))
			var br *channels.BadRequest
			if !errors.As(err, &br) {
				t.Fatalf("Parse = %v, want *BadRequest", err)
			}
			if br.Field != tt.field {
				t.Errorf("Field = %q, want %q (%s)", br.Field, tt.field, br.Message)
			}
			if strings.Contains(br.Error(), "Sanne") || strings.Contains(br.Error(), "gisteren") || strings.Contains(br.Error(), "ä") {
				t.Errorf("error %q quotes payload content", br.Error())
			}
		})
	}
}

func TestParseSkipsNonMessages(t *testing.T) {
	body := `{"object":"page","entry":[{"id":"1","time":1714556000000,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1714556000000,"delivery":{"mids":["m1"],"watermark":1714556000000}},{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1714556000000,"postback":{"title":"Start","payload":"GET_STARTED"}}]}]}`
	events, err := New(testSecret, testToken).Parse([]byte(body))
	if err != nil || len(events) != 0 {
		t.Fatalf("Parse = %v, %v; want no events and no error", events, err)
	}
}

func TestEveryParsedEventValidates(t *testing.T) {
	c := New(testSecret, testToken)
	for _, body := range []string{messengerBatch, instagramDMAndComments, whatsappBatch} {
		events, err := c.Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if err := schemas.ValidateEvent(e); err != nil {
				t.Errorf("event %s does not validate: %v", e.PlatformMessageID, err)
			}
		}
	}
}

func FuzzMetaParse(f *testing.F) {
	for _, s := range []string{messengerBatch, instagramDMAndComments, whatsappBatch, `{"object":"page"}`, `{"object":"instagram","entry":[{"changes":[{"field":"mentions","value":{}}]}]}`} {
		f.Add([]byte(s))
	}
	c := New(testSecret, testToken)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := c.Parse(body)
		if err != nil {
			var br *channels.BadRequest
			if !errors.As(err, &br) {
				t.Fatalf("Parse error %T, want *BadRequest", err)
			}
			return
		}
		for _, e := range events {
			if err := schemas.ValidateEvent(e); err != nil {
				t.Fatalf("Parse returned an invalid event: %v", err)
			}
		}
	})
}

func FuzzMetaVerify(f *testing.F) {
	for _, s := range []string{messengerBatch, instagramDMAndComments, whatsappBatch, "äöå", "😀\xff\\u00e4/<%@", `\"\\/`} {
		f.Add([]byte(s))
	}
	c := New(testSecret, testToken)
	f.Fuzz(func(t *testing.T, body []byte) {
		// What Meta signs must verify, the raw form must verify, and a
		// signature under another secret must not.
		if err := c.Verify(request(Sign(testSecret, body)), body); err != nil {
			t.Fatalf("escaped-form signature rejected: %v", err)
		}
		if err := c.Verify(request(SignRaw(testSecret, body)), body); err != nil {
			t.Fatalf("raw signature rejected: %v", err)
		}
		if err := c.Verify(request(Sign("another secret", body)), body); !errors.Is(err, channels.ErrUnauthorized) {
			t.Fatalf("foreign signature accepted")
		}
		escaped := EscapeNonASCII(body)
		for _, b := range escaped {
			if b >= 0x80 {
				t.Fatalf("escaped form still holds non-ASCII byte %#x", b)
			}
		}
	})
}

// FuzzMetaVerifyHeader feeds Verify any header with any body: it never
// panics, fails only as unauthorized, and accepts a header only when it is
// the signature of one of the forms Meta signs (hex in either case).
func FuzzMetaVerifyHeader(f *testing.F) {
	body := []byte(messengerBatch)
	f.Add(body, Sign(testSecret, body))
	f.Add(body, SignRaw(testSecret, body))
	f.Add(body, strings.ToUpper(Sign(testSecret, body)))
	f.Add([]byte("äöå"), "sha256= "+strings.TrimPrefix(Sign(testSecret, []byte("äöå")), "sha256="))
	f.Add([]byte("{}"), "sha256=")
	f.Add([]byte("{}"), "sha1=00")
	c := New(testSecret, testToken)
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := c.Verify(request(header), body)
		if err != nil {
			if !errors.Is(err, channels.ErrUnauthorized) {
				t.Fatalf("Verify failed with %v, want only unauthorized", err)
			}
			return
		}
		for _, form := range signedForms(body) {
			want := hex.EncodeToString(mac([]byte(testSecret), form))
			if hexSig, ok := strings.CutPrefix(header, "sha256="); ok && strings.EqualFold(hexSig, want) {
				return
			}
		}
		t.Fatalf("Verify accepted header %q, which is not the signature of any form of the body", header)
	})
}
