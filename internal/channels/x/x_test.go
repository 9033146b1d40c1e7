package x

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/schemas"
)

const testSecret = "x-consumer-secret-0000000000000000000000000000"

// dmBatch is an Account Activity POST with an inbound DM (with a photo), the
// brand's reply, and a typing event that is not a message. users sits at
// the top level.
const dmBatch = `{"for_user_id":"1500000000000000001","direct_message_events":[{"type":"message_create","id":"1790000000000000001","created_timestamp":"1714557000123","message_create":{"target":{"recipient_id":"1500000000000000001"},"sender_id":"2900000000000000042","message_data":{"text":"Mijn pakket is al 5 dagen onderweg… 😩 https://t.co/abc","entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[{"url":"https://t.co/abc","expanded_url":"https://twitter.com/messages/media/1790000000000000001","display_url":"pic.twitter.com/abc","indices":[42,65]}]},"attachment":{"type":"media","media":{"id":1790000000000000099,"id_str":"1790000000000000099","media_url_https":"https://ton.twitter.com/1.1/ton/data/dm/1790000000000000001/1790000000000000099/AbC.jpg","type":"photo"}}}}},{"type":"message_create","id":"1790000000000000002","created_timestamp":"1714557060000","message_create":{"target":{"recipient_id":"2900000000000000042"},"sender_id":"1500000000000000001","source_app_id":"268278","message_data":{"text":"Wat vervelend, Sanne! Mag ik je e-mailadres? ^MK","entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[]}}}}],"users":{"2900000000000000042":{"id":"2900000000000000042","created_timestamp":"1422556069340","name":"Sanne de Vries","screen_name":"sannedv","protected":false,"verified":false,"followers_count":120,"friends_count":300,"statuses_count":1500},"1500000000000000001":{"id":"1500000000000000001","created_timestamp":"1300000000000","name":"Webshop Klantenservice","screen_name":"webshop_nl","protected":false,"verified":true}},"apps":{"268278":{"id":"268278","name":"Twitter Web Client","url":"http://twitter.com"}}}`

// dmMisnested puts users inside apps, as the Account Activity data objects
// documentation's direct message example does.
const dmMisnested = `{"for_user_id":"1500000000000000001","direct_message_events":[{"type":"message_create","id":"1790000000000000003","created_timestamp":"1714557120000","message_create":{"target":{"recipient_id":"1500000000000000001"},"sender_id":"2900000000000000042","message_data":{"text":"sanne.devries@example.nl 📧","entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[]}}}}],"apps":{"268278":{"id":"268278","name":"Twitter Web Client","url":"http://twitter.com"},"users":{"2900000000000000042":{"id":"2900000000000000042","name":"Sanne de Vries","screen_name":"sannedv"}}}}`

// tweetBatch is a mention, the brand's reply to it and a reply to that reply,
// plus a retweet that is skipped; the long tweet is truncated with
// extended_tweet.
const tweetBatch = `{"for_user_id":"1500000000000000001","user_has_blocked":false,"tweet_create_events":[{"created_at":"Wed May 01 10:00:00 +0000 2024","id":1785000000000000001,"id_str":"1785000000000000001","text":"@webshop_nl waar blijft mijn bestelling?! Al een week wachten op mijn crème… https://t.co/xyz","truncated":true,"in_reply_to_status_id":null,"in_reply_to_status_id_str":null,"user":{"id":2900000000000000077,"id_str":"2900000000000000077","name":"Joris Bakker","screen_name":"jorisb"},"extended_tweet":{"full_text":"@webshop_nl waar blijft mijn bestelling?! Al een week wachten op mijn crème brûlée-set 😤 #klantenservice","display_text_range":[12,104],"entities":{"hashtags":[{"text":"klantenservice","indices":[92,107]}],"urls":[],"user_mentions":[],"symbols":[]},"extended_entities":{"media":[{"id_str":"1785000000000000900","media_url_https":"https://pbs.twimg.com/media/Abc.jpg","type":"photo"}]}},"timestamp_ms":"1714557600000"},{"created_at":"Wed May 01 10:05:00 +0000 2024","id_str":"1785000000000000002","text":"@jorisb Dat is balen! Stuur je ons even een DM? ^LB","truncated":false,"in_reply_to_status_id_str":"1785000000000000001","user":{"id_str":"1500000000000000001","name":"Webshop Klantenservice","screen_name":"webshop_nl"},"timestamp_ms":"1714557900000"},{"created_at":"Wed May 01 10:07:00 +0000 2024","id_str":"1785000000000000003","text":"@webshop_nl gedaan 👍","truncated":false,"in_reply_to_status_id_str":"1785000000000000002","user":{"id_str":"2900000000000000077","name":"Joris Bakker","screen_name":"jorisb"}},{"created_at":"Wed May 01 10:08:00 +0000 2024","id_str":"1785000000000000004","text":"RT @jorisb: waar blijft...","user":{"id_str":"2900000000000000078","screen_name":"iemand"},"retweeted_status":{"id_str":"1785000000000000001"},"timestamp_ms":"1714558080000"}]}`

