package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/demo"
	"github.com/webcaresync/webcaresync/internal/logging"
)

// TestDemo runs the README's tour end to end: sync, identity, review,
// access export and erasure, each checked against the sandbox CRM.
func TestDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log, capture := logging.NewCapture()
	var out bytes.Buffer
	sum, err := demo.Run(ctx, demo.Options{DataDir: t.TempDir(), DatabaseURL: databaseURL(t), Out: &out, Log: log, Timeout: 60 * time.Second})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Posts != sum.Events || sum.Events != 19 {
		t.Errorf("posts %d, events %d: want 19 of each", sum.Posts, sum.Events)
	}
	if sum.AutoLinks != 2 || !sum.ReviewResolved || sum.PublicLinked {
		t.Errorf("identity: auto links %d (want 2), review resolved %v, public linked %v", sum.AutoLinks, sum.ReviewResolved, sum.PublicLinked)
	}
	if len(sum.LinkEvidence) != 2 || !strings.Contains(strings.Join(sum.LinkEvidence, " "), "exact-email") || !strings.Contains(strings.Join(sum.LinkEvidence, " "), "exact-phone") {
		t.Errorf("link evidence %v: want the X link by exact e-mail and the WhatsApp link by exact phone", sum.LinkEvidence)
	}
	if sum.AccessItems == 0 || sum.ErasureLedger == 0 || sum.ErasedRemaining != 0 {
		t.Errorf("gdpr: access items %d, ledger rows %d, remaining %d", sum.AccessItems, sum.ErasureLedger, sum.ErasedRemaining)
	}
	for _, pii := range []string{"sanne.devries@example.nl", "+31612345678", "0612345678", "06-12345678", "sannedv", "Sanne de Vries", "Oudegracht", "lotte.visser@example.nl"} {
		if capture.Contains(pii) {
			t.Errorf("the logs contain personal data %q", pii)
		}
	}
}
