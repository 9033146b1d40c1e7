package ingest

import (
	"context"
	"testing"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/schemas"
)

// TestImportSuppressesEveryEventOfAnErasedConversation: an erasure puts
// the conversation on the suppression list, and the import then skips its
// events whoever wrote them: the customer's, the brand's replies (authored
// by the brand), status updates, and a public reply in the same call that
// follows its parent into the conversation. Other conversations pass.
func TestImportSuppressesEveryEventOfAnErasedConversation(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"direct", "inbox"} {
		t.Run(mode, func(t *testing.T) {
			in, c, _, deliver := threadIngestor(t, mode)
			dm := event("x:dm:1:2", "d1")
			reply := event("x:dm:1:2", "d2")
			reply.Direction, reply.Author = schemas.Outbound, schemas.Author{PlatformUserID: "1"}
			status := event("x:dm:1:2", "d2")
			status.Kind, status.Status = schemas.KindStatus, "read"
			root := tweet("t0", "")
			answer := tweet("t1", "t0")
			answer.Direction, answer.Author = schemas.Outbound, schemas.Author{PlatformUserID: "1"}
			// Its key names t1, not the thread's root: it is suppressed
			// because it follows t1 into t0's conversation.
			later := tweet("t2", "t1")
			later.Direction, later.Author = schemas.Outbound, schemas.Author{PlatformUserID: "1"}
			other := event("x:dm:1:3", "o1")
			other.Author.PlatformUserID = "3"
			if err := in.Store.AddSuppressed(ctx, []string{
				activities.ConversationHash(in.IDs, in.ConversationID(dm)),
				activities.ConversationHash(in.IDs, in.ConversationID(root)),
			}, "dsr-1"); err != nil {
				t.Fatal(err)
			}
			res := ingestOK(t, in, Options{HonourSuppression: true}, dm, reply, status, root, answer, later, other)
			deliver()
			if res.Suppressed != 6 || res.Accepted != 1 {
				t.Errorf("Ingest = %+v; want the erased conversations' 6 events suppressed and the other conversation's accepted", res)
			}
			for _, id := range []string{"d1", "d2", "t0", "t1", "t2"} {
				if got := conversationOf(t, c, id); got != "" {
					t.Errorf("%s of an erased conversation was signalled to %s", id, got)
				}
			}
			if got := conversationOf(t, c, "o1"); got != in.ConversationID(other) {
				t.Errorf("another customer's message went to %q; want %q", got, in.ConversationID(other))
			}
			// Webhooks do not set HonourSuppression: a customer who writes
			// again after the erasure is a new conversation, not an import.
			res = ingestOK(t, in, Options{}, event("x:dm:1:2", "d3"))
			if res.Accepted != 1 {
				t.Errorf("a new message by webhook: %+v; want it accepted", res)
			}
		})
	}
}

// TestImportSuppressesRepliesToErasedMessages: in a public thread another
// customer started, an erasure suppresses the erased customer's messages
// one by one. The import then skips such a message and the brand's reply
// to it, also when the reply's conversation key names the message instead
// of the thread's root, and a status update of it, and still takes the
// other customer's messages.
func TestImportSuppressesRepliesToErasedMessages(t *testing.T) {
	in, c, _, _ := threadIngestor(t, "direct")
	erased := tweet("t1", "t0")
	if err := in.Store.AddSuppressed(context.Background(), []string{in.messageHash(erased.Channel, erased.PlatformMessageID)}, "dsr-1"); err != nil {
		t.Fatal(err)
	}
	answer := tweet("t2", "t1")
	answer.Direction, answer.Author = schemas.Outbound, schemas.Author{PlatformUserID: "1"}
	status := tweet("t1", "")
	status.Kind, status.Status = schemas.KindStatus, "read"
	root, later := tweet("t0", ""), tweet("t3", "t0")
	res := ingestOK(t, in, Options{HonourSuppression: true}, root, erased, answer, status, later)
	if res.Suppressed != 3 || res.Accepted != 2 {
		t.Errorf("Ingest = %+v; want the erased message, its status and the brand's answer to it suppressed, the other customer's 2 accepted", res)
	}
	for _, id := range []string{"t1", "t2"} {
		if got := conversationOf(t, c, id); got != "" {
			t.Errorf("%s was signalled to %s", id, got)
		}
	}
	for _, id := range []string{"t0", "t3"} {
		if conversationOf(t, c, id) == "" {
			t.Errorf("the other customer's %s was not signalled", id)
		}
	}
	// Nothing in a call is covered: one query answers for the whole call.
	res = ingestOK(t, in, Options{HonourSuppression: true}, tweet("u1", ""), tweet("u2", "u1"))
	if res.Accepted != 2 || res.Suppressed != 0 {
		t.Errorf("a call with nothing suppressed: %+v", res)
	}
}
