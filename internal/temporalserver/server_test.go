package temporalserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	tsql "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	"go.temporal.io/server/common/resolver"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const (
	taskQueue     = "temporalserver-test"
	signalName    = "go"
	kindSA        = "WebcaresyncKind"
	channelSA     = "WebcaresyncChannel"
	killHelperEnv = "TEMPORALSERVER_KILL_HELPER_DIR"
)

// TestMain runs the SIGKILL helper when the test binary is re-executed by
// TestSurvivesSIGKILL, and the tests otherwise.
func TestMain(m *testing.M) {
	if dir := os.Getenv(killHelperEnv); dir != "" {
		runKillHelper(dir)
		return
	}
	os.Exit(m.Run())
}

// greetWorkflow completes at once.
func greetWorkflow(_ workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

// waitWorkflow blocks until it receives the "go" signal and returns its
// payload. Its "state" query tells callers that it reached the wait.
func waitWorkflow(ctx workflow.Context) (string, error) {
	state := "waiting"
	if err := workflow.SetQueryHandler(ctx, "state", func() (string, error) { return state, nil }); err != nil {
		return "", err
	}
	var payload string
	workflow.GetSignalChannel(ctx, signalName).Receive(ctx, &payload)
	state = "done"
	return "got " + payload, nil
}

func newClient(t testing.TB, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.FrontendHostPort(), Namespace: s.Namespace()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func startWorker(t testing.TB, c client.Client) worker.Worker {
	t.Helper()
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(greetWorkflow)
	w.RegisterWorkflow(waitWorkflow)
	w.RegisterWorkflow(inboxWorkflow)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	return w
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls fn until it returns nil or ctx ends.
func eventually(ctx context.Context, t testing.TB, what string, fn func() error) {
	t.Helper()
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestRestartKeepsWorkflowsAndSearchAttributes(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	opts := Options{
		DataDir:          dir,
		Namespace:        "webcaresync-test",
		SearchAttributes: map[string]enumspb.IndexedValueType{kindSA: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	}

	// First start: schema, namespace and search attribute are created.
	core, logs := observer.New(zap.DebugLevel)
	opts.Logger = zap.New(core)
	defer func() {
		for _, e := range logs.All() {
			t.Logf("server log: %s %s %s %v", e.Time.Format("15:04:05.000"), e.Level, e.Message, e.ContextMap())
		}
	}()
	s1, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	if s1.Namespace() != "webcaresync-test" {
		t.Fatalf("namespace = %q", s1.Namespace())
	}
	if s1.UIAddress() != "" {
		t.Fatalf("UI address without UIPort = %q, want empty", s1.UIAddress())
	}
	assertSQLitePragmas(t, dir)

	c1 := newClient(t, s1)
	w1 := startWorker(t, c1)
	done, err := c1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    "greet-1",
		TaskQueue:             taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword(kindSA).ValueSet("greeting")),
	}, greetWorkflow, "world")
	if err != nil {
		t.Fatalf("start greet workflow: %v", err)
	}
	var got string
	if err := done.Get(ctx, &got); err != nil || got != "hello world" {
		t.Fatalf("greet result = %q, %v", got, err)
	}
	blocked, err := c1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "wait-1", TaskQueue: taskQueue}, waitWorkflow)
	if err != nil {
		t.Fatalf("start wait workflow: %v", err)
	}
	waitUntilWaiting(ctx, t, c1, "wait-1")
	// The search attribute is usable in visibility queries.
	eventually(ctx, t, "list by search attribute", func() error {
		resp, err := c1.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s1.Namespace(),
			Query:     kindSA + " = 'greeting'",
		})
		if err != nil {
			return err
		}
		if len(resp.Executions) != 1 || resp.Executions[0].Execution.WorkflowId != "greet-1" {
			return fmt.Errorf("got %d executions", len(resp.Executions))
		}
		return nil
	})
	w1.Stop()
	c1.Close()
	if err := s1.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s1.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	// Second start on the same dir, with one more search attribute that has
	// to go through the operator API.
	opts.SearchAttributes = map[string]enumspb.IndexedValueType{
		kindSA:    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		channelSA: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
	s2 := StartForTest(t, opts)
	c2 := newClient(t, s2)
	resp, err := c2.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s2.Namespace()})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	for _, name := range []string{kindSA, channelSA} {
		if resp.CustomAttributes[name] != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s = %v, want Keyword", name, resp.CustomAttributes[name])
		}
	}

	desc, err := c2.DescribeWorkflowExecution(ctx, "greet-1", "")
	if err != nil {
		t.Fatalf("describe completed workflow after restart: %v", err)
	}
	if st := desc.WorkflowExecutionInfo.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("greet-1 status after restart = %v", st)
	}
	w2 := startWorker(t, c2)
	defer w2.Stop()
	if err := c2.SignalWorkflow(ctx, "wait-1", blocked.GetRunID(), signalName, "after restart"); err != nil {
		t.Fatalf("signal after restart: %v", err)
	}
	if err := c2.GetWorkflow(ctx, "wait-1", "").Get(ctx, &got); err != nil || got != "got after restart" {
		t.Fatalf("wait result = %q, %v", got, err)
	}
}

