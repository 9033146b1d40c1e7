package workflows

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// recordedHistories are the histories that `go run ./workflows/testdata/record`
// writes: a conversation (budget pause, identity review, FlushInterval
// version marker, continue-as-new) with its continued run, a conversation
// whose batches the CRM refuses as a whole (one held and written, one
// parked; refused-batch version marker), and access,
// erasure (approval, reminder, extension) and escalation (permanent
// failure, retry) requests.
var recordedHistories = []string{
	"conversation.json",
	"conversation-continued.json",
	"conversation-refused.json",
	"dsr-access.json",
	"dsr-erasure.json",
	"dsr-escalation.json",
}

// TestReplayRecordedHistories replays histories recorded against a real
// server with today's workflow code. It fails when a change alters the
// commands a workflow issues (an activity or timer added, removed or
// reordered) without a version gate: running workflows would fail with a
// nondeterminism error after a deploy. When a change is meant to alter
// them, gate it with workflow.GetVersion: these histories stand for the
// runs still open at the deploy and must keep replaying.
func TestReplayRecordedHistories(t *testing.T) {
	for _, name := range recordedHistories {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", name))
			require.NoError(t, err, "record the histories with `go run ./workflows/testdata/record`")
			defer f.Close()
			hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			require.NoError(t, err)
			require.NotEmpty(t, hist.Events)

			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(Conversation, workflow.RegisterOptions{Name: "Conversation"})
			replayer.RegisterWorkflowWithOptions(DSR, workflow.RegisterOptions{Name: "DSR"})
			logger := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
			require.NoError(t, replayer.ReplayWorkflowHistory(logger, hist))
		})
	}
}
