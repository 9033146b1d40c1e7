package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/config"
)

// TestErasureWaitingAtTheCRMStepErasesWhatArrivedMeanwhile erases Sanne
// with hard deletes required while the integration user lacks the Bulk API
// Hard Delete permission: the erasure has stopped her conversations and
// waits, escalated, at erase-crm with nothing deleted yet. She writes again
// meanwhile; the new run writes its post against her persona, which still
// exists. When the permission is granted and the step retried, erase-crm
// asks the CRM again and erases that post too, instead of deleting only
// what the discovery saw and leaving the new post orphaned where no later
// discovery can find it.
func TestErasureWaitingAtTheCRMStepErasesWhatArrivedMeanwhile(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{cfg: func(c *config.Config) { c.Salesforce.HardDelete = "bulk" }})
	ctx := context.Background()
	contact := syncSanne(t, s)
	s.Sandbox.SetBulkHardDelete(false)
	id := openDSR(t, s, "erasure")
	waitStatus(t, s, id, "awaiting_approval", time.Minute)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	st := waitStatus(t, s, id, "escalated", 2*time.Minute)
	if !strings.Contains(st.Escalation, "erase-crm") {
		t.Fatalf("the erasure escalated at %q, want erase-crm", st.Escalation)
	}

	late := "Nog even over mijn retour: wanneer krijg ik mijn geld terug?"
	body, _ := json.Marshal(map[string]any{"events": []any{sanneXDM("1790000000000000997", late)}})
	if code, b, err := s.hooks.Post(ctx, "generic", body); err != nil || code != 200 {
		t.Fatalf("late message: %d %s %v", code, b, err)
	}
	eventually(t, time.Minute, "the late message in the CRM", func() bool { return countWhere(s, "SocialPost", "Content", late) == 1 })

	s.Sandbox.SetBulkHardDelete(true)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+id+"/retry", nil, nil); code != 200 {
		t.Fatalf("retry: %d", code)
	}
	waitStatus(t, s, id, "completed", 3*time.Minute)
	if left := sanneLeft(s, contact, late); len(left) > 0 {
		t.Errorf("the CRM still holds: %v", left)
	}
}
