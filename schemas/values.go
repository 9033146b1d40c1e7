package schemas

// Kinds lists every Kind the schema accepts, in schema order.
var Kinds = []Kind{KindMessage, KindStatus}

// Channels lists every Channel the schema accepts, in schema order.
var Channels = []Channel{ChannelX, ChannelMessenger, ChannelInstagram, ChannelWhatsApp, ChannelLivechat, ChannelGeneric}

// Directions lists every Direction the schema accepts, in schema order.
var Directions = []Direction{Inbound, Outbound}

// Visibilities lists every Visibility the schema accepts, in schema order.
var Visibilities = []Visibility{Public, Private}

// The delivery statuses a status event can carry in Event.Status.
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
)

// Statuses lists every Event.Status value the schema accepts, in schema order.
var Statuses = []string{StatusSent, StatusDelivered, StatusRead, StatusFailed}

// The attachment types Attachment.Type can carry.
const (
	AttachmentImage   = "image"
	AttachmentVideo   = "video"
	AttachmentAudio   = "audio"
	AttachmentFile    = "file"
	AttachmentSticker = "sticker"
	AttachmentLink    = "link"
)

// AttachmentTypes lists every Attachment.Type the schema accepts, in schema
// order.
var AttachmentTypes = []string{AttachmentImage, AttachmentVideo, AttachmentAudio, AttachmentFile, AttachmentSticker, AttachmentLink}

// Limits the schema enforces, in characters (Unicode code points).
const (
	// MaxTextLength is the longest Event.Text accepted: 64 Ki characters.
	MaxTextLength = 65536
	// MaxIDLength is the longest id, key, handle or name accepted.
	MaxIDLength = 256
)
