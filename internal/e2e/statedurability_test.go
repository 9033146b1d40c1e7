package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/schemas"
	"github.com/webcaresync/webcaresync/workflows"
)

// TestConversationStateOutlivesItsRun syncs Sanne's conversations, lets
// her X conversation's run end on the idle timeout, and has her write
// again, answering her last message: the new run continues the stored
// state, so the message joins the conversation's one Case, answers the
// post it answers, names her Contact, and her persona stays parented to
// the Contact instead of going back to a post.
func TestConversationStateOutlivesItsRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := start(t, stackOptions{parts: &app.Parts{Embedded: true, InMemoryTemporal: true, EphemeralPorts: true, Sandbox: true,
		Worker: true, HTTP: true, DevSecrets: true, ConversationIdle: 3 * time.Second}})
	contact := syncSanne(t, s)

	var dm []schemas.Event
	for _, evs := range sanneConversations(t) {
		if evs[0].Channel == schemas.ChannelX {
			dm = evs
		}
	}
	if len(dm) == 0 {
		t.Fatal("found no X conversation of Sanne in the samples")
	}
	conv := s.Ingestor.ConversationID(dm[0])
	if conv != s.Ingestor.ConversationID(sanneXDM("0", "")) {
		t.Fatal("a new DM from Sanne does not go to her X conversation of the samples")
	}
	last := dm[len(dm)-1]
	posts := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, p := range s.Sandbox.Records("SocialPost") {
			out[p["ExternalPostId"].(string)] = p
		}
		return out
	}
	var caseID string
	eventually(t, time.Minute, "the X conversation's posts in its case", func() bool {
		p, ok := posts()[last.PlatformMessageID]
		caseID, _ = p["ParentId"].(string)
		return ok && caseID != ""
	})
	cases := len(s.Sandbox.Records("Case"))

	// The run ends: nothing happened for longer than the idle timeout.
	eventually(t, time.Minute, "the conversation's run to end on its idle timeout", func() bool {
		d, err := s.Client.DescribeWorkflowExecution(ctx, conv, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	ended, err := s.Client.DescribeWorkflowExecution(ctx, conv, "")
	if err != nil {
		t.Fatal(err)
	}
	firstRun := ended.GetWorkflowExecutionInfo().GetExecution().GetRunId()

	// Sanne writes again, answering her last message.
	text := "Ik wacht nog steeds op antwoord over mijn bestelling."
	again := sanneXDM("1790000000000002001", text)
	again.ReplyToID = last.PlatformMessageID
	body, _ := json.Marshal(map[string]any{"events": []schemas.Event{again}})
	if code, b, err := s.hooks.Post(ctx, "generic", body); err != nil || code != 200 {
		t.Fatalf("a message after the run ended: %d %s %v, want 200", code, b, err)
	}
	var post map[string]any
	eventually(t, time.Minute, "the new message in the CRM", func() bool {
		post = posts()[again.PlatformMessageID]
		return post != nil
	})
	// The new run has written its batch and matched it.
	eventually(t, time.Minute, "the new run to finish its batch", func() bool {
		v, err := s.Client.QueryWorkflow(ctx, conv, "", workflows.StateQuery)
		if err != nil {
			return false
		}
		var st workflows.ConversationStatus
		return v.Get(&st) == nil && st.Pending == 0 && st.Synced == 1
	})
	d, err := s.Client.DescribeWorkflowExecution(ctx, conv, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.GetWorkflowExecutionInfo().GetExecution().GetRunId() == firstRun {
		t.Fatal("the message did not start a new run; the test proves nothing")
	}

	if n := len(s.Sandbox.Records("Case")); n != cases {
		t.Errorf("the new run opened %d more Case(s); the conversation's Case is still open", n-cases)
	}
	if post["ParentId"] != caseID {
		t.Errorf("the new message is in Case %v, want the conversation's Case %s", post["ParentId"], caseID)
	}
	if want := posts()[last.PlatformMessageID]["Id"]; post["ReplyToId"] != want {
		t.Errorf("the new message replies to %v, want the post of the message it answers (%v)", post["ReplyToId"], want)
	}
	if post["WhoId"] != contact {
		t.Errorf("the new message names contact %v, want Sanne's Contact %s", post["WhoId"], contact)
	}
	personas := 0
	for _, p := range s.Sandbox.Records("SocialPersona") {
		if p["ExternalId"] != samples.SanneXID {
			continue
		}
		personas++
		if p["ParentId"] != contact {
			t.Errorf("Sanne's X persona is parented to %v after the new run, want her Contact %s", p["ParentId"], contact)
		}
	}
	if personas != 1 {
		t.Errorf("Sanne has %d X personas, want 1", personas)
	}
}
