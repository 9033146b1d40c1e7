package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// get requests path from h and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// TestHealthAndReadiness checks the probes an orchestrator relies on:
// /healthz answers while the process runs, /readyz answers 503 and names
// the dependency that is down, and /metrics serves the registry.
func TestHealthAndReadiness(t *testing.T) {
	temporalUp := true
	reg := prometheus.NewRegistry()
	probe := prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_test_probe_total", Help: "A counter this test looks for."})
	reg.MustRegister(probe)
	probe.Inc()
	s := &Server{
		Ready: []Check{
			{Name: "temporal", Fn: func(context.Context) error {
				if temporalUp {
					return nil
				}
				return errors.New("connection refused")
			}},
			{Name: "store", Fn: func(context.Context) error { return nil }},
		},
		Gatherer: reg,
		Log:      zap.NewNop(),
	}
	h := s.Handler()

	if code, body := get(t, h, "/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz = %d %s, want 200 ok", code, body)
	}
	code, body := get(t, h, "/readyz")
	if code != http.StatusOK {
		t.Fatalf("/readyz with every dependency up = %d %s, want 200", code, body)
	}

	temporalUp = false
	code, body = get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Temporal down = %d, want 503", code)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/readyz body is not JSON: %v", err)
	}
	if got["temporal"] != "unreachable" || got["store"] != "ok" {
		t.Fatalf("/readyz = %v, want temporal unreachable and store ok", got)
	}
	if strings.Contains(body, "connection refused") {
		t.Errorf("/readyz passes the dependency's error text on: %s", body)
	}

	code, body = get(t, h, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "webcaresync_test_probe_total 1") {
		t.Fatalf("/metrics = %d, want 200 with the registry's series; got:\n%s", code, body)
	}
}

// TestServeDrainsInFlightRequests stops the server while a webhook is
// being handled: that request still gets its answer, and the listener
// takes no new connections.
func TestServeDrainsInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "acknowledged")
	})
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, zap.NewNop()) }()

	url := "http://" + ln.Addr().String() + "/webhooks/generic"
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader("{}"))
		if err != nil {
			answer <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- resp.Status + " " + string(b)
	}()
	<-entered
	stop()
	// Shutdown closes the listener first; wait until it refuses.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections after shutdown began")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) before the in-flight request finished", err)
	default:
	}
	close(release)
	if got := <-answer; got != "200 OK acknowledged" {
		t.Fatalf("the in-flight request got %q, want its 200 answer", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after a clean drain: %v", err)
	}
}
