package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// household posts the household DM (Pieter writes, the phone number is
// also Marieke's) and returns the open review and the contact ids of
// Pieter and Marieke.
func household(t *testing.T, s *stack) (review app.ReviewView, pieter, marieke string) {
	t.Helper()
	for _, c := range s.Sandbox.Records("Contact") {
		switch c["FirstName"] {
		case "Pieter":
			pieter, _ = c["Id"].(string)
		case "Marieke":
			marieke, _ = c["Id"].(string)
		}
	}
	if pieter == "" || marieke == "" {
		t.Fatal("the household contacts are not seeded")
	}
	for _, c := range samples.Conversations() {
		if c.Name != "x-dm-household-phone" {
			continue
		}
		for _, p := range c.Payloads {
			if code, body, err := s.hooks.Post(context.Background(), p.Channel, p.Body); err != nil || code != 200 {
				t.Fatalf("%d %s %v", code, body, err)
			}
		}
	}
	eventually(t, time.Minute, "the household match in the review queue", func() bool {
		var list []app.ReviewView
		api(t, s, s.Secrets.AdminToken, "GET", "/v1/reviews", nil, &list)
		for _, r := range list {
			if r.Status == store.ReviewOpen {
				review = r
				return true
			}
		}
		return false
	})
	return review, pieter, marieke
}

// personaOf returns the ParentId of the sandbox persona with the platform
// user id.
func personaParent(s *stack, userID string) (string, bool) {
	for _, p := range s.Sandbox.Records("SocialPersona") {
		if p["ExternalId"] == userID {
			parent, _ := p["ParentId"].(string)
			return parent, true
		}
	}
	return "", false
}

