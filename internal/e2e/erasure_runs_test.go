package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/schemas"
)

// runsOf lists the run IDs Temporal's visibility holds for a workflow ID.
func runsOf(t *testing.T, s *stack, workflowID string) []string {
	t.Helper()
	resp, err := s.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: "default", PageSize: 1000, Query: "WorkflowId = '" + workflowID + "'",
	})
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, e := range resp.GetExecutions() {
		runs = append(runs, e.GetExecution().GetRunId())
	}
	return runs
}

// TestErasureDeletesEveryRunOfAConversation lets Sanne's X conversation's
// run end on its idle timeout and has her write again, so that the
// conversation has two runs: the erasure deletes both, not only the
// latest, and the ledger counts both.
func TestErasureDeletesEveryRunOfAConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := start(t, stackOptions{parts: &app.Parts{Embedded: true, InMemoryTemporal: true, EphemeralPorts: true, Sandbox: true,
		Worker: true, HTTP: true, DevSecrets: true, ConversationIdle: 2 * time.Second}})
	contact := syncSanne(t, s)
	dm := parsePayload(samples.Conversations()[0].Payloads[0])[0]
	conv := s.Ingestor.ConversationID(dm)

	eventually(t, time.Minute, "the X conversation's run to end on its idle timeout", func() bool {
		d, err := s.Client.DescribeWorkflowExecution(ctx, conv, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	text := "Is mijn pakket nu echt onderweg?"
	again := dm
	again.PlatformMessageID, again.Text, again.OccurredAt = "1790000000000003001", text, time.Now().UTC().Truncate(time.Second)
	body, _ := json.Marshal(map[string]any{"events": []schemas.Event{again}})
	if code, b, err := s.hooks.Post(ctx, "generic", body); err != nil || code != 200 {
		t.Fatalf("a message after the run ended: %d %s %v, want 200", code, b, err)
	}
	eventually(t, time.Minute, "the new message in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", text) == 1 })
	var runs []string
	eventually(t, time.Minute, "two runs of the X conversation in Temporal's visibility", func() bool {
		runs = runsOf(t, s, conv)
		return len(runs) == 2
	})

	id := openDSR(t, s, "erasure")
	waitStatus(t, s, id, "awaiting_approval", time.Minute)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	st := waitStatus(t, s, id, "completed", 2*time.Minute)
	for _, run := range runs {
		_, err := s.Client.DescribeWorkflowExecution(ctx, conv, run)
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			t.Errorf("run %s of Sanne's X conversation is still in Temporal after the erasure completed: %v", run, err)
		}
	}
	if left := runsOf(t, s, conv); len(left) != 0 {
		t.Errorf("Temporal's visibility still lists runs %v of Sanne's X conversation", left)
	}
	if left := sanneLeft(s, contact, text); len(left) > 0 {
		t.Errorf("the CRM still holds: %v", left)
	}
	// Two runs of the X conversation and at least one of the WhatsApp
	// conversation.
	erased := 0
	for _, e := range st.Ledger {
		if e.System == "temporal" && e.Action == "erased" {
			erased += e.Count
		}
	}
	if erased < len(runs)+1 {
		t.Errorf("the ledger counts %d erased conversation executions; want at least %d (every run)", erased, len(runs)+1)
	}
}
