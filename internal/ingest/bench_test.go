package ingest

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
	"github.com/webcaresync/webcaresync/schemas"
)

// BenchmarkIngestAck measures the webhook's ack path with the durable
// inbox: one event per call, as X and Meta post them, into a SQLite store
// (and PostgreSQL when WEBCARESYNC_TEST_POSTGRES is set). "dm" is a direct
// message and "root" a public tweet that answers nothing (no lookup);
// "reply" is a public reply to a tweet claimed earlier, which costs the
// lookup of that tweet's conversation.
func BenchmarkIngestAck(b *testing.B) {
	backends := []func(testing.TB) (storetest.Backend, bool){
		func(tb testing.TB) (storetest.Backend, bool) { return storetest.SQLite(tb), true },
		storetest.Postgres,
	}
	for i, name := range []string{store.BackendSQLite, store.BackendPostgres} {
		for _, kind := range []string{"dm", "root", "reply"} {
			b.Run(name+"/"+kind, func(b *testing.B) {
				// A fresh database per run: the benchmark runs again with a
				// larger b.N, and the message ids repeat.
				backend, ok := backends[i](b)
				if !ok {
					b.Skip("set " + storetest.EnvPostgres + " to benchmark PostgreSQL")
				}
				ctx := context.Background()
				in := &Ingestor{Client: &fakeClient{}, Store: backend.Open(b, store.Options{}), IDs: fakeIDs{}, TaskQueue: "q",
					Sealer: &fakeSealer{}, Metrics: metrics.New(prometheus.NewRegistry()), Log: zap.NewNop()}
				parent := event("x:thread:p", "p")
				parent.Visibility = schemas.Public
				if _, err := in.Ingest(ctx, []schemas.Event{parent}, Options{}); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					id := kind + strconv.Itoa(i)
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
}