// waitUntilWaiting waits until the workflow answers its state query, which
// means a worker ran its first workflow task and it is blocked on the signal.
func waitUntilWaiting(ctx context.Context, t testing.TB, c client.Client, id string) {
	t.Helper()
	eventually(ctx, t, "query "+id, func() error {
		v, err := c.QueryWorkflow(ctx, id, "", "state")
		if err != nil {
			return err
		}
		var state string
		if err := v.Get(&state); err != nil {
			return err
		}
		if state != "waiting" {
			return fmt.Errorf("state = %q", state)
		}
		return nil
	})
}

// assertSQLitePragmas checks, on the server's own pooled connection, that
// the database runs in WAL mode with synchronous=NORMAL, and that the WAL
// file exists.
func assertSQLitePragmas(t *testing.T, dir string) {
	t.Helper()
	cfg, err := fileStoreConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The SQLite plugin pools connections by DSN, so this is the server's
	// connection. Closing it only drops a reference.
	db, err := tsql.NewSQLAdminDB(sqlplugin.DbKindUnknown, cfg, resolver.NewNoopResolver(), log.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		t.Fatalf("open server database: %v", err)
	}
	defer func() { _ = db.Close() }()
	// AdminDB only has Exec, so the check happens inside SQL: json('x')
	// raises an error when the condition is false.
	check := func(cond string) error {
		return db.Exec("SELECT CASE WHEN " + cond + " THEN 1 ELSE json('pragma check failed') END")
	}
	if err := check("(SELECT journal_mode FROM pragma_journal_mode) = 'wal'"); err != nil {
		t.Errorf("journal_mode is not WAL: %v", err)
	}
	if err := check("(SELECT synchronous FROM pragma_synchronous) = 1"); err != nil {
		t.Errorf("synchronous is not NORMAL: %v", err)
	}
	// The check itself must be able to fail.
	if err := check("(SELECT synchronous FROM pragma_synchronous) = 2"); err == nil {
		t.Errorf("pragma check accepted synchronous=FULL")
	}
	if _, err := os.Stat(filepath.Join(dir, DatabaseFile+"-wal")); err != nil {
		t.Errorf("no WAL file next to the database: %v", err)
	}
}

func TestInMemoryWithUI(t *testing.T) {
	ctx := testCtx(t)
	uiPort := freePort(t)
	s := StartForTest(t, Options{
		UIPort:           uiPort,
		UICodecEndpoint:  "http://127.0.0.1:1/codec",
		SearchAttributes: map[string]enumspb.IndexedValueType{kindSA: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	})
	if s.Namespace() != "default" {
		t.Fatalf("namespace = %q, want default", s.Namespace())
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", uiPort); s.UIAddress() != want {
		t.Fatalf("UI address = %q, want %q", s.UIAddress(), want)
	}

	c := newClient(t, s)
	w := startWorker(t, c)
	defer w.Stop()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		TaskQueue:             taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword(kindSA).ValueSet("x")),
	}, greetWorkflow, "memory")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "hello memory" {
		t.Fatalf("result = %q, %v", got, err)
	}

	resp, err := http.Get(s.UIAddress() + "/")
	if err != nil {
		t.Fatalf("GET UI: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type = %q, want text/html", ct)
	}
	if !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("body is not HTML: %.200q", body)
	}
	// The UI's settings carry the codec endpoint.
	resp, err = http.Get(s.UIAddress() + "/api/v1/settings")
	if err != nil {
		t.Fatalf("GET settings: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), "http://127.0.0.1:1/codec") {
		t.Fatalf("settings do not name the codec endpoint: %.300s", body)
	}
}

func TestInMemoryServersAreIndependent(t *testing.T) {
	ctx := testCtx(t)
	a := StartForTest(t, Options{})
	b := StartForTest(t, Options{})
	if a.FrontendHostPort() == b.FrontendHostPort() {
		t.Fatalf("both servers on %s", a.FrontendHostPort())
	}
	ca := newClient(t, a)
	if _, err := ca.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "only-in-a", TaskQueue: taskQueue}, waitWorkflow); err != nil {
		t.Fatalf("start: %v", err)
	}
	cb := newClient(t, b)
	_, err := cb.DescribeWorkflowExecution(ctx, "only-in-a", "")
	if err == nil {
		t.Fatalf("workflow of server a is visible on server b")
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	ctx := testCtx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	cases := map[string]Options{
		"bad IP":          {IP: "localhost:1"},
		"negative port":   {FrontendPort: -1},
		"huge UI port":    {UIPort: 70000},
		"same ports":      {FrontendPort: 7999, UIPort: 7999},
		"negative shards": {NumHistoryShards: -1},
		"too many shards": {NumHistoryShards: 100000},
		"odd data dir":    {DataDir: filepath.Join(t.TempDir(), "a?b")},
		"busy frontend":   {FrontendPort: busy},
		"busy UI":         {UIPort: busy},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Start(ctx, opts)
			if err == nil {
				_ = s.Stop()
				t.Fatalf("Start accepted %+v", opts)
			}
		})
	}
}

