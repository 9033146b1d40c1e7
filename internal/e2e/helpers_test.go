// Package e2e holds webcaresync's end-to-end tests: the real embedded
// Temporal server, the real store (SQLite, or PostgreSQL when
// WEBCARESYNC_TEST_POSTGRES is set), the Salesforce sandbox and the HTTP
// edge on loopback. A webhook goes in; records come out of the sandbox CRM.
package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/channels/generic"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/logging"
	"github.com/webcaresync/webcaresync/internal/webhookclient"
)

// databaseURL returns a PostgreSQL URL with a fresh schema for this test
// when WEBCARESYNC_TEST_POSTGRES is set, and "" (SQLite) otherwise.
func databaseURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WEBCARESYNC_TEST_POSTGRES")
	if base == "" {
		return ""
	}
	// A test that restarts the stack (a worker killed and started again)
	// must find the same database: one schema per test.
	if u, ok := testSchemas.Load(t.Name()); ok {
		return u.(string)
	}
	u := newSchema(t, base)
	name := t.Name()
	testSchemas.Store(name, u)
	// The schema is dropped when the test ends; a rerun of the same test
	// (go test -count=2) must get a new one.
	t.Cleanup(func() { testSchemas.Delete(name) })
	return u
}

// testSchemas maps a test's name to its PostgreSQL URL.
var testSchemas sync.Map

func newSchema(t *testing.T, base string) string {
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("cannot create a test schema in %s: %v", redactURL(base), err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// stack is a running webcaresync for a test.
type stack struct {
	*app.App
	hooks *webhookclient.Client
	logs  *logging.Capture
}

type stackOptions struct {
	dataDir      string
	temporalAddr string
	parts        *app.Parts
	cfg          func(*config.Config)
}

// start starts the whole stack in-process on free loopback ports.
func start(t *testing.T, o stackOptions) *stack {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = o.dataDir
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.DatabaseURL = databaseURL(t)
	cfg.Temporal.Address = o.temporalAddr
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	log, capture := logging.NewCapture()
	parts := app.Parts{Embedded: true, InMemoryTemporal: true, EphemeralPorts: true, Sandbox: true, Worker: true, HTTP: true, DevSecrets: true, ConversationIdle: time.Hour}
	if o.parts != nil {
		parts = *o.parts
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := app.Start(ctx, cfg, log, parts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(a.Close)
	s := &stack{App: a, logs: capture}
	if a.HTTPAddr != "" {
		s.hooks = webhookclient.New("http://"+a.HTTPAddr, webhookclient.Secrets{
			MetaAppSecret: a.Cfg.MetaAppSecret, XConsumerSecret: a.Cfg.XConsumerSecret, GenericSecret: a.Cfg.GenericSecret,
		}, 0)
	}
	return s
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countWhere counts the sandbox records of object whose field equals value.
func countWhere(s *stack, object, field string, value any) int {
	n := 0
	for _, r := range s.Sandbox.Records(object) {
		if r[field] == value {
			n++
		}
	}
	return n
}

// containsAny reports which of the needles occur in haystack.
func containsAny(haystack string, needles ...string) []string {
	var hits []string
	for _, n := range needles {
		if n != "" && strings.Contains(haystack, n) {
			hits = append(hits, n)
		}
	}
	return hits
}

// listAll lists every workflow execution in the namespace.
func listAll() *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", PageSize: 1000}
}

// signGenericAt signs a generic webhook at a chosen time.
func signGenericAt(secret string, at time.Time, body []byte) (string, string) {
	return generic.Sign(secret, at, body)
}

// metricSum adds up every series of a metric in the app's registry.
func metricSum(t *testing.T, s *stack, name string) float64 {
	t.Helper()
	families, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// searchAttributes are the ones webcaresync registers on its embedded
// server; an external test server needs them too.
func searchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		"WebcaresyncKind":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"WebcaresyncFlags": enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	}
}
