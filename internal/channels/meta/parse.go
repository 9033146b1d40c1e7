package meta

import (
	"strings"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/schemas"
)

// The object types Meta posts to one webhook.
const (
	ObjectPage      = "page"
	ObjectInstagram = "instagram"
	ObjectWhatsApp  = "whatsapp_business_account"
)

// payload is the envelope of every Meta webhook POST.
type payload struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

// entry is one batched entry: a page, Instagram account or WhatsApp
// Business Account with its events.
type entry struct {
	ID        channels.FlexString `json:"id"`
	Time      channels.FlexString `json:"time"`
	Messaging []messagingEvent    `json:"messaging"`
	Standby   []messagingEvent    `json:"standby"`
	Changes   []change            `json:"changes"`
}

// messagingEvent is one Messenger or Instagram messaging webhook event.
// Deliveries, reads, postbacks and reactions carry no message and are
// skipped.
type messagingEvent struct {
	Sender    party               `json:"sender"`
	Recipient party               `json:"recipient"`
	Timestamp channels.FlexString `json:"timestamp"`
	Message   *message            `json:"message"`
}

type party struct {
	ID channels.FlexString `json:"id"`
}

type message struct {
	MID         string              `json:"mid"`
	Text        string              `json:"text"`
	IsEcho      bool                `json:"is_echo"`
	IsDeleted   bool                `json:"is_deleted"`
	IsSelf      bool                `json:"is_self"`
	AppID       channels.FlexString `json:"app_id"`
	Attachments []attachment        `json:"attachments"`
	ReplyTo     *struct {
		MID   string `json:"mid"`
		Story *struct {
			ID string `json:"id"`
		} `json:"story"`
	} `json:"reply_to"`
}

type attachment struct {
	Type    string `json:"type"`
	Payload *struct {
		URL       string              `json:"url"`
		StickerID channels.FlexString `json:"sticker_id"`
		Title     string              `json:"title"`
	} `json:"payload"`
}

// change is one entry.changes[] item: Instagram comments and mentions,
// WhatsApp messages and statuses.
type change struct {
	Field string      `json:"field"`
	Value changeValue `json:"value"`
}

// changeValue holds the union of the fields of the change values parsed
// here; the field of the change says which apply.
type changeValue struct {
	// Instagram comments and mentions.
	ID       channels.FlexString `json:"id"`
	Text     string              `json:"text"`
	ParentID channels.FlexString `json:"parent_id"`
	From     *igUser             `json:"from"`
	Media    *struct {
		ID channels.FlexString `json:"id"`
	} `json:"media"`
	MediaID   channels.FlexString `json:"media_id"`
	CommentID channels.FlexString `json:"comment_id"`
	Timestamp channels.FlexString `json:"timestamp"`

	// WhatsApp.
	MessagingProduct string      `json:"messaging_product"`
	Metadata         *waMetadata `json:"metadata"`
	Contacts         []waContact `json:"contacts"`
	Messages         []waMessage `json:"messages"`
	Statuses         []waStatus  `json:"statuses"`
}

type igUser struct {
	ID       channels.FlexString `json:"id"`
	Username string              `json:"username"`
}

// parser accumulates the events of one body.
type parser struct {
	events []schemas.Event
}

// Parse turns a Meta webhook body into canonical events, in body order. An
// unknown object is a *channels.BadRequest for field "object". Events Meta
// sends that are not messages (deliveries, reads, postbacks, reactions on
// Messenger, other change fields) are skipped.
func (c *Channel) Parse(body []byte) ([]schemas.Event, error) {
	var p payload
	if err := channels.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	var ps parser
	var err *channels.BadRequest
	switch p.Object {
	case ObjectPage:
		err = ps.messagingEntries(p.Entry, schemas.ChannelMessenger)
	case ObjectInstagram:
		err = ps.messagingEntries(p.Entry, schemas.ChannelInstagram)
		if err == nil {
			err = ps.instagramChanges(p.Entry)
		}
	case ObjectWhatsApp:
		err = ps.whatsappEntries(p.Entry)
	case "":
		return nil, channels.Invalid("object", "is required: expected page, instagram or whatsapp_business_account")
	default:
		return nil, channels.Invalid("object", "is not a supported object: expected page, instagram or whatsapp_business_account")
	}
	if err != nil {
		return nil, err
	}
	return ps.events, nil
}

// add validates e and appends it; at names the payload location for errors.
func (ps *parser) add(at string, e schemas.Event) *channels.BadRequest {
	if err := schemas.ValidateEvent(e); err != nil {
		return channels.FromValidation(at, err)
	}
	ps.events = append(ps.events, e)
	return nil
}

