package salesforce

import (
	"errors"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus metrics. Labels never carry record
// data.
type metrics struct {
	apiUsed         prometheus.Gauge
	apiMax          prometheus.Gauge
	budgetExhausted prometheus.Gauge
	calls           *prometheus.CounterVec
	refreshes       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		apiUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webcaresync_salesforce_api_usage_used",
			Help: "API requests used in the last 24 hours, from Sforce-Limit-Info.",
		}),
		apiMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webcaresync_salesforce_api_usage_max",
			Help: "Daily API request limit of the org, from Sforce-Limit-Info.",
		}),
		budgetExhausted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "webcaresync_salesforce_budget_exhausted",
			Help: "1 while Salesforce answers REQUEST_LIMIT_EXCEEDED (TotalRequests); syncing is paused.",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webcaresync_salesforce_calls_total",
			Help: "Salesforce REST API calls by outcome (ok, transient, concurrency, budget_exhausted, permanent, network).",
		}, []string{"outcome"}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "webcaresync_salesforce_session_refreshes_total",
			Help: "Sessions renewed after INVALID_SESSION_ID.",
		}),
	}
	if reg == nil {
		return m
	}
	m.apiUsed = register(reg, m.apiUsed).(prometheus.Gauge)
	m.apiMax = register(reg, m.apiMax).(prometheus.Gauge)
	m.budgetExhausted = register(reg, m.budgetExhausted).(prometheus.Gauge)
	m.calls = register(reg, m.calls).(*prometheus.CounterVec)
	m.refreshes = register(reg, m.refreshes).(prometheus.Counter)
	return m
}

// register registers c, or returns the collector already registered under
// the same name, so that several connectors can share one registry.
func register(reg prometheus.Registerer, c prometheus.Collector) prometheus.Collector {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector
		}
	}
	return c
}

func (m *metrics) observeLimits(header string) {
	used, max, ok := parseLimitInfo(header)
	if !ok {
		return
	}
	m.apiUsed.Set(float64(used))
	m.apiMax.Set(float64(max))
}

// parseLimitInfo reads "api-usage=USED/MAX" from a Sforce-Limit-Info
// header, which may list other limits too
// ("api-usage=18/5000, per-app-api-usage=17/250(appName=x)").
func parseLimitInfo(h string) (used, max int64, ok bool) {
	for _, part := range strings.Split(h, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || k != "api-usage" {
			continue
		}
		u, m, found := strings.Cut(v, "/")
		if !found {
			return 0, 0, false
		}
		un, err1 := strconv.ParseInt(strings.TrimSpace(u), 10, 64)
		mn, err2 := strconv.ParseInt(strings.TrimSpace(m), 10, 64)
		if err1 != nil || err2 != nil || un < 0 || mn < 0 {
			return 0, 0, false
		}
		return un, mn, true
	}
	return 0, 0, false
}
