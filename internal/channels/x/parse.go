package x

import (
	"encoding/json"
	"time"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/schemas"
)

// payload is an Account Activity POST. Only direct messages and tweets are
// parsed; other activity (favorites, follows, typing, reads, deletes) is
// skipped.
type payload struct {
	ForUserID           channels.FlexString        `json:"for_user_id"`
	DirectMessageEvents []dmEvent                  `json:"direct_message_events"`
	TweetCreateEvents   []tweet                    `json:"tweet_create_events"`
	Users               map[string]user            `json:"users"`
	Apps                map[string]json.RawMessage `json:"apps"`
}

type user struct {
	ID         channels.FlexString `json:"id"`
	IDStr      string              `json:"id_str"`
	Name       string              `json:"name"`
	ScreenName string              `json:"screen_name"`
}

type dmEvent struct {
	Type             string              `json:"type"`
	ID               channels.FlexString `json:"id"`
	CreatedTimestamp channels.FlexString `json:"created_timestamp"`
	MessageCreate    *struct {
		Target struct {
			RecipientID channels.FlexString `json:"recipient_id"`
		} `json:"target"`
		SenderID    channels.FlexString `json:"sender_id"`
		MessageData struct {
			Text       string `json:"text"`
			Attachment *struct {
				Type  string `json:"type"`
				Media *media `json:"media"`
			} `json:"attachment"`
		} `json:"message_data"`
	} `json:"message_create"`
}

type media struct {
	IDStr         string `json:"id_str"`
	MediaURLHTTPS string `json:"media_url_https"`
	Type          string `json:"type"`
}

type entities struct {
	Media []media `json:"media"`
}

type tweet struct {
	CreatedAt            string              `json:"created_at"`
	TimestampMS          channels.FlexString `json:"timestamp_ms"`
	IDStr                string              `json:"id_str"`
	Text                 string              `json:"text"`
	FullText             string              `json:"full_text"`
	Truncated            bool                `json:"truncated"`
	InReplyToStatusIDStr string              `json:"in_reply_to_status_id_str"`
	User                 *struct {
		IDStr      string `json:"id_str"`
		Name       string `json:"name"`
		ScreenName string `json:"screen_name"`
	} `json:"user"`
	ExtendedTweet *struct {
		FullText         string    `json:"full_text"`
		ExtendedEntities *entities `json:"extended_entities"`
		Entities         *entities `json:"entities"`
	} `json:"extended_tweet"`
	Entities         *entities       `json:"entities"`
	ExtendedEntities *entities       `json:"extended_entities"`
	RetweetedStatus  json.RawMessage `json:"retweeted_status"`
}

// createdAtLayout is the v1.1 tweet created_at format.
const createdAtLayout = "Mon Jan 02 15:04:05 -0700 2006"

