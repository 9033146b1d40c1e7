package bench

import (
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm/salesforce"
	"github.com/webcaresync/webcaresync/schemas"
)

func TestPercentile(t *testing.T) {
	vals := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if got := percentile(vals, 50); got != 5 {
		t.Errorf("p50 = %v; want 5", got)
	}
	if got := percentile(vals, 99); got != 10 {
		t.Errorf("p99 = %v; want 10", got)
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v; want 0", got)
	}
}

// write reports message k's SocialPost to the observer as record id.
func write(l *load, run string, k int, id string) {
	l.onWrite("SocialPost", id, map[string]any{"Id": id, postExtIDField: salesforce.PostExternalID(schemas.ChannelGeneric, msgID(run, k))})
}

func TestFiguresCountLostAndDuplicated(t *testing.T) {
	l := newLoad("t", 2, 2) // four messages
	now := time.Now().UnixNano()
	for k := range 4 {
		l.sent[k] = now
	}
	// 0: acked and visible once; 1: acked and written twice as two records
	// (a duplicate); 2: acked, never visible (lost); 3: never acked.
	for _, k := range []int{0, 1, 2} {
		l.acked[k] = now + int64(time.Millisecond)
		l.nAcked.Add(1)
	}
	write(l, "t", 0, "0ST000000000001AAA")
	write(l, "t", 0, "0ST000000000001AAA") // an update of the same record is no duplicate
	write(l, "t", 1, "0ST000000000002AAA")
	write(l, "t", 1, "0ST000000000003AAA")
	l.onWrite("SocialPersona", "0SP000000000001AAA", map[string]any{postExtIDField: "x"})
	f := l.figures(4, 2)
	if f.Lost != 1 || f.Duplicated != 1 {
		t.Errorf("lost %d, duplicated %d; want 1 and 1", f.Lost, f.Duplicated)
	}
	if f.MsgsPerCRMCall != 1 {
		t.Errorf("msgs per CRM call = %v; want 2 visible / 2 calls = 1", f.MsgsPerCRMCall)
	}
	recs := []map[string]any{
		{postExtIDField: salesforce.PostExternalID(schemas.ChannelGeneric, msgID("t", 3))},
		{postExtIDField: salesforce.PostExternalID(schemas.ChannelGeneric, msgID("t", 3))},
		{postExtIDField: salesforce.PostExternalID(schemas.ChannelGeneric, msgID("t", 0))},
	}
	if n := l.duplicatesIn(recs); n != 1 {
		t.Errorf("duplicatesIn = %d; want 1", n)
	}
}

func TestEventsAreValidAndSpreadOverConversations(t *testing.T) {
	seen := map[string]bool{}
	for k := range 6 {
		e := event("r", k, 3)
		if err := schemas.ValidateEvent(e); err != nil {
			t.Fatalf("event %d is invalid: %v", k, err)
		}
		seen[e.ConversationKey] = true
	}
	if len(seen) != 3 {
		t.Errorf("6 messages over 3 conversations used %d conversations", len(seen))
	}
}
