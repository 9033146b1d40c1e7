package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/temporalserver"
	"github.com/webcaresync/webcaresync/schemas"
)

func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(p)
	return ln.Addr().String(), port
}

// externalParts runs serve and worker against a separately started
// Temporal server, as in production.
var externalParts = app.Parts{EphemeralPorts: true, Sandbox: true, Worker: true, HTTP: true, DevSecrets: true, ConversationIdle: time.Hour}

// TestTemporalDownGets503ThenRetriesDeliver stops Temporal under a running
// serve+worker: webhooks get 503 and nothing is acknowledged; after
// Temporal restarts, the platform's retries deliver every message once.
// It runs with direct signalling and with the durable inbox (the default),
// whose health check turns webhooks away while Temporal is down.
func TestTemporalDownGets503ThenRetriesDeliver(t *testing.T) {
	t.Parallel()
	for _, inbox := range []bool{false, true} {
		t.Run(fmt.Sprintf("inbox=%v", inbox), func(t *testing.T) { temporalDown(t, inbox) })
	}
}

func temporalDown(t *testing.T, inbox bool) {
	tdir := t.TempDir()
	addr, port := freeAddr(t)
	opts := temporalserver.Options{DataDir: tdir, FrontendPort: port, SearchAttributes: searchAttributes()}
	srv, err := temporalserver.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	parts := externalParts
	parts.Inbox = inbox
	s := start(t, stackOptions{temporalAddr: addr, parts: &parts})
	ctx := context.Background()
	convs := samples.Conversations()
	first := convs[0].Payloads[0]
	if code, body, err := s.hooks.Post(ctx, first.Channel, first.Body); err != nil || code != 200 {
		t.Fatalf("with Temporal up: %d %s %v", code, body, err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	var pending []samples.Payload
	for _, c := range convs[1:3] {
		pending = append(pending, c.Payloads...)
	}
	if inbox {
		// The health check needs a moment to notice; a webhook accepted
		// before that is durable in the inbox and counted below.
		probe := convs[3].Payloads[0]
		pending = append(pending, probe)
		eventually(t, 30*time.Second, "webhooks turned away", func() bool {
			code, _, _ := s.hooks.Post(ctx, probe.Channel, probe.Body)
			return code == http.StatusServiceUnavailable
		})
	}
	for _, p := range pending {
		code, body, err := s.hooks.Post(ctx, p.Channel, p.Body)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("with Temporal down: %d %s, want 503", code, body)
		}
	}
	srv, err = temporalserver.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	// The platform retries every refused delivery.
	for _, p := range pending {
		eventually(t, 60*time.Second, "Temporal to accept a retried webhook", func() bool {
			code, _, _ := s.hooks.Post(ctx, p.Channel, p.Body)
			return code == 200
		})
	}
	want := 1
	for _, p := range pending {
		n, _ := countMessages(p)
		want += n
	}
	eventually(t, 60*time.Second, "every message in the CRM", func() bool { return len(s.Sandbox.Records("SocialPost")) >= want })
	time.Sleep(500 * time.Millisecond)
	if got := len(s.Sandbox.Records("SocialPost")); got != want {
		t.Fatalf("%d posts, want exactly %d", got, want)
	}
}

// TestImportIsResumableAndIdempotent imports 10,000 events, interrupts the
// import, runs it again, and checks that exactly 10,000 reach the CRM.
func TestImportIsResumableAndIdempotent(t *testing.T) {
	t.Parallel()
	s := start(t, stackOptions{})
	path := filepath.Join(t.TempDir(), "backfill.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	const convs, per = 50, 200
	base := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	for c := range convs {
		for m := range per {
			e := schemas.Event{
				Kind: schemas.KindMessage, Channel: schemas.ChannelLivechat,
				ConversationKey: fmt.Sprintf("livechat:backfill:%d", c), Direction: schemas.Inbound, Visibility: schemas.Private,
				PlatformMessageID: fmt.Sprintf("bf-%d-%d", c, m), Author: schemas.Author{PlatformUserID: fmt.Sprintf("visitor-%d", c)},
				Text: fmt.Sprintf("Bericht %d: waar blijft mijn pakket? 📦", m), OccurredAt: base.Add(time.Duration(m) * time.Second),
				Brand: schemas.BrandAccount{ID: "webshop"},
			}
			if err := enc.Encode(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var progressed int64
	res, err := ingest.ImportJSONL(ctx, s.Ingestor, s.Store, path, func(done, total int64) {
		progressed = done
		if done > total/3 {
			cancel() // Ctrl-C a third of the way in.
		}
	})
	if err == nil {
		t.Fatal("the interrupted import reported success")
	}
	if progressed == 0 || res.Accepted == 0 || res.Accepted >= convs*per {
		t.Fatalf("interrupted import: progress %d, accepted %d", progressed, res.Accepted)
	}
	first := res.Accepted
	res, err = ingest.ImportJSONL(context.Background(), s.Ingestor, s.Store, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed == 0 {
		t.Error("the second run did not resume from the checkpoint")
	}
	if first+res.Accepted != convs*per {
		t.Errorf("accepted %d + %d, want %d in all", first, res.Accepted, convs*per)
	}
	eventually(t, 3*time.Minute, "10,000 posts in the CRM", func() bool { return len(s.Sandbox.Records("SocialPost")) >= convs*per })
	time.Sleep(time.Second)
	if got := len(s.Sandbox.Records("SocialPost")); got != convs*per {
		t.Fatalf("%d posts, want exactly %d", got, convs*per)
	}
	// A third run delivers nothing new.
	res, err = ingest.ImportJSONL(context.Background(), s.Ingestor, s.Store, path, nil)
	if err != nil || res.Accepted != 0 {
		t.Fatalf("re-import: accepted %d, %v", res.Accepted, err)
	}
}

func countMessages(p samples.Payload) (int, error) {
	n := 0
	for _, c := range samples.Conversations() {
		for _, q := range c.Payloads {
			if string(q.Body) == string(p.Body) {
				for _, e := range parsePayload(q) {
					if e.Kind == schemas.KindMessage {
						n++
					}
				}
			}
		}
	}
	return n, nil
}
