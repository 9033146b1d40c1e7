package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/webcaresync/webcaresync/activities/platforms/platformtest"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/store"
)

// TestErasureSweepsUpAMessageThatArrivesWhileItRuns erases Sanne while she
// writes again: the erasure has stopped her conversations and erased the
// CRM, and then waits, escalated, because X refuses the brand's API token
// at erase-platforms. Her new DM starts a new run of her X conversation,
// which writes a new persona, post and case to the CRM after the CRM was
// erased. Once the token is fixed and the step retried, the erasure's
// final discovery finds what the late message left, a sweep erases it,
// and the request completes with nothing of hers left. The hold is an
// escalation, not a timer, so the message always arrives inside it.
func TestErasureSweepsUpAMessageThatArrivesWhileItRuns(t *testing.T) {
	t.Parallel()
	xURL, xAPI := platformtest.NewX(t)
	s := start(t, stackOptions{cfg: func(c *config.Config) {
		c.Platforms.XBaseURL = xURL
		c.Platforms.XToken = platformtest.XToken
	}})
	ctx := context.Background()
	contact := syncSanne(t, s)
	conv := s.Ingestor.ConversationID(sanneXDM("0", ""))

	id := openDSR(t, s, "erasure")
	waitStatus(t, s, id, "awaiting_approval", time.Minute)
	xAPI.SetToken("revoked")
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	st := waitStatus(t, s, id, "escalated", 2*time.Minute)
	if !strings.Contains(st.Escalation, "erase-platforms") {
		t.Fatalf("the erasure escalated at %q, want erase-platforms (after the CRM was erased)", st.Escalation)
	}
	if left := sanneLeft(s, contact); len(left) > 0 {
		t.Fatalf("the CRM still holds before the late message: %v", left)
	}

	late := "Ik heb nog een vraag over mijn bestelling, kunnen jullie me terugbellen?"
	body, _ := json.Marshal(map[string]any{"events": []any{sanneXDM("1790000000000000998", late)}})
	if code, b, err := s.hooks.Post(ctx, "generic", body); err != nil || code != 200 {
		t.Fatalf("late message: %d %s %v", code, b, err)
	}
	eventually(t, time.Minute, "the late message in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", late) == 1 })

	xAPI.SetToken(platformtest.XToken)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/retry", nil, nil); code != 200 {
		t.Fatalf("retry: %d", code)
	}
	st = waitStatus(t, s, id, "completed", 3*time.Minute)

	if left := sanneLeft(s, contact, late); len(left) > 0 {
		t.Errorf("the CRM still holds: %v", left)
	}
	if _, err := s.Store.GetConversation(ctx, conv); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the late message's conversation is still in the store: %v", err)
	}
	_, err := s.Client.DescribeWorkflowExecution(ctx, conv, "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("the late message's conversation run is still in Temporal after the erasure completed: %v", err)
	}
	swept := 0
	for _, e := range st.Ledger {
		if e.Action == store.LedgerErased && strings.HasPrefix(e.Detail, "late items") {
			swept += e.Count
		}
	}
	if swept == 0 {
		t.Errorf("the ledger records no sweep of late items")
	}
}
