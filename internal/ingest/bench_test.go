package ingest

import (
	"context"
	"strconv"
	"testing"

	"github.com/webcaresync/webcaresync/schemas"
)

// BenchmarkIngestAck measures the webhook's ack path with the durable
// inbox: one event per call, as X and Meta post them, into a SQLite store.
// "dm" is a direct message (no reply-to lookup); "reply" is a public reply
// to a tweet claimed earlier, which needs the lookup of that tweet's
// conversation; "root" is a public tweet that answers nothing.
func BenchmarkIngestAck(b *testing.B) {
	for _, kind := range []string{"dm", "root", "reply"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			in, _ := newIngestor(b, b.TempDir(), &fakeClient{}, &fakeSealer{})
			parent := event("x:thread:p", "p")
			parent.Visibility = schemas.Public
			if _, err := in.Ingest(ctx, []schemas.Event{parent}, Options{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				id := strconv.Itoa(i)
				e := event("x:dm:1:2", "m"+id)
				switch kind {
				case "root":
					e.ConversationKey, e.Visibility = "x:thread:r"+id, schemas.Public
				case "reply":
					e.ConversationKey, e.Visibility, e.ReplyToID = "x:thread:r"+id, schemas.Public, "p"
				}
				res, err := in.Ingest(ctx, []schemas.Event{e}, Options{})
				if err != nil || res.Accepted != 1 {
					b.Fatalf("Ingest = %+v, %v", res, err)
				}
			}
		})
	}
}