// TestWrongLinkUnlinkedThenErasureSparesTheOtherCustomer has an agent
// resolve the household review with the wrong household member, then
// correct it through the API. An erasure for the wrongly chosen customer
// then erases nothing of the customer who wrote: his conversation stays in
// the CRM and in the store, under a subject of its own.
func TestWrongLinkUnlinkedThenErasureSparesTheOtherCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := start(t, stackOptions{})
	sanne := syncSanne(t, s)
	review, pieter, marieke := household(t, s)
	conv := review.ConversationID

	// The wrong household member.
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/reviews/"+review.ID+"/resolve", map[string]any{"contact_id": marieke}, nil); code/100 != 2 {
		t.Fatalf("resolve: %d", code)
	}
	eventually(t, time.Minute, "Pieter's persona linked to Marieke", func() bool {
		parent, _ := personaParent(s, samples.PieterXID)
		return parent == marieke
	})
	// The store records the link last, after the conversation's subject.
	var wrong []app.LinkView
	eventually(t, time.Minute, "Pieter's conversation and link under Marieke's subject", func() bool {
		cs := contactConversations(s, marieke)
		wrong = nil
		code := api(t, s, s.Secrets.AdminToken, "GET", "/v1/contacts/"+marieke+"/links", nil, &wrong)
		return len(cs) == 1 && cs[0].ID == conv && code == 200 && len(wrong) == 1
	})
	// The explanation names the conversation to unlink.
	if wrong[0].ConversationID != conv {
		t.Errorf("the wrong link names conversation %q, want %s", wrong[0].ConversationID, conv)
	}

	// Bad input is refused and changes nothing.
	if code := api(t, s, "wrong", "POST", "/v1/conversations/"+conv+"/unlink", nil, nil); code != 401 {
		t.Errorf("unlink without a valid token: %d, want 401", code)
	}
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/conversations/no-such-conversation/unlink", nil, nil); code != 404 {
		t.Errorf("unlink of an unknown conversation: %d, want 404", code)
	}
	// The correction.
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/conversations/"+conv+"/unlink", nil, nil); code != 202 {
		t.Fatalf("unlink: %d", code)
	}
	eventually(t, time.Minute, "Pieter's persona parented to his post again", func() bool {
		parent, ok := personaParent(s, samples.PieterXID)
		return ok && parent != marieke && parent != ""
	})
	eventually(t, time.Minute, "Pieter's conversation out of Marieke's subject", func() bool {
		return len(contactConversations(s, marieke)) == 0
	})
	for _, p := range s.Sandbox.Records("SocialPost") {
		if p["WhoId"] == marieke {
			t.Errorf("post %v still names Marieke after the unlink", p["ExternalPostId"])
		}
	}
	// The wrong link is kept, revoked, as evidence.
	var links []app.LinkView
	if code := api(t, s, s.Secrets.AdminToken, "GET", "/v1/contacts/"+marieke+"/links", nil, &links); code != 200 || len(links) != 1 || links[0].RevokedAt == nil || links[0].Approved != "admin" {
		t.Errorf("Marieke's links after the unlink: %d %+v, want the revoked link approved by admin", code, links)
	}
	audit, err := s.Store.ListAudit(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlinked := false
	for _, a := range audit {
		unlinked = unlinked || (a.Action == "links.unlink" && a.Target == conv && a.Outcome == "202")
	}
	if !unlinked {
		t.Error("the audit log does not record the unlink")
	}
	// A second unlink has nothing to undo.
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/conversations/"+conv+"/unlink", nil, nil); code != 409 {
		t.Errorf("a second unlink: %d, want 409", code)
	}

	// Marieke asks to be erased.
	eraseWith(t, s, map[string]any{"email": "marieke.jansen@example.nl"})

	// Pieter's conversation is intact in the CRM and in the store.
	if n := countWhere(s, "SocialPost", "ExternalPostId", "1790000000000000301"); n != 1 {
		t.Errorf("Pieter's DM in the CRM: %d posts, want 1", n)
	}
	if _, ok := personaParent(s, samples.PieterXID); !ok {
		t.Error("Pieter's persona was erased with Marieke")
	}
	c, err := s.Store.GetConversation(ctx, conv)
	if err != nil {
		t.Fatalf("Pieter's conversation is gone from the store: %v", err)
	}
	ids, err := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{s.Hasher.Hash(store.KindHandle, "x:"+samples.PieterXID)})
	if err != nil || len(ids) != 1 || ids[0] != c.SubjectID {
		t.Errorf("Pieter's handle is held by %v (%v), his conversation by %s", ids, err, c.SubjectID)
	}
	// Sanne was not touched either.
	if n := len(contactConversations(s, sanne)); n != 2 {
		t.Errorf("Sanne's conversations after Marieke's erasure: %d, want 2", n)
	}
	// And Marieke herself is gone from the store.
	if ids, _ := s.Store.FindSubjectsByIdentifierHashes(ctx, []string{s.Hasher.Hash("crm_contact", marieke)}); len(ids) != 0 {
		t.Errorf("Marieke's contact is still linked to subjects %v", ids)
	}
	if parent, _ := personaParent(s, samples.PieterXID); parent == pieter {
		t.Error("Pieter's persona is linked to his contact without anyone choosing it")
	}
}

