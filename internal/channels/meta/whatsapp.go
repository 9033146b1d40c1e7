package meta

import (
	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/schemas"
)

// waMetadata identifies the brand's WhatsApp business number.
type waMetadata struct {
	DisplayPhoneNumber string              `json:"display_phone_number"`
	PhoneNumberID      channels.FlexString `json:"phone_number_id"`
}

// waContact carries the customer's WhatsApp profile name.
type waContact struct {
	WaID    channels.FlexString `json:"wa_id"`
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
}

// waMedia is the shape of image, video, audio, document and sticker
// messages: a media id to fetch, never the bytes.
type waMedia struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

// waMessage is one value.messages[] item of the WhatsApp Cloud API.
type waMessage struct {
	From      channels.FlexString `json:"from"`
	ID        string              `json:"id"`
	Timestamp channels.FlexString `json:"timestamp"`
	Type      string              `json:"type"`
	Text      *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *waMedia `json:"image"`
	Video    *waMedia `json:"video"`
	Audio    *waMedia `json:"audio"`
	Voice    *waMedia `json:"voice"`
	Document *waMedia `json:"document"`
	Sticker  *waMedia `json:"sticker"`
	Button   *struct {
		Text string `json:"text"`
	} `json:"button"`
	Interactive *struct {
		ButtonReply *struct {
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			Title string `json:"title"`
		} `json:"list_reply"`
	} `json:"interactive"`
	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	Location *struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"location"`
	Context *struct {
		From channels.FlexString `json:"from"`
		ID   string              `json:"id"`
	} `json:"context"`
}

// waStatus is one value.statuses[] item: a delivery status of a message the
// brand sent.
type waStatus struct {
	ID          string              `json:"id"`
	Status      string              `json:"status"`
	Timestamp   channels.FlexString `json:"timestamp"`
	RecipientID channels.FlexString `json:"recipient_id"`
}

// whatsappEntries parses entry[].changes[] with field "messages": customer
// messages become inbound message events and statuses of the brand's
// messages become status events. Other fields (template and account
// updates) are skipped.
func (ps *parser) whatsappEntries(entries []entry) *channels.BadRequest {
	for i, en := range entries {
		for j, ch := range en.Changes {
			if ch.Field != "messages" {
				continue
			}
			at := channels.Index(channels.Index("entry", i)+".changes", j) + ".value"
			v := ch.Value
			if v.Metadata == nil || v.Metadata.PhoneNumberID == "" {
				if len(v.Messages) == 0 && len(v.Statuses) == 0 {
					continue
				}
				return channels.Invalid(at+".metadata.phone_number_id", "is required")
			}
			phoneID := string(v.Metadata.PhoneNumberID)
			names := map[string]string{}
			for _, c := range v.Contacts {
				names[string(c.WaID)] = c.Profile.Name
			}
			for k, m := range v.Messages {
				if err := ps.whatsappMessage(channels.Index(at+".messages", k), phoneID, names, m); err != nil {
					return err
				}
			}
			for k, s := range v.Statuses {
				if err := ps.whatsappStatus(channels.Index(at+".statuses", k), phoneID, s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (ps *parser) whatsappMessage(at, phoneID string, names map[string]string, m waMessage) *channels.BadRequest {
	if m.ID == "" {
		return channels.Invalid(at+".id", "is required")
	}
	if m.From == "" {
		return channels.Invalid(at+".from", "is required")
	}
	occurred, ok := channels.UnixTime(string(m.Timestamp))
	if !ok {
		return channels.Invalid(at+".timestamp", "must be a Unix time in seconds")
	}
	waID := string(m.From)
	e := schemas.Event{
		Kind:              schemas.KindMessage,
		Channel:           schemas.ChannelWhatsApp,
		ConversationKey:   "whatsapp:" + phoneID + ":" + waID,
		Direction:         schemas.Inbound,
		Visibility:        schemas.Private,
		PlatformMessageID: m.ID,
		Author:            schemas.Author{PlatformUserID: waID, DisplayName: names[waID]},
		OccurredAt:        occurred,
		Brand:             schemas.BrandAccount{ID: phoneID},
	}
	if m.Context != nil && m.Context.ID != "" {
		e.ReplyToID = m.Context.ID
	}
	media := func(typ string, md *waMedia) {
		if md == nil {
			return
		}
		e.Text = md.Caption
		e.Attachments = []schemas.Attachment{{Type: typ, ID: md.ID, MimeType: md.MimeType}}
	}
	switch m.Type {
	case "text":
		if m.Text != nil {
			e.Text = m.Text.Body
		}
	case "image":
		media(schemas.AttachmentImage, m.Image)
	case "video":
		media(schemas.AttachmentVideo, m.Video)
	case "audio":
		media(schemas.AttachmentAudio, m.Audio)
	case "voice":
		media(schemas.AttachmentAudio, m.Voice)
	case "document":
		media(schemas.AttachmentFile, m.Document)
	case "sticker":
		media(schemas.AttachmentSticker, m.Sticker)
	case "button":
		if m.Button != nil {
			e.Text = m.Button.Text
		}
	case "interactive":
		if m.Interactive != nil && m.Interactive.ButtonReply != nil {
			e.Text = m.Interactive.ButtonReply.Title
		}
		if m.Interactive != nil && m.Interactive.ListReply != nil {
			e.Text = m.Interactive.ListReply.Title
		}
	case "reaction":
		if m.Reaction != nil {
			e.Text = m.Reaction.Emoji
			if m.Reaction.MessageID != "" {
				e.ReplyToID = m.Reaction.MessageID
			}
		}
	case "location":
		if m.Location != nil {
			e.Text = joinNonEmpty(m.Location.Name, m.Location.Address)
		}
	}
	return ps.add(at, e)
}

// whatsappStatus turns a delivery status into a status event for the
// brand's message. Statuses outside sent, delivered, read and failed (such
// as deleted or warning) are skipped.
func (ps *parser) whatsappStatus(at, phoneID string, s waStatus) *channels.BadRequest {
	switch s.Status {
	case schemas.StatusSent, schemas.StatusDelivered, schemas.StatusRead, schemas.StatusFailed:
	default:
		return nil
	}
	if s.ID == "" {
		return channels.Invalid(at+".id", "is required")
	}
	if s.RecipientID == "" {
		return channels.Invalid(at+".recipient_id", "is required")
	}
	occurred, ok := channels.UnixTime(string(s.Timestamp))
	if !ok {
		return channels.Invalid(at+".timestamp", "must be a Unix time in seconds")
	}
	return ps.add(at, schemas.Event{
		Kind:              schemas.KindStatus,
		Channel:           schemas.ChannelWhatsApp,
		ConversationKey:   "whatsapp:" + phoneID + ":" + string(s.RecipientID),
		Direction:         schemas.Outbound,
		Visibility:        schemas.Private,
		PlatformMessageID: s.ID,
		Author:            schemas.Author{PlatformUserID: phoneID},
		OccurredAt:        occurred,
		Brand:             schemas.BrandAccount{ID: phoneID},
		Status:            s.Status,
	})
}

func joinNonEmpty(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += ", "
		}
		out += p
	}
	return out
}
