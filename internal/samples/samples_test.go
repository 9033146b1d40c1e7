package samples

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
	"github.com/webcaresync/webcaresync/schemas"
)

const secret = "demo-secret"

func channelFor(t *testing.T, name string) (channels.Channel, func([]byte) (string, string)) {
	t.Helper()
	switch name {
	case "meta":
		return meta.New(secret, "tok"), func(b []byte) (string, string) { return meta.SignatureHeader, meta.Sign(secret, b) }
	case "x":
		return x.New(secret), func(b []byte) (string, string) { return x.SignatureHeader, x.Sign(secret, b) }
	}
	t.Fatalf("unknown payload channel %q", name)
	return nil, nil
}

// parseAll signs, verifies and parses every payload of c.
func parseAll(t *testing.T, c Conversation) []schemas.Event {
	t.Helper()
	var all []schemas.Event
	for i, p := range c.Payloads {
		ch, sign := channelFor(t, p.Channel)
		r := httptest.NewRequest("POST", "/webhooks/"+ch.Name(), nil)
		h, v := sign(p.Body)
		r.Header.Set(h, v)
		if err := ch.Verify(r, p.Body); err != nil {
			t.Fatalf("%s payload %d: Verify: %v", c.Name, i, err)
		}
		events, err := ch.Parse(p.Body)
		if err != nil {
			t.Fatalf("%s payload %d: Parse: %v", c.Name, i, err)
		}
		for _, e := range events {
			if string(e.Channel) != c.Channel {
				t.Errorf("%s: event channel %s, want %s", c.Name, e.Channel, c.Channel)
			}
			if err := schemas.ValidateEvent(e); err != nil {
				t.Errorf("%s: invalid event: %v", c.Name, err)
			}
		}
		all = append(all, events...)
	}
	return all
}

func TestEverySamplePayloadParses(t *testing.T) {
	wantEvents := map[string]int{
		"x-dm-sanne-delivery":      5,
		"whatsapp-sanne-callback":  5,
		"messenger-emily-refund":   5,
		"instagram-comment-thread": 3,
		"x-public-tweet-email":     2,
		"x-dm-household-phone":     2,
	}
	convs := Conversations()
	if len(convs) != len(wantEvents) {
		t.Fatalf("got %d conversations, want %d", len(convs), len(wantEvents))
	}
	var text strings.Builder
	for _, c := range convs {
		events := parseAll(t, c)
		if n, ok := wantEvents[c.Name]; !ok || len(events) != n {
			t.Errorf("%s: %d events, want %d", c.Name, len(events), n)
		}
		keys := map[string]bool{}
		var last time.Time
		for _, e := range events {
			keys[e.ConversationKey] = true
			text.WriteString(e.Text)
			if e.OccurredAt.Before(last) {
				t.Errorf("%s: events not in arrival order", c.Name)
			}
			last = e.OccurredAt
		}
		if len(keys) != 1 {
			t.Errorf("%s: %d conversation keys, want one conversation: %v", c.Name, len(keys), keys)
		}
	}
	all := text.String()
	for _, want := range []string{"😕", "🙏", "vóór", "📦"} {
		if !strings.Contains(all, want) {
			t.Errorf("sample text lacks %q", want)
		}
	}
}

func TestSampleScenarios(t *testing.T) {
	byName := map[string][]schemas.Event{}
	for _, c := range Conversations() {
		byName[c.Name] = parseAll(t, c)
	}
	dm := byName["x-dm-sanne-delivery"]
	if dm[0].ConversationKey != "x:dm:"+XBrandID+":"+SanneXID || dm[0].Author.DisplayName != "Sanne de Vries" || dm[0].Visibility != schemas.Private {
		t.Errorf("Sanne's first DM = %+v", dm[0])
	}
	if dm[1].Direction != schemas.Outbound || dm[1].AgentID != "MK" || !strings.Contains(dm[2].Text, "sanne.devries@example.nl") {
		t.Errorf("Sanne DM flow = %+v", dm[1:3])
	}
	wa := byName["whatsapp-sanne-callback"]
	if wa[0].ConversationKey != "whatsapp:"+WhatsAppPhoneNumberID+":"+SanneWaID || !strings.Contains(wa[0].Text, "06-12345678") || wa[0].Author.DisplayName != "Sanne de Vries" {
		t.Errorf("WhatsApp first = %+v", wa[0])
	}
	statuses := 0
	for _, e := range wa {
		if e.Kind == schemas.KindStatus {
			statuses++
		}
	}
	if statuses != 3 || wa[4].ReplyToID == "" || len(wa[4].Attachments) != 1 {
		t.Errorf("WhatsApp statuses = %d, image = %+v", statuses, wa[4])
	}
	pub := byName["x-public-tweet-email"]
	if pub[0].Visibility != schemas.Public || !strings.Contains(pub[0].Text, "lotte.visser@example.nl") || pub[1].ReplyToID != pub[0].PlatformMessageID {
		t.Errorf("public tweet = %+v", pub)
	}
	ig := byName["instagram-comment-thread"]
	if ig[2].Direction != schemas.Outbound || ig[2].ConversationKey != "instagram:thread:"+InstagramMedia {
		t.Errorf("Instagram reply = %+v", ig[2])
	}
	hh := byName["x-dm-household-phone"]
	if !strings.Contains(hh[0].Text, "030-1234567") {
		t.Errorf("household DM = %+v", hh[0])
	}
}

func TestCustomers(t *testing.T) {
	cs := Customers()
	phones := map[string][]string{}
	ids := map[string]bool{}
	for _, c := range cs {
		if ids[c.ExternalID] {
			t.Errorf("duplicate id %s", c.ExternalID)
		}
		ids[c.ExternalID] = true
		for _, p := range []string{c.Phone, c.Mobile} {
			if p == "" {
				continue
			}
			if !strings.HasPrefix(p, "+") || len(p) < 10 {
				t.Errorf("%s: %q is not E.164", c.ExternalID, p)
			}
			phones[p] = append(phones[p], c.ExternalID)
		}
		if c.FirstName == "" || c.LastName == "" || !strings.Contains(c.Email, "@example.") {
			t.Errorf("incomplete or non-example contact %+v", c)
		}
	}
	if got := phones["+31301234567"]; len(got) != 2 {
		t.Errorf("household phone shared by %v, want two contacts", got)
	}
	if phones["+31612345678"] == nil {
		t.Error("Sanne's mobile from the WhatsApp sample is not seeded")
	}
	accented := false
	for _, c := range cs {
		if utf8.RuneCountInString(c.FirstName+c.LastName) != len(c.FirstName+c.LastName) {
			accented = true
		}
	}
	if !accented {
		t.Error("no contact with an accented name")
	}
}
