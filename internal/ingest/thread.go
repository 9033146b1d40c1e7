package ingest

import (
	"context"
	"fmt"

	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

// conversations returns the conversation ID of each event. It is the
// event's own (ConversationID), except for a public reply to a message
// webcaresync has already placed, earlier in this call or in an earlier
// one: the reply joins that message's conversation.
//
// A channel can only name the thread root its webhook body knows. An X
// reply that arrives in a later webhook than the tweet it answers names
// that tweet as its root, not the thread's first tweet, so without this a
// public thread would split into several conversations: several Cases in
// the CRM, and an erasure of a customer who wrote in the thread would miss
// the parts that only mention him. The event's ConversationKey is left as
// the channel derived it; the conversation ID travels with the event
// (dedupe claim, inbox item, workflow ID), and the claim recorded for the
// reply lets later replies to it follow the same way.
//
// Replies whose parent is not in events are looked up in one store query.
func (in *Ingestor) conversations(ctx context.Context, events []schemas.Event) ([]string, error) {
	ids, _, err := in.place(ctx, events, false)
	return ids, err
}

// place is conversations that, with own, also looks up the claims of the
// events' own dedupe keys in the same store query, for the direct path's
// dedupe: claimed maps the keyed dedupe key of every event delivered
// before to its conversation.
func (in *Ingestor) place(ctx context.Context, events []schemas.Event, own bool) (ids []string, claimed map[string]string, err error) {
	ids = make([]string, len(events))
	for i, e := range events {
		ids[i] = in.ConversationID(e)
	}
	// Per event, the dedupe key of its parent, if it may move.
	var parents []string
	for i, e := range events {
		if !isPublicReply(e) {
			continue
		}
		if parents == nil {
			parents = make([]string, len(events))
		}
		parents[i] = workflows.DedupeKey(schemas.Event{Kind: schemas.KindMessage, Channel: e.Channel, PlatformMessageID: e.ReplyToID})
	}
	if parents == nil && !own {
		return ids, nil, nil
	}
	// The messages of this call, by dedupe key: a reply to one of them
	// follows it without a lookup.
	local := make(map[string]int, len(events))
	for i, e := range events {
		if e.Kind == schemas.KindStatus {
			continue
		}
		if k := workflows.DedupeKey(e); !has(local, k) {
			local[k] = i
		}
	}
	// One lookup for the parents placed in earlier calls.
	claimKey := map[string]string{}
	var lookup []string
	for _, p := range parents {
		if p == "" {
			continue
		}
		if _, ok := claimKey[p]; ok || has(local, p) {
			continue
		}
		k := in.IDs.Hash("event", p)
		claimKey[p] = k
		lookup = append(lookup, k)
	}
	if own {
		for _, e := range events {
			lookup = append(lookup, in.IDs.Hash("event", workflows.DedupeKey(e)))
		}
	}
	var placed map[string]string
	if len(lookup) > 0 {
		placed, err = in.Store.EventConversations(ctx, lookup)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: cannot look up the dedupe claims of the events and of the messages they answer: %v", ErrUnavailable, err)
		}
	}
	if parents == nil {
		return ids, placed, nil
	}
	// Follow each reply to its parent; a parent in this call is resolved
	// first, so chains of replies land together. state: 0 open, 1 on the
	// current path (a cycle stops there), 2 resolved.
	state := make([]uint8, len(events))
	var resolve func(i int) string
	resolve = func(i int) string {
		if state[i] != 0 || parents[i] == "" {
			return ids[i]
		}
		state[i] = 1
		if j, ok := local[parents[i]]; ok {
			// Only a public parent: a public reply does not join a
			// private conversation.
			if j != i && state[j] != 1 && events[j].Visibility == schemas.Public {
				ids[i] = resolve(j)
			}
		} else if id, ok := placed[claimKey[parents[i]]]; ok {
			ids[i] = id
		}
		state[i] = 2
		return ids[i]
	}
	for i := range events {
		resolve(i)
	}
	return ids, placed, nil
}

// isPublicReply reports whether e is a public message (post, comment or
// tweet) that answers another message.
func isPublicReply(e schemas.Event) bool {
	return e.Kind != schemas.KindStatus && e.Visibility == schemas.Public && e.ReplyToID != "" && e.ReplyToID != e.PlatformMessageID
}

func has(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}
