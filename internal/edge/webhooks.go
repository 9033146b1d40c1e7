// Package edge is webcaresync's HTTP server: the signed webhooks of every
// channel, the /v1 API for data-subject requests and identity reviews, and
// the health and metrics endpoints. It only verifies, parses and hands
// events on; everything durable happens behind the ingest package.
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/channels"
	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/schemas"
)

// MaxBody is the largest webhook body accepted: 1 MiB.
const MaxBody = 1 << 20

// Ingester is what the webhooks hand verified events to.
type Ingester interface {
	Ingest(ctx context.Context, events []schemas.Event, opts ingest.Options) (ingest.Result, error)
}

// webhook serves one channel's GET handshake and POST events.
type webhook struct {
	ch      channels.Channel
	ingest  Ingester
	metrics *metrics.Metrics
	log     *zap.Logger
}

// errorBody is the JSON body of every 4xx and 5xx answer.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg, field string) {
	writeJSON(w, code, errorBody{Error: msg, Field: field})
}

// ServeHTTP answers the handshake on GET and takes events on POST. It
// answers 200 only after Temporal has durably accepted every event.
func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := h.serve(w, r)
	h.metrics.WebhookRequests.WithLabelValues(h.ch.Name(), strconv.Itoa(code)).Inc()
}

func (h *webhook) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method == http.MethodGet {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ch.Handshake(rec, r)
		return rec.code
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body exceeds 1 MiB; split the batch", "")
			return http.StatusRequestEntityTooLarge
		}
		writeError(w, http.StatusBadRequest, "cannot read the request body", "")
		return http.StatusBadRequest
	}
	if err := h.ch.Verify(r, body); err != nil {
		writeError(w, http.StatusUnauthorized, err.Error(), "")
		return http.StatusUnauthorized
	}
	events, err := h.ch.Parse(body)
	if err != nil {
		var bad *channels.BadRequest
		if errors.As(err, &bad) {
			writeError(w, http.StatusBadRequest, bad.Message, bad.Field)
			return http.StatusBadRequest
		}
		writeError(w, http.StatusBadRequest, "the body cannot be parsed", "")
		return http.StatusBadRequest
	}
	res, err := h.ingest.Ingest(r.Context(), events, ingest.Options{})
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "events were not accepted; retry later", "")
		return http.StatusServiceUnavailable
	}
	writeJSON(w, http.StatusOK, map[string]int{"accepted": res.Accepted, "duplicates": res.Duplicates})
	return http.StatusOK
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
