// Package metrics declares webcaresync's own Prometheus metrics. Labels are
// channels, outcomes and systems: never handles, ids or message text.
package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the product's metrics, registered on one registry.
type Metrics struct {
	WebhookRequests *prometheus.CounterVec // channel, code
	EventsAccepted  *prometheus.CounterVec // channel
	EventsDuplicate *prometheus.CounterVec // channel
	EventsSupressed prometheus.Counter
	SyncBatches     prometheus.Counter
	SyncEvents      prometheus.Counter
	CRMCalls        prometheus.Counter
	Parked          prometheus.Counter
	SyncPaused      prometheus.Gauge
	BudgetAlerts    prometheus.Counter
	IdentityLinks   *prometheus.CounterVec // rule
	IdentityReviews prometheus.Counter
	PublicDetails   prometheus.Counter
	DSROpened       *prometheus.CounterVec // type
	DSRReminders    prometheus.Counter
	CRMRefused      *CRMRefused // code; see crm_refused.go

	// dsrs reports the open data-subject requests from the store at
	// scrape time; see WatchDSRs.
	dsrs *dsrCollector
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		WebhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webcaresync_webhook_requests_total", Help: "Webhook requests by channel and HTTP status code."}, []string{"channel", "code"}),
		EventsAccepted:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webcaresync_events_accepted_total", Help: "Events durably handed to Temporal, by channel."}, []string{"channel"}),
		EventsDuplicate: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webcaresync_events_duplicate_total", Help: "Repeated events acknowledged without storing them again, by channel."}, []string{"channel"}),
		EventsSupressed: prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_events_suppressed_total", Help: "Imported events skipped because their subject was erased."}),
		SyncBatches:     prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_sync_batches_total", Help: "CRM sync batches written."}),
		SyncEvents:      prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_sync_events_total", Help: "Events written to the CRM."}),
		CRMCalls:        prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_crm_calls_total", Help: "CRM API calls made by sync batches."}),
		Parked:          prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_parked_events_total", Help: "Events the CRM rejected permanently and that were parked for replay."}),
		SyncPaused:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "webcaresync_sync_paused", Help: "1 while syncing is paused because the CRM's daily API budget is exhausted."}),
		BudgetAlerts:    prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_crm_budget_exhausted_total", Help: "Times the CRM's daily API budget ran out (alert on increase)."}),
		IdentityLinks:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webcaresync_identity_links_total", Help: "Personas linked to CRM contacts, by rule."}, []string{"rule"}),
		IdentityReviews: prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_identity_reviews_total", Help: "Identity matches sent to the review queue."}),
		PublicDetails:   prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_public_details_total", Help: "Public posts that contained contact details (the agent should move to DM)."}),
		DSROpened:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webcaresync_dsr_opened_total", Help: "Data-subject requests opened, by type."}, []string{"type"}),
		DSRReminders:    prometheus.NewCounter(prometheus.CounterOpts{Name: "webcaresync_dsr_reminders_total", Help: "Deadline reminders fired for data-subject requests."}),
		dsrs:            newDSRCollector(),
	}
	reg.MustRegister(m.WebhookRequests, m.EventsAccepted, m.EventsDuplicate, m.EventsSupressed, m.SyncBatches, m.SyncEvents,
		m.CRMCalls, m.Parked, m.SyncPaused, m.BudgetAlerts, m.IdentityLinks, m.IdentityReviews, m.PublicDetails,
		m.DSROpened, m.DSRReminders, m.dsrs)
	m.CRMRefused = newCRMRefused(reg)
	return m
}

// Discard returns metrics registered on a private registry, for tests.
func Discard() *Metrics { return New(prometheus.NewRegistry()) }

// DSRCounts are the open data-subject requests as the store holds them.
type DSRCounts struct {
	// Overdue counts the requests past their deadline and not complete.
	Overdue int
	// OpenByStatus counts the requests not complete, by status.
	OpenByStatus map[string]int
}

// DSRSource reads DSRCounts from the store.
type DSRSource func(ctx context.Context) (DSRCounts, error)

// WatchDSRs makes webcaresync_dsr_overdue and webcaresync_dsr_open read
// the store at every scrape, so that they hold after a restart and move
// when a deadline passes with no workflow running. Until it is called,
// and at a scrape when the store cannot be read, the two are left out of
// the scrape rather than reported as 0.
func (m *Metrics) WatchDSRs(src DSRSource) {
	m.dsrs.mu.Lock()
	defer m.dsrs.mu.Unlock()
	m.dsrs.src = src
}

// dsrScrapeTimeout bounds the store queries of one scrape.
const dsrScrapeTimeout = 5 * time.Second

// dsrCollector collects the DSR gauges from a DSRSource at scrape time.
type dsrCollector struct {
	mu      sync.RWMutex
	src     DSRSource
	overdue *prometheus.Desc
	open    *prometheus.Desc
}

func newDSRCollector() *dsrCollector {
	return &dsrCollector{
		overdue: prometheus.NewDesc("webcaresync_dsr_overdue", "Data-subject requests past their deadline and not complete, read from the store at scrape time (alert when > 0).", nil, nil),
		open:    prometheus.NewDesc("webcaresync_dsr_open", "Data-subject requests not complete, by status, read from the store at scrape time.", []string{"status"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *dsrCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.overdue
	ch <- c.open
}

// Collect implements prometheus.Collector.
func (c *dsrCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	src := c.src
	c.mu.RUnlock()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dsrScrapeTimeout)
	defer cancel()
	counts, err := src(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, float64(counts.Overdue))
	for status, n := range counts.OpenByStatus {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(n), status)
	}
}
