// Package samples holds the bundled demo conversations as real-shaped
// platform webhook payloads (X Account Activity, Messenger, Instagram,
// WhatsApp Cloud API), in Dutch and English, and the CRM contacts the demo
// seeds so that identity matching has someone to find. Bodies are unsigned:
// sign them with meta.Sign, x.Sign or generic.Sign before posting. All ids
// are fixed so tests can assert on them.
//
// Every name, address and number here is fictional; e-mail addresses use
// example domains.
package samples

import (
	"bytes"
	"encoding/json"
	"time"
)

// Brand account ids the sample payloads are addressed to.
const (
	// XBrandID is the brand's X user id (for_user_id), screen name webshop_nl.
	XBrandID = "1500000000000000001"
	// XBrandHandle is the brand's X screen name.
	XBrandHandle = "webshop_nl"
	// MessengerPageID is the brand's Facebook page id.
	MessengerPageID = "104857600000001"
	// InstagramAccountID is the brand's Instagram professional account id.
	InstagramAccountID = "17841400000000001"
	// WhatsAppPhoneNumberID is the brand's WhatsApp phone_number_id.
	WhatsAppPhoneNumberID = "106540352242922"
	// WhatsAppBusinessAccountID is the brand's WhatsApp Business Account id.
	WhatsAppBusinessAccountID = "102290129340398"
)

// Customer platform ids used in the sample payloads.
const (
	SanneXID        = "2900000000000000042"
	SanneWaID       = "31612345678"
	EmilyPSID       = "6543210987654321"
	JorisIGID       = "2233445566"
	FleurIGID       = "2233445577"
	LotteXID        = "2900000000000000055"
	PieterXID       = "2900000000000000066"
	InstagramMedia  = "18000000000000042"
	InstagramMedia2 = "18000000000000043"
)

// Payload is one webhook POST body as the platform sends it.
type Payload struct {
	// Channel is the webhook it is posted to: "x", "meta" or "generic",
	// which is also the path /webhooks/{Channel}.
	Channel string
	// Body is the unsigned JSON body.
	Body []byte
}

// Conversation is one demo conversation: the POSTs a platform would make,
// in arrival order.
type Conversation struct {
	// Name identifies the conversation, such as "x-dm-sanne-delivery".
	Name string
	// Channel is the canonical channel of its events: x, messenger,
	// instagram or whatsapp.
	Channel string
	// Payloads are the webhook bodies in arrival order.
	Payloads []Payload
}

// Customer is one CRM contact the demo seeds.
type Customer struct {
	// ExternalID is a fixed id for the contact, such as "demo-contact-001".
	ExternalID string
	// FirstName is the contact's first name.
	FirstName string
	// LastName is the contact's last name, with any prefix ("de Vries").
	LastName string
	// Email is the contact's e-mail address.
	Email string
	// Phone is the landline in E.164, such as +31301234567.
	Phone string
	// Mobile is the mobile number in E.164, such as +31612345678.
	Mobile string
	// Postcode is the postal code as written locally, such as "3511 AB".
	Postcode string
	// Street is the street and house number.
	Street string
	// City is the town.
	City string
}

// Customers returns the CRM contacts the demo seeds. Pieter and Marieke
// Jansen share one phone number (a household), so a match on that number
// alone is ambiguous. Lotte Visser's e-mail address appears only in a
// public tweet and must not be used to match her.
func Customers() []Customer {
	return []Customer{
		{ExternalID: "demo-contact-001", FirstName: "Sanne", LastName: "de Vries", Email: "sanne.devries@example.nl", Phone: "+31201234560", Mobile: "+31612345678", Postcode: "3511 AB", Street: "Oudegracht 12", City: "Utrecht"},
		{ExternalID: "demo-contact-002", FirstName: "Emily", LastName: "Clarke", Email: "emily.clarke@example.co.uk", Mobile: "+447700900123", Postcode: "SW1A 1AA", Street: "12 Baker Street", City: "London"},
		{ExternalID: "demo-contact-003", FirstName: "Joris", LastName: "Bakker", Email: "joris.bakker@example.nl", Mobile: "+31687654321", Postcode: "1012 JS", Street: "Damstraat 5", City: "Amsterdam"},
		{ExternalID: "demo-contact-004", FirstName: "Pieter", LastName: "Jansen", Email: "pieter.jansen@example.nl", Phone: "+31301234567", Mobile: "+31611111111", Postcode: "3581 KP", Street: "Biltstraat 101", City: "Utrecht"},
		{ExternalID: "demo-contact-005", FirstName: "Marieke", LastName: "Jansen", Email: "marieke.jansen@example.nl", Phone: "+31301234567", Mobile: "+31622222222", Postcode: "3581 KP", Street: "Biltstraat 101", City: "Utrecht"},
		{ExternalID: "demo-contact-006", FirstName: "Lotte", LastName: "Visser", Email: "lotte.visser@example.nl", Mobile: "+31633333333", Postcode: "9711 LM", Street: "Herestraat 8", City: "Groningen"},
		{ExternalID: "demo-contact-007", FirstName: "Chloé", LastName: "Müller", Email: "chloe.muller@example.be", Mobile: "+32470123456", Postcode: "2000", Street: "Meir 20", City: "Antwerpen"},
	}
}