// Parse turns an Account Activity body into canonical events: direct
// messages (private; outbound when the sender is the subscribed account)
// and tweets (public; in the thread of the tweet they reply to). Retweets
// are skipped. A body without for_user_id is a *channels.BadRequest.
func (c *Channel) Parse(body []byte) ([]schemas.Event, error) {
	var p payload
	if err := channels.DecodeJSON(body, &p); err != nil {
		return nil, err
	}
	account := string(p.ForUserID)
	if account == "" {
		return nil, channels.Invalid("for_user_id", "is required: X sends it with every Account Activity event")
	}
	users := p.users()
	brand := schemas.BrandAccount{ID: account, Handle: users[account].ScreenName}
	var events []schemas.Event
	add := func(at string, e schemas.Event) *channels.BadRequest {
		if err := schemas.ValidateEvent(e); err != nil {
			return channels.FromValidation(at, err)
		}
		events = append(events, e)
		return nil
	}
	for i, dm := range p.DirectMessageEvents {
		at := channels.Index("direct_message_events", i)
		e, skip, err := directMessage(at, account, brand, users, dm)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		if err := add(at, e); err != nil {
			return nil, err
		}
	}
	parents := map[string]string{}
	for _, t := range p.TweetCreateEvents {
		if t.IDStr != "" && t.InReplyToStatusIDStr != "" {
			parents[t.IDStr] = t.InReplyToStatusIDStr
		}
	}
	for i, t := range p.TweetCreateEvents {
		at := channels.Index("tweet_create_events", i)
		if len(t.RetweetedStatus) > 0 && string(t.RetweetedStatus) != "null" {
			continue
		}
		e, err := tweetEvent(at, account, brand, parents, t)
		if err != nil {
			return nil, err
		}
		if err := add(at, e); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// users returns the users map, also when X nests it under "apps" as the
// Account Activity documentation's direct message example shows.
func (p payload) users() map[string]user {
	out := map[string]user{}
	if raw, ok := p.Apps["users"]; ok {
		var nested map[string]user
		if json.Unmarshal(raw, &nested) == nil {
			for id, u := range nested {
				out[id] = u
			}
		}
	}
	for id, u := range p.Users {
		out[id] = u
	}
	return out
}

func directMessage(at, account string, brand schemas.BrandAccount, users map[string]user, dm dmEvent) (schemas.Event, bool, *channels.BadRequest) {
	if dm.Type != "message_create" || dm.MessageCreate == nil {
		return schemas.Event{}, true, nil
	}
	mc := dm.MessageCreate
	if dm.ID == "" {
		return schemas.Event{}, false, channels.Invalid(at+".id", "is required")
	}
	sender, recipient := string(mc.SenderID), string(mc.Target.RecipientID)
	if sender == "" {
		return schemas.Event{}, false, channels.Invalid(at+".message_create.sender_id", "is required")
	}
	if recipient == "" {
		return schemas.Event{}, false, channels.Invalid(at+".message_create.target.recipient_id", "is required")
	}
	occurred, ok := channels.UnixTime(string(dm.CreatedTimestamp))
	if !ok {
		return schemas.Event{}, false, channels.Invalid(at+".created_timestamp", "must be a Unix time in milliseconds")
	}
	direction, other := schemas.Inbound, sender
	if sender == account {
		direction, other = schemas.Outbound, recipient
	}
	u := users[sender]
	e := schemas.Event{
		Kind:              schemas.KindMessage,
		Channel:           schemas.ChannelX,
		ConversationKey:   "x:dm:" + account + ":" + other,
		Direction:         direction,
		Visibility:        schemas.Private,
		PlatformMessageID: string(dm.ID),
		Author:            schemas.Author{PlatformUserID: sender, Handle: u.ScreenName, DisplayName: u.Name},
		Text:              mc.MessageData.Text,
		OccurredAt:        occurred,
		Brand:             brand,
	}
	if a := mc.MessageData.Attachment; a != nil && a.Media != nil {
		e.Attachments = mediaAttachments([]media{*a.Media})
	}
	if direction == schemas.Outbound {
		e.AgentID = channels.AgentInitials(e.Text)
	}
	return e, false, nil
}

func tweetEvent(at, account string, brand schemas.BrandAccount, parents map[string]string, t tweet) (schemas.Event, *channels.BadRequest) {
	if t.IDStr == "" {
		return schemas.Event{}, channels.Invalid(at+".id_str", "is required")
	}
	if t.User == nil || t.User.IDStr == "" {
		return schemas.Event{}, channels.Invalid(at+".user.id_str", "is required")
	}
	occurred, err := tweetTime(at, t)
	if err != nil {
		return schemas.Event{}, err
	}
	text, ents := t.Text, firstEntities(t.ExtendedEntities, t.Entities)
	if t.FullText != "" {
		text = t.FullText
	}
	if t.Truncated && t.ExtendedTweet != nil && t.ExtendedTweet.FullText != "" {
		text = t.ExtendedTweet.FullText
		ents = firstEntities(t.ExtendedTweet.ExtendedEntities, t.ExtendedTweet.Entities, ents)
	}
	e := schemas.Event{
		Kind:              schemas.KindMessage,
		Channel:           schemas.ChannelX,
		ConversationKey:   "x:thread:" + threadRoot(t, parents),
		Direction:         schemas.Inbound,
		Visibility:        schemas.Public,
		PlatformMessageID: t.IDStr,
		ReplyToID:         t.InReplyToStatusIDStr,
		Author:            schemas.Author{PlatformUserID: t.User.IDStr, Handle: t.User.ScreenName, DisplayName: t.User.Name},
		Text:              text,
		OccurredAt:        occurred,
		Brand:             brand,
	}
	if ents != nil {
		e.Attachments = mediaAttachments(ents.Media)
	}
	if t.User.IDStr == account {
		e.Direction = schemas.Outbound
		e.AgentID = channels.AgentInitials(text)
		if e.Brand.Handle == "" {
			e.Brand.Handle = t.User.ScreenName
		}
	}
	return e, nil
}

// threadRoot follows in_reply_to_status_id_str as far as the tweets in this
// body know it: the root of a reply is the tweet it answers, or that
// tweet's parent when it is in the same body. A tweet that answers nothing
// is its own root. The walk stops on cycles.
func threadRoot(t tweet, parents map[string]string) string {
	root := t.IDStr
	if t.InReplyToStatusIDStr != "" {
		root = t.InReplyToStatusIDStr
	}
	seen := map[string]bool{t.IDStr: true}
	for !seen[root] {
		seen[root] = true
		parent, ok := parents[root]
		if !ok {
			break
		}
		root = parent
	}
	return root
}

func tweetTime(at string, t tweet) (time.Time, *channels.BadRequest) {
	if t.TimestampMS != "" {
		if ts, ok := channels.UnixTime(string(t.TimestampMS)); ok {
			return ts, nil
		}
	}
	ts, err := time.Parse(createdAtLayout, t.CreatedAt)
	if err != nil {
		return time.Time{}, channels.Invalid(at+".created_at", "must be a time like Wed Oct 10 20:19:24 +0000 2018, or send timestamp_ms")
	}
	return ts.UTC(), nil
}

func firstEntities(candidates ...*entities) *entities {
	for _, c := range candidates {
		if c != nil && len(c.Media) > 0 {
			return c
		}
	}
	return nil
}

// mediaAttachments maps X media: photos are images, videos and animated
// GIFs are videos.
func mediaAttachments(in []media) []schemas.Attachment {
	var out []schemas.Attachment
	for _, m := range in {
		typ := schemas.AttachmentImage
		switch m.Type {
		case "video", "animated_gif":
			typ = schemas.AttachmentVideo
		}
		out = append(out, schemas.Attachment{Type: typ, ID: m.IDStr, URL: m.MediaURLHTTPS})
	}
	return out
}