func TestFatalBecomesError(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := newServerLogger(zap.New(core), nil)
	err := func() (err error) {
		defer recoverFatal(&err)
		l.Fatal("Failed to start gRPC listener")
		return nil
	}()
	if err == nil || !strings.Contains(err.Error(), "Failed to start gRPC listener") {
		t.Fatalf("err = %v, want the fatal message", err)
	}
	if logs.FilterLevelExact(zap.ErrorLevel).Len() != 1 {
		t.Fatalf("fatal was not logged at error level: %v", logs.All())
	}
	// Tagged loggers keep the behaviour.
	err = func() (err error) {
		defer recoverFatal(&err)
		log.With(l).Fatal("tagged")
		return nil
	}()
	if err == nil {
		t.Fatalf("tagged logger's Fatal did not become an error")
	}
}

func TestLoggerDropsBelowWarn(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	l := newServerLogger(zap.New(core), nil)
	l.Debug("debug")
	l.Info("info")
	l.Warn("warn")
	l.Error("error")
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	if strings.Join(msgs, ",") != "warn,error" {
		t.Fatalf("logged %v, want [warn error]", msgs)
	}

	// While the server stops, warnings are dropped too.
	core, logs = observer.New(zap.DebugLevel)
	stopping := &atomic.Bool{}
	l = newServerLogger(zap.New(core), stopping)
	stopping.Store(true)
	l.Warn("peer gone")
	l.Error("real problem")
	if logs.Len() != 1 || logs.All()[0].Message != "real problem" {
		t.Fatalf("while stopping logged %v, want only the error", logs.All())
	}
}

// TestRepeatedStartStopDoesNotLeak starts and stops servers several times
// and checks that goroutines do not pile up.
func TestRepeatedStartStopDoesNotLeak(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	counts := make([]int, 0, 4)
	for i := range 4 {
		opts := Options{}
		if i%2 == 1 {
			opts.DataDir = dir
		}
		s, err := Start(ctx, opts)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if err := s.Stop(); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		counts = append(counts, settledGoroutines())
	}
	t.Logf("goroutines after each stop: %v", counts)
	// The server itself never closes some idle gRPC client connections and
	// the SQLite plugin never closes its pooled databases: about 30
	// goroutines per cycle. A leaked SDK worker adds about 35 more each, so
	// the system workers left running would show as 100+ per cycle.
	if grow := counts[3] - counts[1]; grow > 80 {
		t.Fatalf("goroutines grew by %d over two start/stop cycles: %v", grow, counts)
	}
}

// settledGoroutines returns the goroutine count once it stops falling.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSurvivesSIGKILL starts a server in a child process, starts a workflow
// that waits for a signal, kills the child with SIGKILL, and then finishes
// the workflow on a new server over the same data dir.
func TestSurvivesSIGKILL(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- id
			}
		}
		close(ready)
	}()
	var runID string
	select {
	case runID = <-ready:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		t.Fatalf("helper never became ready")
	}
	if runID == "" {
		_ = cmd.Wait()
		t.Fatalf("helper exited before it was ready")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill helper: %v", err)
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", err)
	}

	s := StartForTest(t, Options{DataDir: dir})
	c := newClient(t, s)
	w := startWorker(t, c)
	defer w.Stop()
	if err := c.SignalWorkflow(ctx, "killed-1", runID, signalName, "after kill"); err != nil {
		t.Fatalf("signal after kill: %v", err)
	}
	var got string
	if err := c.GetWorkflow(ctx, "killed-1", runID).Get(ctx, &got); err != nil || got != "got after kill" {
		t.Fatalf("result = %q, %v", got, err)
	}
}

// runKillHelper is the child side of TestSurvivesSIGKILL: it starts a server
// on dir, starts a waiting workflow, prints "READY <run ID>" and blocks until
// it is killed.
func runKillHelper(dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "kill helper:", err)
		os.Exit(2)
	}
	s, err := Start(ctx, Options{DataDir: dir})
	if err != nil {
		fail(err)
	}
	c, err := client.Dial(client.Options{HostPort: s.FrontendHostPort(), Namespace: s.Namespace()})
	if err != nil {
		fail(err)
	}
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(waitWorkflow)
	if err := w.Start(); err != nil {
		fail(err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "killed-1", TaskQueue: taskQueue}, waitWorkflow)
	if err != nil {
		fail(err)
	}
	for {
		v, err := c.QueryWorkflow(ctx, "killed-1", "", "state")
		var state string
		if err == nil && v.Get(&state) == nil && state == "waiting" {
			break
		}
		if ctx.Err() != nil {
			fail(fmt.Errorf("workflow never reached its wait: %v", err))
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("READY " + run.GetRunID())
	<-ctx.Done()
	os.Exit(3)
}
