// Package generic receives canonical events (schemas.Event) from livechat
// and webcare tools on /webhooks/generic, and parses the lines of a JSONL
// backfill file. Senders sign each POST with X-Webcaresync-Signature, a hex
// HMAC-SHA256 over the X-Webcaresync-Timestamp value, a ".", and the raw
// body; requests more than five minutes away from now are rejected so that
// a captured request cannot be replayed later.
package generic

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/schemas"
)

// The headers a generic webhook request is signed with.
const (
	SignatureHeader = "X-Webcaresync-Signature"
	TimestampHeader = "X-Webcaresync-Timestamp"
)

// MaxSkew is how far the timestamp header may be from now, in either
// direction. Default: 5 minutes.
const MaxSkew = 5 * time.Minute

// Channel is the generic webhook source. Create it with New.
type Channel struct {
	secret []byte
	now    func() time.Time
}

// New returns the generic channel. secret keys the HMAC; now is the clock
// the replay window is measured against (time.Now when nil). An empty
// secret makes every Verify fail.
func New(secret string, now func() time.Time) *Channel {
	if now == nil {
		now = time.Now
	}
	return &Channel{secret: []byte(secret), now: now}
}

// Name returns "generic".
func (c *Channel) Name() string { return "generic" }

// Handshake answers 404: the generic webhook has no GET verification.
func (c *Channel) Handshake(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "the generic webhook has no handshake: POST signed events instead", http.StatusNotFound)
}

// Verify checks X-Webcaresync-Timestamp (Unix seconds, within MaxSkew of
// now) and X-Webcaresync-Signature ("sha256=" and the hex HMAC-SHA256 of
// timestamp + "." + body) in constant time.
func (c *Channel) Verify(r *http.Request, body []byte) error {
	if len(c.secret) == 0 {
		return channels.Unauthorized("generic webhook secret is not configured")
	}
	tsHeader := r.Header.Get(TimestampHeader)
	if tsHeader == "" {
		return channels.Unauthorized("missing " + TimestampHeader + " header")
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return channels.Unauthorized(TimestampHeader + " must be Unix seconds")
	}
	now := c.now().Unix()
	skew := int64(MaxSkew / time.Second)
	if ts < now-skew {
		return channels.Unauthorized(TimestampHeader + " is more than 5 minutes old: sign each request when sending it")
	}
	if ts > now+skew {
		return channels.Unauthorized(TimestampHeader + " is more than 5 minutes in the future: check the sender's clock")
	}
	header := r.Header.Get(SignatureHeader)
	if header == "" {
		return channels.Unauthorized("missing " + SignatureHeader + " header")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return channels.Unauthorized(SignatureHeader + " must start with sha256=")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return channels.Unauthorized(SignatureHeader + " must be sha256= followed by 64 hex digits")
	}
	if !channels.EqualSignature(got, mac(c.secret, tsHeader, body)) {
		return channels.Unauthorized(SignatureHeader + " does not match the timestamp and body")
	}
	return nil
}

// Sign returns the two header values a sender sets for body at time ts:
// X-Webcaresync-Signature and X-Webcaresync-Timestamp.
func Sign(secret string, ts time.Time, body []byte) (sigHeader, tsHeader string) {
	tsHeader = strconv.FormatInt(ts.Unix(), 10)
	return "sha256=" + hex.EncodeToString(mac([]byte(secret), tsHeader, body)), tsHeader
}

func mac(key []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Parse accepts one event object, a JSON array of events, or
// {"events":[...]}. Every event is validated against the schema; the first
// failure is a *channels.BadRequest whose field is prefixed with the
// event's index ("events[2].channel") when the body holds a list.
// Timestamps are normalised to UTC.
func (c *Channel) Parse(body []byte) ([]schemas.Event, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, channels.Invalid("", "body is empty: send an event, an array of events or {\"events\":[...]}")
	}
	var raws []json.RawMessage
	prefix := "events"
	switch trimmed[0] {
	case '[':
		if err := channels.DecodeJSON(body, &raws); err != nil {
			return nil, err
		}
	case '{':
		var probe map[string]json.RawMessage
		if err := channels.DecodeJSON(body, &probe); err != nil {
			return nil, err
		}
		list, ok := probe["events"]
		if !ok {
			e, err := ParseEvent(body)
			if err != nil {
				return nil, err
			}
			return []schemas.Event{e}, nil
		}
		if len(probe) != 1 {
			return nil, channels.Invalid("", "an envelope must hold only \"events\": move other fields into the events")
		}
		if err := channels.DecodeJSON(list, &raws); err != nil {
			return nil, channels.Invalid("events", "must be an array of events")
		}
	default:
		return nil, channels.Invalid("", "body must be an event object, an array of events or {\"events\":[...]}")
	}
	if len(raws) == 0 {
		return nil, channels.Invalid(prefix, "must hold at least one event")
	}
	events := make([]schemas.Event, 0, len(raws))
	for i, raw := range raws {
		e, err := parseOne(raw)
		if err != nil {
			return nil, prefixed(channels.Index(prefix, i), err)
		}
		events = append(events, e)
	}
	return events, nil
}

// ParseEvent parses and validates one canonical event, such as one line of
// a JSONL import file. Errors are *channels.BadRequest naming the field.
func ParseEvent(line []byte) (schemas.Event, error) {
	e, err := parseOne(line)
	if err != nil {
		return schemas.Event{}, err
	}
	return e, nil
}

func parseOne(raw []byte) (schemas.Event, *channels.BadRequest) {
	if err := schemas.Validate(raw); err != nil {
		return schemas.Event{}, channels.FromValidation("", err)
	}
	var e schemas.Event
	if err := channels.DecodeJSON(raw, &e); err != nil {
		// The schema already passed, so only a timestamp Go cannot
		// represent (such as a leap second) is left to fail here.
		return schemas.Event{}, channels.Invalid("occurred_at", "must be an RFC 3339 timestamp such as 2024-05-01T09:30:00Z")
	}
	e.OccurredAt = e.OccurredAt.UTC()
	if err := schemas.ValidateEvent(e); err != nil {
		return schemas.Event{}, channels.FromValidation("", err)
	}
	return e, nil
}

func prefixed(prefix string, err *channels.BadRequest) *channels.BadRequest {
	field := prefix
	if err.Field != "" {
		field = prefix + "." + err.Field
	}
	return &channels.BadRequest{Field: field, Message: err.Message}
}

var _ channels.Channel = (*Channel)(nil)