// base is the start of the demo day; sample messages are offsets from it.
var base = time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }

// encode marshals v without HTML escaping, as the platforms send it.
func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("samples: cannot encode a fixed payload: " + err.Error())
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

type obj = map[string]any

// Conversations returns the demo conversations, each with its payloads in
// arrival order.
func Conversations() []Conversation {
	return []Conversation{
		xDMSanne(),
		whatsAppSanne(),
		messengerEmily(),
		instagramComments(),
		xPublicTweetWithEmail(),
		xDMHousehold(),
	}
}

var xUsers = obj{
	XBrandID:  obj{"id": XBrandID, "name": "Webshop Klantenservice", "screen_name": XBrandHandle, "protected": false, "verified": true, "followers_count": 48210, "friends_count": 120, "statuses_count": 90211, "created_timestamp": "1300000000000"},
	SanneXID:  obj{"id": SanneXID, "name": "Sanne de Vries", "screen_name": "sannedv", "protected": false, "verified": false, "followers_count": 312, "friends_count": 410, "statuses_count": 2201, "created_timestamp": "1422556069340"},
	PieterXID: obj{"id": PieterXID, "name": "Pieter Jansen", "screen_name": "pjansen", "protected": false, "verified": false, "followers_count": 18, "friends_count": 60, "statuses_count": 97, "created_timestamp": "1500000000000"},
}

