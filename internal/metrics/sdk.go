package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdkmetrics "go.temporal.io/sdk/client"
)

// sdkLabels are the Temporal SDK tags kept as Prometheus labels. The SDK's
// tags name namespaces, task queues and workflow and activity types, never
// workflow data; other tags are dropped so that every metric has one fixed
// label set, as Prometheus requires.
var sdkLabels = []string{"namespace", "task_queue", "workflow_type", "activity_type", "operation", "poller_type", "worker_type"}

// SDKHandler exposes the Temporal SDK's metrics (worker polls, task
// latencies, schedule-to-start, failures) as Prometheus metrics.
type SDKHandler struct {
	reg  prometheus.Registerer
	tags map[string]string
	vecs *sdkVecs
}

type sdkVecs struct {
	mu       sync.Mutex
	counters map[string]*prometheus.CounterVec
	gauges   map[string]*prometheus.GaugeVec
	timers   map[string]*prometheus.HistogramVec
}

// NewSDKHandler returns an SDK metrics handler registering on reg.
func NewSDKHandler(reg prometheus.Registerer) *SDKHandler {
	return &SDKHandler{reg: reg, tags: map[string]string{}, vecs: &sdkVecs{
		counters: map[string]*prometheus.CounterVec{},
		gauges:   map[string]*prometheus.GaugeVec{},
		timers:   map[string]*prometheus.HistogramVec{},
	}}
}

// WithTags returns a handler that adds tags.
func (h *SDKHandler) WithTags(tags map[string]string) sdkmetrics.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return &SDKHandler{reg: h.reg, tags: merged, vecs: h.vecs}
}

func (h *SDKHandler) labels() prometheus.Labels {
	l := prometheus.Labels{}
	for _, k := range sdkLabels {
		l[k] = h.tags[k]
	}
	return l
}

func promName(name string) string {
	return "temporal_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.TrimPrefix(name, "temporal_"))
}

// register registers c, or returns the collector already registered under
// the same name.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}

// Counter returns a counter.
func (h *SDKHandler) Counter(name string) sdkmetrics.MetricsCounter {
	h.vecs.mu.Lock()
	v, ok := h.vecs.counters[name]
	if !ok {
		v = register(h.reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: promName(name), Help: "Temporal SDK metric " + name + "."}, sdkLabels))
		h.vecs.counters[name] = v
	}
	h.vecs.mu.Unlock()
	return counter{v.With(h.labels())}
}

// Gauge returns a gauge.
func (h *SDKHandler) Gauge(name string) sdkmetrics.MetricsGauge {
	h.vecs.mu.Lock()
	v, ok := h.vecs.gauges[name]
	if !ok {
		v = register(h.reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: promName(name), Help: "Temporal SDK metric " + name + "."}, sdkLabels))
		h.vecs.gauges[name] = v
	}
	h.vecs.mu.Unlock()
	return gauge{v.With(h.labels())}
}

// Timer returns a timer, recorded as a histogram in seconds.
func (h *SDKHandler) Timer(name string) sdkmetrics.MetricsTimer {
	h.vecs.mu.Lock()
	v, ok := h.vecs.timers[name]
	if !ok {
		v = register(h.reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: promName(name) + "_seconds", Help: "Temporal SDK metric " + name + ".", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, sdkLabels))
		h.vecs.timers[name] = v
	}
	h.vecs.mu.Unlock()
	return timer{v.With(h.labels())}
}

type counter struct{ c prometheus.Counter }

func (c counter) Inc(d int64) { c.c.Add(float64(d)) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Update(v float64) { g.g.Set(v) }

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }

var _ sdkmetrics.MetricsHandler = (*SDKHandler)(nil)
