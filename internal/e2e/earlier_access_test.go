package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
)

// TestErasureAlsoErasesEarlierAccessRequests answers an access request for
// Sanne, then erases her: the access request's export and its Temporal
// history held what it found, so after the erasure the export answers 410
// and every payload of that request fails with ErrErased, even with the
// master key, while its status and ledger stay.
func TestErasureAlsoErasesEarlierAccessRequests(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	ctx := context.Background()
	syncSanne(t, s)

	access := openDSR(t, s, "access")
	waitStatus(t, s, access, "completed", 2*time.Minute)
	var export map[string]any
	if code := api(t, s, s.Secrets.AdminToken, "GET", "/v1/dsr/"+access+"/report", nil, &export); code != 200 {
		t.Fatalf("the access export before the erasure: %d", code)
	}
	recorded := history(ctx, t, s.App, access)
	mine := 0
	for _, p := range recorded {
		if string(p.GetMetadata()[privacy.MetadataKeyID]) == access {
			mine++
		}
	}
	if mine == 0 {
		t.Fatalf("none of the access request's %d payloads is under its own key, so the check below proves nothing", len(recorded))
	}

	erasure := openDSR(t, s, "erasure")
	waitStatus(t, s, erasure, "awaiting_approval", time.Minute)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+erasure+"/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	st := waitStatus(t, s, erasure, "completed", 2*time.Minute)
	found := false
	for _, e := range st.Ledger {
		if strings.HasPrefix(e.Detail, "earlier access requests") && e.Action == store.LedgerErased && e.Count == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("the erasure's ledger does not record the earlier access request: %+v", st.Ledger)
	}

	var body map[string]any
	if code := api(t, s, s.Secrets.AdminToken, "GET", "/v1/dsr/"+access+"/report", nil, &body); code != 410 {
		t.Errorf("the access export after the erasure: %d %v, want 410 Gone", code, body)
	}
	var after dsrStatus
	if code := api(t, s, s.Secrets.AdminToken, "GET", "/v1/dsr/"+access, nil, &after); code != 200 || after.Status != "completed" || len(after.Ledger) == 0 {
		t.Errorf("the access request's status and ledger after the erasure: %d %s, %d rows", code, after.Status, len(after.Ledger))
	}

	mk, err := privacy.LoadMasterKeys(s.Cfg.Secrets.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	dc := privacy.NewDataConverter(privacy.NewKeyring(testKeyStore{s.Store}, mk, nil, privacy.WithCacheTTL(0)))
	for _, p := range history(ctx, t, s.App, access) {
		id := string(p.GetMetadata()[privacy.MetadataKeyID])
		if !strings.HasPrefix(id, access) {
			continue
		}
		var v any
		if err := dc.FromPayload(p, &v); !errors.Is(err, privacy.ErrErased) {
			t.Errorf("a payload of the earlier access request (key %s): %v, want an error wrapping privacy.ErrErased", id, err)
		}
	}
}