// messagingEntries parses entry[].messaging[] and entry[].standby[] of
// Messenger or Instagram. For a message the page or account sent (is_echo)
// the customer is the recipient and the direction is outbound.
func (ps *parser) messagingEntries(entries []entry, ch schemas.Channel) *channels.BadRequest {
	for i, en := range entries {
		at := channels.Index("entry", i)
		for _, group := range []struct {
			name   string
			events []messagingEvent
		}{{"messaging", en.Messaging}, {"standby", en.Standby}} {
			for j, ev := range group.events {
				evAt := channels.Index(at+"."+group.name, j)
				if err := ps.messagingEvent(evAt, string(en.ID), ev, ch); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (ps *parser) messagingEvent(at, accountID string, ev messagingEvent, ch schemas.Channel) *channels.BadRequest {
	m := ev.Message
	if m == nil || m.IsDeleted {
		return nil
	}
	if m.MID == "" {
		return channels.Invalid(at+".message.mid", "is required")
	}
	sender, recipient := string(ev.Sender.ID), string(ev.Recipient.ID)
	if sender == "" {
		return channels.Invalid(at+".sender.id", "is required")
	}
	if recipient == "" {
		return channels.Invalid(at+".recipient.id", "is required")
	}
	occurred, ok := channels.UnixTime(string(ev.Timestamp))
	if !ok {
		return channels.Invalid(at+".timestamp", "must be a Unix time in seconds or milliseconds")
	}
	brand := accountID
	if brand == "" {
		brand = recipient
	}
	direction, customer := schemas.Inbound, sender
	if m.IsEcho || sender == brand {
		direction, customer = schemas.Outbound, recipient
		if brand == "" || brand == recipient {
			brand = sender
		}
	}
	e := schemas.Event{
		Kind:              schemas.KindMessage,
		Channel:           ch,
		ConversationKey:   string(ch) + ":" + brand + ":" + customer,
		Direction:         direction,
		Visibility:        schemas.Private,
		PlatformMessageID: m.MID,
		Author:            schemas.Author{PlatformUserID: sender},
		Text:              m.Text,
		Attachments:       messagingAttachments(m.Attachments),
		OccurredAt:        occurred,
		Brand:             schemas.BrandAccount{ID: brand},
	}
	if m.ReplyTo != nil && m.ReplyTo.MID != "" {
		e.ReplyToID = m.ReplyTo.MID
	}
	if direction == schemas.Outbound {
		e.AgentID = channels.AgentInitials(m.Text)
	}
	return ps.add(at, e)
}

// messagingAttachments maps Messenger and Instagram attachment types to the
// canonical ones: stickers are images with a sticker_id; shares, reels,
// story mentions, templates and fallbacks are links.
func messagingAttachments(in []attachment) []schemas.Attachment {
	var out []schemas.Attachment
	for _, a := range in {
		ca := schemas.Attachment{}
		if a.Payload != nil {
			ca.URL = a.Payload.URL
		}
		switch a.Type {
		case "image":
			ca.Type = schemas.AttachmentImage
			if a.Payload != nil && a.Payload.StickerID != "" && a.Payload.StickerID != "0" {
				ca.Type = schemas.AttachmentSticker
				ca.ID = string(a.Payload.StickerID)
			}
		case "video", "audio", "file":
			ca.Type = a.Type
		case "sticker":
			ca.Type = schemas.AttachmentSticker
		case "animated_image", "gif":
			ca.Type = schemas.AttachmentImage
		default:
			ca.Type = schemas.AttachmentLink
		}
		out = append(out, ca)
	}
	return out
}

// instagramChanges parses Instagram comments and mentions from
// entry[].changes[]. They are public and belong to the thread of the media
// they are on; a comment written by the account itself is outbound.
func (ps *parser) instagramChanges(entries []entry) *channels.BadRequest {
	for i, en := range entries {
		for j, ch := range en.Changes {
			at := channels.Index(channels.Index("entry", i)+".changes", j)
			var err *channels.BadRequest
			switch ch.Field {
			case "comments", "live_comments":
				err = ps.instagramComment(at, i, en, ch.Value)
			case "mentions":
				err = ps.instagramMention(at, i, en, ch.Value)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (ps *parser) instagramComment(at string, entryIndex int, en entry, v changeValue) *channels.BadRequest {
	if v.ID == "" {
		return channels.Invalid(at+".value.id", "is required")
	}
	if v.Media == nil || v.Media.ID == "" {
		return channels.Invalid(at+".value.media.id", "is required")
	}
	if v.From == nil || v.From.ID == "" {
		return channels.Invalid(at+".value.from.id", "is required")
	}
	occurred, err := changeTime(at, entryIndex, en, v)
	if err != nil {
		return err
	}
	account := string(en.ID)
	e := schemas.Event{
		Kind:              schemas.KindMessage,
		Channel:           schemas.ChannelInstagram,
		ConversationKey:   "instagram:thread:" + string(v.Media.ID),
		Direction:         schemas.Inbound,
		Visibility:        schemas.Public,
		PlatformMessageID: string(v.ID),
		ReplyToID:         string(v.ParentID),
		Author:            schemas.Author{PlatformUserID: string(v.From.ID), Handle: v.From.Username},
		Text:              v.Text,
		OccurredAt:        occurred,
		Brand:             schemas.BrandAccount{ID: account},
	}
	if account != "" && string(v.From.ID) == account {
		e.Direction = schemas.Outbound
		e.Brand.Handle = v.From.Username
		e.AgentID = channels.AgentInitials(v.Text)
	}
	return ps.add(at, e)
}

// UnresolvedAuthorPrefix starts the author id of an Instagram mention whose
// author the webhook did not name. The mentions webhook carries only the
// media and comment ids (the author is read later through GET
// /{ig-user-id}?fields=mentioned_comment), so the author id is derived from
// the comment id: it is unique to the comment and can never be shared by two
// customers, and the prefix, which no Instagram-scoped user id has, marks it
// as a placeholder rather than a person.
const UnresolvedAuthorPrefix = "unresolved:comment:"

// IsUnresolvedAuthor reports whether platformUserID is a placeholder made by
// the parser for a mention without an author, not a platform user id.
func IsUnresolvedAuthor(platformUserID string) bool {
	return strings.HasPrefix(platformUserID, UnresolvedAuthorPrefix)
}

// instagramMention parses a mention of the account in a comment. Meta sends
// only the media and comment ids, so unless the payload names the author the
// author is a placeholder derived from the comment id (see
// UnresolvedAuthorPrefix): one shared id such as "unknown" would make every
// mention's author one data subject and one persona.
func (ps *parser) instagramMention(at string, entryIndex int, en entry, v changeValue) *channels.BadRequest {
	if v.CommentID == "" {
		// A mention in a caption has no comment to store.
		return nil
	}
	if v.MediaID == "" {
		return channels.Invalid(at+".value.media_id", "is required")
	}
	occurred, err := changeTime(at, entryIndex, en, v)
	if err != nil {
		return err
	}
	author := schemas.Author{PlatformUserID: UnresolvedAuthorPrefix + string(v.CommentID)}
	if v.From != nil && v.From.ID != "" {
		author = schemas.Author{PlatformUserID: string(v.From.ID), Handle: v.From.Username}
	}
	return ps.add(at, schemas.Event{
		Kind:              schemas.KindMessage,
		Channel:           schemas.ChannelInstagram,
		ConversationKey:   "instagram:thread:" + string(v.MediaID),
		Direction:         schemas.Inbound,
		Visibility:        schemas.Public,
		PlatformMessageID: string(v.CommentID),
		Author:            author,
		Text:              v.Text,
		OccurredAt:        occurred,
		Brand:             schemas.BrandAccount{ID: string(en.ID)},
	})
}

// changeTime takes the time of a change from its value's timestamp, or the
// entry's time when the value has none. Instagram sends seconds in some
// products and milliseconds in others; UnixTime tells them apart.
func changeTime(at string, entryIndex int, en entry, v changeValue) (time.Time, *channels.BadRequest) {
	if v.Timestamp != "" {
		if t, ok := channels.UnixTime(string(v.Timestamp)); ok {
			return t, nil
		}
		if t, err := time.Parse(time.RFC3339, string(v.Timestamp)); err == nil {
			return t.UTC(), nil
		}
		if t, err := time.Parse("2006-01-02T15:04:05-0700", string(v.Timestamp)); err == nil {
			return t.UTC(), nil
		}
		return time.Time{}, channels.Invalid(at+".value.timestamp", "must be a Unix time or an ISO 8601 time")
	}
	t, ok := channels.UnixTime(string(en.Time))
	if !ok {
		return time.Time{}, channels.Invalid(channels.Index("entry", entryIndex)+".time", "is required when a change has no timestamp: send a Unix time")
	}
	return t, nil
}