// TestReviewResolvedAfterTheConversationWentIdle resolves the household
// review after the conversation's workflow ended on its idle timeout: the
// workflow starts again with its last state and links the persona.
func TestReviewResolvedAfterTheConversationWentIdle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := start(t, stackOptions{parts: &app.Parts{Embedded: true, InMemoryTemporal: true, EphemeralPorts: true, Sandbox: true,
		Worker: true, HTTP: true, DevSecrets: true, ConversationIdle: 2 * time.Second}})
	syncSanne(t, s)
	review, pieter, _ := household(t, s)
	eventually(t, time.Minute, "the household conversation's run to end on its idle timeout", func() bool {
		d, err := s.Client.DescribeWorkflowExecution(ctx, review.ConversationID, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/reviews/"+review.ID+"/resolve", map[string]any{"contact_id": pieter}, nil); code/100 != 2 {
		t.Fatalf("resolve after the run ended: %d", code)
	}
	eventually(t, time.Minute, "Pieter's persona linked to his contact", func() bool {
		parent, _ := personaParent(s, samples.PieterXID)
		return parent == pieter
	})
	eventually(t, time.Minute, "the review resolved by admin", func() bool {
		r, err := s.Store.GetReview(ctx, review.ID)
		return err == nil && r.Status == store.ReviewResolved && r.ResolvedBy == "admin" && r.ResolvedContactID == pieter
	})
	for _, p := range s.Sandbox.Records("SocialPost") {
		if p["ExternalPostId"] == "1790000000000000301" && p["WhoId"] != pieter {
			t.Errorf("Pieter's DM names %v, want his contact", p["WhoId"])
		}
	}
	if cs := contactConversations(s, pieter); len(cs) != 1 || cs[0].ID != review.ConversationID {
		t.Errorf("Pieter's contact's conversations: %+v", cs)
	}
}

// TestWrongLinkRelinkedThroughAReview has the agent resolve the household
// review with the wrong member; Pieter then sends his e-mail address, which
// points to his own contact, so the conflict goes to review, and the agent
// chooses Pieter. Marieke's erasure then leaves Pieter's conversation and
// his link alone.
func TestWrongLinkRelinkedThroughAReview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := start(t, stackOptions{})
	syncSanne(t, s)
	review, pieter, marieke := household(t, s)
	conv := review.ConversationID
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/reviews/"+review.ID+"/resolve", map[string]any{"contact_id": marieke}, nil); code/100 != 2 {
		t.Fatalf("resolve: %d", code)
	}
	eventually(t, time.Minute, "Pieter's persona linked to Marieke", func() bool {
		parent, _ := personaParent(s, samples.PieterXID)
		return parent == marieke
	})
	// The store records the resolution after the CRM link.
	eventually(t, time.Minute, "the first review resolved in the store", func() bool {
		r, err := s.Store.GetReview(ctx, review.ID)
		return err == nil && r.Status == store.ReviewResolved
	})

	ev := schemas.Event{Kind: schemas.KindMessage, Channel: schemas.ChannelX, ConversationKey: "x:dm:" + samples.XBrandID + ":" + samples.PieterXID,
		Direction: schemas.Inbound, Visibility: schemas.Private, PlatformMessageID: "1790000000000000311",
		Author: schemas.Author{PlatformUserID: samples.PieterXID, Handle: "pjansen"}, Text: "Mijn e-mailadres is pieter.jansen@example.nl",
		OccurredAt: time.Now().UTC(), Brand: schemas.BrandAccount{ID: samples.XBrandID}}
	body, _ := json.Marshal(map[string]any{"events": []schemas.Event{ev}})
	if code, b, err := s.hooks.Post(ctx, "generic", body); err != nil || code != 200 {
		t.Fatalf("Pieter's e-mail: %d %s %v", code, b, err)
	}
	var second app.ReviewView
	eventually(t, time.Minute, "the conflicting evidence in the review queue", func() bool {
		var list []app.ReviewView
		api(t, s, s.Secrets.AdminToken, "GET", "/v1/reviews", nil, &list)
		for _, r := range list {
			if r.Status == store.ReviewOpen && r.ConversationID == conv && r.ID != review.ID {
				second = r
				return true
			}
		}
		return false
	})
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/reviews/"+second.ID+"/resolve", map[string]any{"contact_id": pieter}, nil); code/100 != 2 {
		t.Fatalf("resolve the second review: %d", code)
	}
	eventually(t, time.Minute, "Pieter's conversation under his own contact's subject, none under Marieke's", func() bool {
		cs := contactConversations(s, pieter)
		return len(cs) == 1 && cs[0].ID == conv && len(contactConversations(s, marieke)) == 0
	})
	if parent, _ := personaParent(s, samples.PieterXID); parent != pieter {
		t.Errorf("Pieter's persona has ParentId %s after the relink, want his contact", parent)
	}

	eraseWith(t, s, map[string]any{"email": "marieke.jansen@example.nl"})
	for _, id := range []string{"1790000000000000301", "1790000000000000311"} {
		if n := countWhere(s, "SocialPost", "ExternalPostId", id); n != 1 {
			t.Errorf("Pieter's post %s in the CRM after Marieke's erasure: %d, want 1", id, n)
		}
	}
	if parent, _ := personaParent(s, samples.PieterXID); parent != pieter {
		t.Errorf("Pieter's persona has ParentId %q after Marieke's erasure, want his contact", parent)
	}
	if cs := contactConversations(s, pieter); len(cs) != 1 || cs[0].ID != conv {
		t.Errorf("Pieter's conversations in the store after Marieke's erasure: %+v", cs)
	}
}