func xDM(id string, minutes int, sender, recipient, text string) []byte {
	return encode(obj{
		"for_user_id": XBrandID,
		"direct_message_events": []any{obj{
			"type":              "message_create",
			"id":                id,
			"created_timestamp": itoa(at(minutes).UnixMilli()),
			"message_create": obj{
				"target":       obj{"recipient_id": recipient},
				"sender_id":    sender,
				"message_data": obj{"text": text, "entities": obj{"hashtags": []any{}, "symbols": []any{}, "user_mentions": []any{}, "urls": []any{}}},
			},
		}},
		"users": obj{sender: xUsers[sender], recipient: xUsers[recipient]},
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func xDMSanne() Conversation {
	in := func(id string, m int, text string) Payload {
		return Payload{Channel: "x", Body: xDM(id, m, SanneXID, XBrandID, text)}
	}
	out := func(id string, m int, text string) Payload {
		return Payload{Channel: "x", Body: xDM(id, m, XBrandID, SanneXID, text)}
	}
	return Conversation{Name: "x-dm-sanne-delivery", Channel: "x", Payloads: []Payload{
		in("1790000000000000101", 0, "Hoi! Mijn bestelling NL-48213 zou dinsdag bezorgd worden maar ik heb nog niks ontvangen 😕"),
		out("1790000000000000102", 4, "Hoi Sanne, wat vervelend dat je pakket nog niet binnen is! Wil je je e-mailadres sturen? Dan zoek ik je bestelling even op. ^MK"),
		in("1790000000000000103", 6, "Tuurlijk: sanne.devries@example.nl"),
		out("1790000000000000104", 9, "Dank je! Het pakket is vertraagd bij het sorteercentrum. Het wordt morgen vóór 18:00 bezorgd. Excuses voor het ongemak! ^MK"),
		in("1790000000000000105", 11, "Top, bedankt voor de snelle hulp! 🙏"),
	}}
}

func waEnvelope(value obj) []byte {
	value["messaging_product"] = "whatsapp"
	value["metadata"] = obj{"display_phone_number": "31201234567", "phone_number_id": WhatsAppPhoneNumberID}
	return encode(obj{
		"object": "whatsapp_business_account",
		"entry":  []any{obj{"id": WhatsAppBusinessAccountID, "changes": []any{obj{"value": value, "field": "messages"}}}},
	})
}

func unixString(t time.Time) string { return itoa(t.Unix()) }

func whatsAppSanne() Conversation {
	contacts := []any{obj{"profile": obj{"name": "Sanne de Vries"}, "wa_id": SanneWaID}}
	const brandReply = "wamid.HBgLMzE2MTIzNDU2NzgVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
	return Conversation{Name: "whatsapp-sanne-callback", Channel: "whatsapp", Payloads: []Payload{
		{Channel: "meta", Body: waEnvelope(obj{"contacts": contacts, "messages": []any{obj{
			"from": SanneWaID, "id": "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzRUIwMUE2QjlGNDY3QjY3MDAA", "timestamp": unixString(at(30)), "type": "text",
			"text": obj{"body": "Hallo, ik had via Twitter al contact over mijn bestelling. Kunnen jullie me even bellen? Mijn nummer is 06-12345678 ☎️"},
		}}})},
		{Channel: "meta", Body: waEnvelope(obj{"statuses": []any{
			obj{"id": brandReply, "status": "sent", "timestamp": unixString(at(33)), "recipient_id": SanneWaID, "conversation": obj{"id": "c0ffee0000000000000000000000001", "origin": obj{"type": "service"}}, "pricing": obj{"billable": true, "pricing_model": "CBP", "category": "service"}},
			obj{"id": brandReply, "status": "delivered", "timestamp": unixString(at(33)), "recipient_id": SanneWaID},
		}})},
		{Channel: "meta", Body: waEnvelope(obj{"statuses": []any{
			obj{"id": brandReply, "status": "read", "timestamp": unixString(at(34)), "recipient_id": SanneWaID},
		}})},
		{Channel: "meta", Body: waEnvelope(obj{"contacts": contacts, "messages": []any{obj{
			"from": SanneWaID, "id": "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzRUIwMUE2QjlGNDY3QjY3MDEA", "timestamp": unixString(at(36)), "type": "image",
			"context": obj{"from": "31201234567", "id": brandReply},
			"image":   obj{"caption": "Hier is de verzendbevestiging 📦 Dank jullie wel!", "mime_type": "image/jpeg", "sha256": "29ed500fa64eb55fc19dc4124acb300e5dcca0f822a301ae99944db", "id": "1003383421387256"},
		}}})},
	}}
}

func messengerPOST(minutes int, psid, mid, text string, echo bool) []byte {
	sender, recipient := psid, MessengerPageID
	msg := obj{"mid": mid, "text": text}
	if echo {
		sender, recipient = MessengerPageID, psid
		msg["is_echo"] = true
		msg["app_id"] = 263902037430900
	}
	ts := at(minutes).UnixMilli()
	return encode(obj{"object": "page", "entry": []any{obj{
		"id": MessengerPageID, "time": ts,
		"messaging": []any{obj{"sender": obj{"id": sender}, "recipient": obj{"id": recipient}, "timestamp": ts, "message": msg}},
	}}})
}

func messengerEmily() Conversation {
	p := func(m int, mid, text string, echo bool) Payload {
		return Payload{Channel: "meta", Body: messengerPOST(m, EmilyPSID, mid, text, echo)}
	}
	return Conversation{Name: "messenger-emily-refund", Channel: "messenger", Payloads: []Payload{
		p(60, "m_1BqIb9Vx2Yc3Tz4Kp5Ls6Nd7Rf8Hg9Jj0Ww1Ee2Uu3Oo4", "Hi there, I returned a jacket two weeks ago and still haven't received my refund 😕", false),
		p(63, "m_1BqIb9Vx2Yc3Tz4Kp5Ls6Nd7Rf8Hg9Jj0Ww1Ee2Uu3Oo5", "Hi Emily, so sorry about the wait! Could you send us your order number and the e-mail address you ordered with? ^JS", true),
		p(65, "m_1BqIb9Vx2Yc3Tz4Kp5Ls6Nd7Rf8Hg9Jj0Ww1Ee2Uu3Oo6", "Sure: order UK-99172, emily.clarke@example.co.uk", false),
		p(70, "m_1BqIb9Vx2Yc3Tz4Kp5Ls6Nd7Rf8Hg9Jj0Ww1Ee2Uu3Oo7", "Thanks Emily! Your refund of £59.95 was processed today, you'll see it within 3–5 working days. Have a lovely day! ^JS", true),
		p(72, "m_1BqIb9Vx2Yc3Tz4Kp5Ls6Nd7Rf8Hg9Jj0Ww1Ee2Uu3Oo8", "Brilliant, thank you so much! 🎉", false),
	}}
}

func igComment(id, parent, fromID, username, media, text string) obj {
	v := obj{"from": obj{"id": fromID, "username": username}, "media": obj{"id": media, "media_product_type": "FEED"}, "id": id, "text": text}
	if parent != "" {
		v["parent_id"] = parent
	}
	return obj{"field": "comments", "value": v}
}

func instagramComments() Conversation {
	// The first POST batches two comments in two entries; Meta batches
	// changes that arrive close together.
	first := encode(obj{"object": "instagram", "entry": []any{
		obj{"id": InstagramAccountID, "time": at(90).Unix(), "changes": []any{
			igComment("17865799348089101", "", JorisIGID, "joris.bakker", InstagramMedia, "Waarom is mijn bestelling nog steeds niet binnen? 😡 Al een week aan het wachten!"),
		}},
		obj{"id": InstagramAccountID, "time": at(91).Unix(), "changes": []any{
			igComment("17865799348089102", "", FleurIGID, "fleur.maes", InstagramMedia, "Zelfde probleem hier… 🙄"),
		}},
	}})
	reply := encode(obj{"object": "instagram", "entry": []any{
		obj{"id": InstagramAccountID, "time": at(95).Unix(), "changes": []any{
			igComment("17865799348089103", "17865799348089101", InstagramAccountID, "webshop.nl", InstagramMedia, "@joris.bakker Wat vervelend! Stuur je ons even een DM met je ordernummer? Dan zoeken we het meteen uit. ^LB"),
		}},
	}})
	return Conversation{Name: "instagram-comment-thread", Channel: "instagram", Payloads: []Payload{
		{Channel: "meta", Body: first},
		{Channel: "meta", Body: reply},
	}}
}

func tweet(id, replyTo string, minutes int, userID, name, screen, text string) obj {
	t := obj{
		"created_at": at(minutes).Format("Mon Jan 02 15:04:05 -0700 2006"), "id": json.Number(id), "id_str": id,
		"text": text, "truncated": false, "source": `<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>`,
		"in_reply_to_status_id": nil, "in_reply_to_status_id_str": nil,
		"user":     obj{"id": json.Number(userID), "id_str": userID, "name": name, "screen_name": screen},
		"entities": obj{"hashtags": []any{}, "urls": []any{}, "user_mentions": []any{}, "symbols": []any{}},
		"lang":     "nl", "timestamp_ms": itoa(at(minutes).UnixMilli()),
	}
	if replyTo != "" {
		t["in_reply_to_status_id"] = json.Number(replyTo)
		t["in_reply_to_status_id_str"] = replyTo
	}
	return t
}

func xPublicTweetWithEmail() Conversation {
	mention := encode(obj{"for_user_id": XBrandID, "user_has_blocked": false, "tweet_create_events": []any{
		tweet("1785000000000000201", "", 120, LotteXID, "Lotte Visser", "lottevisser", "@webshop_nl mijn retour is na 3 weken nog steeds niet verwerkt 😤 mail me maar op lotte.visser@example.nl"),
	}})
	reply := encode(obj{"for_user_id": XBrandID, "tweet_create_events": []any{
		tweet("1785000000000000202", "1785000000000000201", 126, XBrandID, "Webshop Klantenservice", XBrandHandle, "@lottevisser Wat vervelend, Lotte! Deel je gegevens liever niet openbaar. Stuur je ons een DM? Dan kijken we met je mee. ^MK"),
	}})
	return Conversation{Name: "x-public-tweet-email", Channel: "x", Payloads: []Payload{
		{Channel: "x", Body: mention},
		{Channel: "x", Body: reply},
	}}
}

func xDMHousehold() Conversation {
	return Conversation{Name: "x-dm-household-phone", Channel: "x", Payloads: []Payload{
		{Channel: "x", Body: xDM("1790000000000000301", 150, PieterXID, XBrandID, "Goedemiddag, onze wasmachine is beschadigd geleverd. U kunt ons bereiken op 030-1234567.")},
		{Channel: "x", Body: xDM("1790000000000000302", 155, XBrandID, PieterXID, "Dank u wel voor uw bericht, en excuses! We bellen u vandaag nog om een nieuwe levering in te plannen. ^AK")},
	}}
}
