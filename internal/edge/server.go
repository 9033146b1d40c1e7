package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
)

// Check is one readiness dependency: Temporal, the store.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Server is the HTTP edge.
type Server struct {
	// Channels are the webhook sources, served at /webhooks/{name}.
	Channels []channels.Channel
	Ingest   Ingester
	Tokens   *Tokens
	DSR      DSRService
	Reviews  ReviewService
	Audit    store.Audit
	// Ready lists what /readyz checks.
	Ready    []Check
	Gatherer prometheus.Gatherer
	Metrics  *metrics.Metrics
	// Extra handlers mounted as is, such as the codec endpoint.
	Extra map[string]http.Handler
	Log   *zap.Logger
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, ch := range s.Channels {
		h := &webhook{ch: ch, ingest: s.Ingest, metrics: s.Metrics, log: s.Log}
		mux.Handle("GET /webhooks/"+ch.Name(), h)
		mux.Handle("POST /webhooks/"+ch.Name(), h)
	}
	mux.HandleFunc("POST /webhooks/{unknown}", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "unknown webhook channel; use one of /webhooks/meta, /webhooks/x or /webhooks/generic", "")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	}
	if s.DSR != nil || s.Reviews != nil {
		(&api{tokens: s.Tokens, dsr: s.DSR, reviews: s.Reviews, audit: s.Audit, log: s.Log}).register(mux)
	}
	for pattern, h := range s.Extra {
		mux.Handle(pattern, h)
	}
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	out := map[string]string{}
	code := http.StatusOK
	for _, c := range s.Ready {
		if err := c.Fn(ctx); err != nil {
			out[c.Name] = "unreachable"
			code = http.StatusServiceUnavailable
			continue
		}
		out[c.Name] = "ok"
	}
	writeJSON(w, code, out)
}

// Serve listens on ln until ctx ends, then stops taking connections and
// waits up to 30 seconds for in-flight requests (webhooks being handed to
// Temporal) to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *zap.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(log),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