// TestCRCPublishedExample is X's published CRC example: consumer secret
// z3ZX4v7m... and crc_token 9b4507b3-... give this response_token.
func TestCRCPublishedExample(t *testing.T) {
	const (
		secret = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"
		token  = "9b4507b3-9040-4669-9ca3-6b94edb50553"
		want   = "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="
	)
	if got := CRCResponse(secret, token); got != want {
		t.Fatalf("CRCResponse = %s, want %s", got, want)
	}
	w := httptest.NewRecorder()
	New(secret).Handshake(w, httptest.NewRequest(http.MethodGet, "/webhooks/x?crc_token="+token+"&nonce=1", nil))
	if w.Code != 200 {
		t.Fatalf("code = %d", w.Code)
	}
	var resp map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp["response_token"] != want || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("response = %v (%s)", resp, w.Header().Get("Content-Type"))
	}
	w = httptest.NewRecorder()
	New(secret).Handshake(w, httptest.NewRequest(http.MethodGet, "/webhooks/x", nil))
	if w.Code != 400 {
		t.Fatalf("missing crc_token: code = %d, want 400", w.Code)
	}
}

func request(header string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/x", nil)
	if header != "" {
		r.Header.Set("x-twitter-webhooks-signature", header)
	}
	return r
}

func TestVerify(t *testing.T) {
	c := New(testSecret)
	body := []byte(dmBatch)
	// Computed with: printf '%s' '{"for_user_id":"1"}' | openssl dgst -sha256 -hmac x-consumer-secret-0000000000000000000000000000 -binary | base64
	const vectorBody, vectorSig = `{"for_user_id":"1"}`, "sha256=uNC4JqSmcPgeiuC+j/6V8iwuJlhoTr00Bq1+uHQTE9g="
	tests := []struct {
		name   string
		body   []byte
		header string
		ok     bool
	}{
		{"signed", body, Sign(testSecret, body), true},
		{"openssl vector", []byte(vectorBody), vectorSig, true},
		{"wrong secret", body, Sign("other", body), false},
		{"tampered", []byte(strings.Replace(dmBatch, "Sanne", "Sannë", 1)), Sign(testSecret, body), false},
		{"missing", body, "", false},
		{"no prefix", body, strings.TrimPrefix(Sign(testSecret, body), "sha256="), false},
		{"hex instead of base64", body, "sha256=" + strings.Repeat("ab", 32), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Verify(request(tt.header), tt.body)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if !tt.ok && !errors.Is(err, channels.ErrUnauthorized) {
				t.Fatalf("Verify = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestParseDMs(t *testing.T) {
	events, err := New(testSecret).Parse([]byte(dmBatch))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("got %d events, want 2", len(events))
	}
	in, out := events[0], events[1]
	if in.ConversationKey != "x:dm:1500000000000000001:2900000000000000042" || in.Direction != schemas.Inbound || in.Visibility != schemas.Private ||
		in.Author != (schemas.Author{PlatformUserID: "2900000000000000042", Handle: "sannedv", DisplayName: "Sanne de Vries"}) ||
		in.Brand != (schemas.BrandAccount{ID: "1500000000000000001", Handle: "webshop_nl"}) ||
		!in.OccurredAt.Equal(time.UnixMilli(1714557000123)) || in.OccurredAt.Location() != time.UTC ||
		in.Text != "Mijn pakket is al 5 dagen onderweg… 😩 https://t.co/abc" {
		t.Errorf("inbound = %+v", in)
	}
	if len(in.Attachments) != 1 || in.Attachments[0].Type != "image" || in.Attachments[0].ID != "1790000000000000099" {
		t.Errorf("attachments = %+v", in.Attachments)
	}
	if out.Direction != schemas.Outbound || out.ConversationKey != in.ConversationKey || out.AgentID != "MK" || out.Author.Handle != "webshop_nl" {
		t.Errorf("outbound = %+v", out)
	}
}

func TestParseUsersNestedUnderApps(t *testing.T) {
	events, err := New(testSecret).Parse([]byte(dmMisnested))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Author.Handle != "sannedv" || events[0].Author.DisplayName != "Sanne de Vries" {
		t.Fatalf("events = %+v, want author from apps.users", events)
	}
}

func TestParseTweets(t *testing.T) {
	events, err := New(testSecret).Parse([]byte(tweetBatch))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3 (retweet skipped)", len(events))
	}
	mention, reply, reply2 := events[0], events[1], events[2]
	if mention.ConversationKey != "x:thread:1785000000000000001" || mention.Visibility != schemas.Public || mention.Direction != schemas.Inbound ||
		mention.Text != "@webshop_nl waar blijft mijn bestelling?! Al een week wachten op mijn crème brûlée-set 😤 #klantenservice" ||
		!mention.OccurredAt.Equal(time.UnixMilli(1714557600000)) || len(mention.Attachments) != 1 || mention.ReplyToID != "" {
		t.Errorf("mention = %+v", mention)
	}
	if reply.Direction != schemas.Outbound || reply.ReplyToID != "1785000000000000001" || reply.ConversationKey != mention.ConversationKey || reply.AgentID != "LB" {
		t.Errorf("brand reply = %+v", reply)
	}
	if reply2.ConversationKey != mention.ConversationKey || reply2.ReplyToID != "1785000000000000002" {
		t.Errorf("reply to reply = %+v, want the root thread", reply2)
	}
	if want := time.Date(2024, 5, 1, 10, 7, 0, 0, time.UTC); !reply2.OccurredAt.Equal(want) {
		t.Errorf("created_at fallback = %v, want %v", reply2.OccurredAt, want)
	}
}

func TestParseErrors(t *testing.T) {
	c := New(testSecret)
	tests := []struct{ name, body, field string }{
		{"malformed", `{"for_user_id":`, ""},
		{"no for_user_id", `{"direct_message_events":[]}`, "for_user_id"},
		{"dm without sender", `{"for_user_id":"1","direct_message_events":[{"type":"message_create","id":"5","created_timestamp":"1714557000000","message_create":{"target":{"recipient_id":"1"},"message_data":{"text":"Sanne"}}}]}`, "direct_message_events[0].message_create.sender_id"},
		{"dm bad time", `{"for_user_id":"1","direct_message_events":[{"type":"message_create","id":"5","created_timestamp":"gisteren","message_create":{"sender_id":"2","target":{"recipient_id":"1"},"message_data":{"text":"Sanne"}}}]}`, "direct_message_events[0].created_timestamp"},
		{"tweet without user", `{"for_user_id":"1","tweet_create_events":[{"id_str":"9","text":"Sanne","created_at":"Wed May 01 10:07:00 +0000 2024"}]}`, "tweet_create_events[0].user.id_str"},
		{"tweet bad time", `{"for_user_id":"1","tweet_create_events":[{"id_str":"9","text":"Sanne","created_at":"gisteren","user":{"id_str":"2"}}]}`, "tweet_create_events[0].created_at"},
		{"users wrong type", `{"for_user_id":"1","users":[]}`, "users"},
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
			if strings.Contains(br.Error(), "Sanne") || strings.Contains(br.Error(), "gisteren") {
				t.Errorf("error %q quotes payload", br.Error())
			}
		})
	}
}

func FuzzXParse(f *testing.F) {
	for _, s := range []string{dmBatch, dmMisnested, tweetBatch, `{"for_user_id":1}`, `{"for_user_id":"1","tweet_create_events":[{"id_str":"2","in_reply_to_status_id_str":"2","user":{"id_str":"3"},"timestamp_ms":"1"}]}`} {
		f.Add([]byte(s))
	}
	c := New(testSecret)
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
				t.Fatalf("invalid event: %v", err)
			}
		}
	})
}
