package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webcaresync/webcaresync/activities/crm/salesforce"
	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/channels/generic"
	"github.com/webcaresync/webcaresync/internal/sfsandbox"
	"github.com/webcaresync/webcaresync/internal/webhookclient"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// naive is the baseline a user would write without webcaresync: the
// webhook handler verifies and parses like the edge, then writes each
// message to Salesforce with three REST calls (case, post, persona upserts)
// before it answers. No Temporal, no batching, no durability. To be fair to
// it, it never has more calls in flight than the org's concurrency cap,
// so it is not refused for exceeding it.
type naive struct {
	ch     *generic.Channel
	sf     *salesforce.Client
	m      *mappings.Mapping
	convID func(schemas.Event) string
	sem    chan struct{}
	seen   sync.Map // external ids already created: create-only fields are left out
}

func (h *naive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	if err := h.ch.Verify(r, body); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	events, err := h.ch.Parse(body)
	if err != nil {
		http.Error(w, "cannot parse the body", http.StatusBadRequest)
		return
	}
	for _, e := range events {
		if err := h.sync(r.Context(), e); err != nil {
			http.Error(w, "salesforce refused; retry later", http.StatusServiceUnavailable)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// call runs one REST call under the concurrency cap.
func (h *naive) call(fn func() error) error {
	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	return fn()
}

// fields is the mapped record of object, without create-only fields when
// the record was created before.
func (h *naive) fields(object, ext string, vars mappings.Vars) (salesforce.Record, error) {
	rec, err := h.m.Record(object, vars)
	if err != nil {
		return nil, err
	}
	if _, ok := h.seen.Load(ext); ok {
		for _, f := range h.m.CreateOnly(object) {
			delete(rec, f)
		}
	}
	return rec, nil
}

func (h *naive) sync(ctx context.Context, e schemas.Event) error {
	conv := h.convID(e)
	vars := mappings.EventVars(conv, e)
	caseObj, postObj, personaObj := h.m.Object(mappings.ObjectCase), h.m.Object(mappings.ObjectPost), h.m.Object(mappings.ObjectPersona)
	sum := sha256.Sum256([]byte("bench-case|" + conv))
	caseExt := "ca-" + hex.EncodeToString(sum[:20])
	caseRec, err := h.fields(mappings.ObjectCase, caseExt, vars)
	if err != nil {
		return err
	}
	var caseRes, postRes salesforce.UpsertResult
	if err := h.call(func() (err error) {
		caseRes, err = h.sf.Upsert(ctx, caseObj.SObject, caseObj.ExternalIDField, caseExt, caseRec)
		return err
	}); err != nil {
		return err
	}
	h.seen.Store(caseExt, true)
	postExt := salesforce.PostExternalID(e.Channel, e.PlatformMessageID)
	postRec, err := h.fields(mappings.ObjectPost, postExt, vars)
	if err != nil {
		return err
	}
	if f := postObj.Link("case"); f != "" && caseRes.ID != "" {
		postRec[f] = caseRes.ID
	}
	if err := h.call(func() (err error) {
		postRes, err = h.sf.Upsert(ctx, postObj.SObject, postObj.ExternalIDField, postExt, postRec)
		return err
	}); err != nil {
		return err
	}
	h.seen.Store(postExt, true)
	personaExt := salesforce.PersonaExternalID(e.Channel, e.Author.PlatformUserID)
	personaRec, err := h.fields(mappings.ObjectPersona, personaExt, vars)
	if err != nil {
		return err
	}
	if f := personaObj.Link("contact"); f != "" && postRes.ID != "" {
		personaRec[f] = postRes.ID
	}
	if err := h.call(func() error {
		_, err := h.sf.Upsert(ctx, personaObj.SObject, personaObj.ExternalIDField, personaExt, personaRec)
		return err
	}); err != nil {
		return err
	}
	h.seen.Store(personaExt, true)
	return nil
}

// serve runs h on a loopback listener and returns its URL and stop.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("cannot listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// naiveSync measures the naive baseline on its own sandbox with the same
// latency and cap as webcaresync's.
func naiveSync(ctx context.Context, a *app.App, sbOpts sfsandbox.Options, opts Options, run string, n int) (Figures, error) {
	convs := opts.Conversations
	per := max(1, n/convs)
	l := newLoad(run, convs, per)
	sbOpts.OnWrite = l.onWrite
	sbOpts.ClientID, sbOpts.ClientSecret = "bench-naive", "bench-naive-secret"
	for _, cf := range a.Mapping.CustomFields() {
		sbOpts.CustomFields = append(sbOpts.CustomFields, sfsandbox.CustomField{
			Object: cf.Object, Name: cf.Name, Type: cf.Type, Length: cf.Length, ExternalID: cf.ExternalID, Unique: cf.Unique,
		})
	}
	sb, err := sfsandbox.New(sbOpts)
	if err != nil {
		return Figures{}, err
	}
	defer sb.Close()
	sbURL, stopSB, err := serve(sb.Handler())
	if err != nil {
		return Figures{}, err
	}
	defer stopSB()
	sf, err := salesforce.NewClient(salesforce.Config{LoginURL: sbURL, ClientID: sbOpts.ClientID, ClientSecret: sbOpts.ClientSecret},
		prometheus.NewRegistry(), opts.Log.Named("naive"))
	if err != nil {
		return Figures{}, err
	}
	cap := opts.ConcurrencyCap
	if cap <= 0 {
		cap = 1 << 16
	}
	h := &naive{ch: generic.New(a.Cfg.GenericSecret, time.Now), sf: sf, m: a.Mapping, convID: a.Ingestor.ConversationID, sem: make(chan struct{}, cap)}
	url, stop, err := serve(h)
	if err != nil {
		return Figures{}, err
	}
	defer stop()
	hooks := webhookclient.New(url, webhookclient.Secrets{GenericSecret: a.Cfg.GenericSecret}, 10)
	calls0 := sb.TotalCalls()
	rss := startRSS("")
	sent := l.send(ctx, hooks, run, opts.Senders, 0, 0)
	l.waitVisible(ctx, opts.Timeout)
	f := l.figures(sent, sb.TotalCalls()-calls0)
	f.RSSMB, _ = rss.peakMB()
	f.Duplicated = max(f.Duplicated, l.duplicatesIn(sb.Records("SocialPost")))
	if f.Messages > 0 && f.Failed == int64(f.Messages) {
		return f, errors.New("every naive webhook failed; the baseline is broken")
	}
	return f, nil
}
