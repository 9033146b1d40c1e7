package metrics_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/webcaresync/webcaresync/activities/crm/salesforce"
	"github.com/webcaresync/webcaresync/internal/metrics"
)

// rulesFile is the Prometheus alerting rules file shipped in deploy/.
const rulesFile = "../../deploy/prometheus/webcaresync-rules.yaml"

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// descRecorder is a Registerer that records the names of the metrics
// registered on it, from their descriptors: a vector without children or
// a collector that reads the store at scrape time has no sample to gather,
// but it describes its metrics.
type descRecorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return true }

// registeredMetrics returns the names of webcaresync's own metrics and the
// Salesforce connector's.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := &descRecorder{names: map[string]bool{}}
	metrics.New(rec)
	if _, err := salesforce.NewClient(salesforce.Config{LoginURL: "https://login.example.invalid", ClientID: "id", ClientSecret: "secret"}, rec, nil); err != nil {
		t.Fatal(err)
	}
	return rec.names
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression reads: its
// identifiers, less functions and aggregations (followed by a
// parenthesis), keywords, label matchers, ranges and grouping labels.
func metricNames(expr string) []string {
	expr = promStrings.ReplaceAllString(expr, `""`)
	expr = promMatchers.ReplaceAllString(expr, " ")
	expr = promRanges.ReplaceAllString(expr, " ")
	expr = promGrouping.ReplaceAllString(expr, " ")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(expr, -1) {
		if m[2] != "" || promKeywords[strings.ToLower(m[1])] {
			continue
		}
		out = append(out, m[1])
	}
	return out
}

func TestMetricNamesOfAnExpression(t *testing.T) {
	got := metricNames(`sum by (channel) (rate(a_total{code="401", x=~"b_c"}[5m])) / on(channel) group_left(y) max(b_gauge) > 0.1 and absent(c_gauge) or bool d`)
	sort.Strings(got)
	if strings.Join(got, ",") != "a_total,b_gauge,c_gauge,d" {
		t.Errorf("metric names: %v", got)
	}
}

// TestAlertRulesNameRegisteredMetrics reads the shipped alerting rules:
// every alert has an expression, a summary and a runbook line, and every
// metric an expression reads is one webcaresync registers, so renaming a
// metric breaks this test instead of silently disabling the alert.
func TestAlertRulesNameRegisteredMetrics(t *testing.T) {
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	registered := registeredMetrics(t)
	alerts := map[string]bool{}
	used := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || alerts[r.Alert] {
				t.Errorf("group %s: an alert without a name or with a repeated name %q", g.Name, r.Alert)
			}
			alerts[r.Alert] = true
			if strings.TrimSpace(r.Annotations["summary"]) == "" || strings.TrimSpace(r.Annotations["runbook"]) == "" {
				t.Errorf("%s: needs a summary and a runbook annotation", r.Alert)
			}
			if r.Labels["severity"] == "" {
				t.Errorf("%s: needs a severity label", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: the expression %q reads no metric", r.Alert, r.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !registered[n] {
					t.Errorf("%s: the expression reads %s, which webcaresync does not register; rename it in %s", r.Alert, n, rulesFile)
				}
			}
		}
	}
	for _, want := range []string{"webcaresync_dsr_overdue", "webcaresync_salesforce_budget_exhausted", "webcaresync_parked_events_total", "webcaresync_webhook_requests_total"} {
		if !used[want] {
			t.Errorf("no alert reads %s", want)
		}
	}
}
