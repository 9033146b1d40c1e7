// Package schemas holds the canonical conversation event, both as a JSON
// Schema (event.schema.json, the contract for the generic webhook and the
// JSONL import) and as the Go type every channel parser produces.
package schemas

import "time"

// Channel names the platform or tool an event came from.
type Channel string

// The channels webcaresync ingests.
const (
	ChannelX         Channel = "x"
	ChannelMessenger Channel = "messenger"
	ChannelInstagram Channel = "instagram"
	ChannelWhatsApp  Channel = "whatsapp"
	ChannelLivechat  Channel = "livechat"
	ChannelGeneric   Channel = "generic"
)

// Direction says who wrote a message: the customer (inbound) or the brand's
// agent (outbound).
type Direction string

// The two directions of a message.
const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)

// Visibility says whether a message is a public post or comment, or a
// private (direct) message. Only private messages are used for identity
// matching.
type Visibility string

// The two visibilities of a message.
const (
	Public  Visibility = "public"
	Private Visibility = "private"
)

// Kind distinguishes a new message from a delivery status update of an
// existing one (WhatsApp's sent, delivered and read).
type Kind string

// The kinds of event.
const (
	KindMessage Kind = "message"
	KindStatus  Kind = "status"
)

// Event is one canonical conversation event. Every channel parser turns its
// platform's payload into Events; everything downstream reads only Events.
type Event struct {
	// Kind is "message" (default) or "status".
	Kind Kind `json:"kind"`
	// Channel is the platform the event came from.
	Channel Channel `json:"channel"`
	// ConversationKey is the channel's natural key for the conversation, for
	// example "messenger:<page id>:<psid>", "whatsapp:<phone_number_id>:<wa_id>",
	// "x:dm:<account id>:<other participant id>" or "x:thread:<root tweet id>".
	// It may contain platform identifiers and is therefore never used as a
	// workflow ID as is: see internal/ids. A public reply to a message that
	// came in an earlier webhook keeps the key its own webhook gave it, but
	// the ingest places it in the conversation of the message it answers.
	ConversationKey string `json:"conversation_key"`
	// Direction is inbound (customer) or outbound (agent reply).
	Direction Direction `json:"direction"`
	// Visibility is public (post, comment, tweet) or private (DM).
	Visibility Visibility `json:"visibility"`
	// PlatformMessageID is the platform's own id of the message; it is the
	// dedupe key. For a status event it is the id of the message whose status
	// changed.
	PlatformMessageID string `json:"platform_message_id"`
	// ReplyToID is the platform message id this message answers, if any.
	ReplyToID string `json:"reply_to_id,omitempty"`
	// Author is who wrote the message.
	Author Author `json:"author"`
	// Text is the message text, UTF-8.
	Text string `json:"text,omitempty"`
	// Attachments are references to media; bytes are never carried.
	Attachments []Attachment `json:"attachments,omitempty"`
	// OccurredAt is when the platform says the message was written, in UTC.
	OccurredAt time.Time `json:"occurred_at"`
	// Brand is the brand account the conversation belongs to.
	Brand BrandAccount `json:"brand"`
	// Status is the delivery status for a status event: sent, delivered,
	// read or failed.
	Status string `json:"status,omitempty"`
	// AgentID identifies the agent who wrote an outbound reply, such as the
	// initials a webcare team signs with ("MK").
	AgentID string `json:"agent_id,omitempty"`
}

// Author is the writer of a message.
type Author struct {
	// PlatformUserID is the platform's stable user id (PSID, IGSID, wa_id,
	// X user id).
	PlatformUserID string `json:"platform_user_id"`
	// Handle is the screen name or @handle, where the platform has one.
	Handle string `json:"handle,omitempty"`
	// DisplayName is the name the platform shows.
	DisplayName string `json:"display_name,omitempty"`
}

// Attachment is a reference to media attached to a message.
type Attachment struct {
	// Type is image, video, audio, file, sticker or link.
	Type string `json:"type"`
	// URL is where the platform serves the media, if given.
	URL string `json:"url,omitempty"`
	// ID is the platform's media id, if given.
	ID string `json:"id,omitempty"`
	// MimeType is the media type, if given.
	MimeType string `json:"mime_type,omitempty"`
}

// BrandAccount is the brand's own account on a channel.
type BrandAccount struct {
	// ID is the page id, Instagram account id, WhatsApp phone_number_id or
	// X user id of the brand.
	ID string `json:"id"`
	// Handle is the brand's screen name, if known.
	Handle string `json:"handle,omitempty"`
}
