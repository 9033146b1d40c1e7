package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/samples"
)

// chromiumPath finds the browser for the UI tests. Without one the test is
// skipped, unless WEBCARESYNC_TEST_CHROMIUM is set (CI sets it, so a missing
// browser fails there instead of passing silently). The variable may name
// the browser's path.
func chromiumPath(t *testing.T) string {
	t.Helper()
	want := os.Getenv("WEBCARESYNC_TEST_CHROMIUM")
	if strings.Contains(want, string(filepath.Separator)) {
		if _, err := os.Stat(want); err != nil {
			t.Fatalf("WEBCARESYNC_TEST_CHROMIUM=%s: %v", want, err)
		}
		return want
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if want != "" {
		t.Fatal("WEBCARESYNC_TEST_CHROMIUM is set but no Chromium was found: apt-get install chromium, or unset the variable to skip the UI tests")
	}
	t.Skip("no Chromium found (apt-get install chromium); set WEBCARESYNC_TEST_CHROMIUM=1 to make this a failure")
	return ""
}

// browser drives a headless Chromium for one test.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		// Tests run as root in CI, where Chromium's sandbox cannot start.
		chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot start Chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx}
}

// open navigates to url and waits until the page's visible text contains
// every one of want, then saves a screenshot as name.png in the test's
// artifact dir (kept with go test -artifacts -outputdir DIR). It returns the
// page's text.
func (b *browser) open(url, name string, want ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
	var text string
	for {
		t, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if err == nil {
			text = t
			if len(containsAny(text, want...)) == len(want) {
				break
			}
		}
		if ctx.Err() != nil {
			b.screenshot(name + "-failed")
			b.t.Fatalf("%s: the page never showed %q; it shows:\n%s", url, missing(text, want), text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Let the codec's decode calls of the rest of the page settle before
	// the screenshot; the assertions above do not depend on it.
	time.Sleep(500 * time.Millisecond)
	b.screenshot(name)
	return text
}

func (b *browser) screenshot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

func missing(text string, want []string) []string {
	var out []string
	for _, w := range want {
		if !strings.Contains(text, w) {
			out = append(out, w)
		}
	}
	return out
}

// firstSignal returns the event ID of a workflow's first signal.
func firstSignal(t *testing.T, s *stack, workflowID, runID string) int64 {
	t.Helper()
	it := s.Client.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
			return ev.GetEventId()
		}
	}
	t.Fatalf("workflow %s has no signal", workflowID)
	return 0
}

// TestWebUIShowsDecodedAndErasedPayloads opens the embedded Temporal Web UI
// in a real browser, as an operator would in `webcaresync dev`: a live
// conversation's signal shows the customer's message decoded through the
// codec endpoint (called cross-origin from the UI, with the token in its
// path), and the erasure request of a customer who was erased shows the
// "erased" marker where its input was, and none of the customer's data.
// The live page is opened as http://localhost:PORT, the erased one as
// http://127.0.0.1:PORT: people type either.
func TestWebUIShowsDecodedAndErasedPayloads(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	s := start(t, stackOptions{parts: &app.Parts{
		Embedded: true, InMemoryTemporal: true, EphemeralPorts: true, UI: true,
		Sandbox: true, Worker: true, HTTP: true, DevSecrets: true, ConversationIdle: time.Hour,
	}})
	ui := s.Temporal.UIAddress()
	if ui == "" {
		t.Fatal("the Web UI did not start")
	}

	// Sanne writes on X and WhatsApp and is then erased; Emily's Messenger
	// conversation stays live.
	syncSanne(t, s)
	emily := samples.Conversations()[2]
	if emily.Channel != "messenger" {
		t.Fatalf("sample 2 is %s, want Emily's Messenger conversation", emily.Name)
	}
	for _, p := range emily.Payloads {
		if code, body, err := s.hooks.Post(context.Background(), p.Channel, p.Body); err != nil || code != 200 {
			t.Fatalf("%d %s %v", code, body, err)
		}
	}
	const emilyText = "I returned a jacket two weeks ago"
	eventually(t, time.Minute, "Emily's messages in the CRM", func() bool {
		for _, r := range s.Sandbox.Records("SocialPost") {
			if c, _ := r["Content"].(string); strings.Contains(c, emilyText) {
				return true
			}
		}
		return false
	})
	erase := openDSR(t, s, "erasure")
	waitStatus(t, s, erase, "awaiting_approval", time.Minute)
	if code := api(t, s, s.Secrets.AdminToken, "POST", "/v1/dsr/"+erase+"/approve", nil, nil); code/100 != 2 {
		t.Fatalf("approve: %d", code)
	}
	waitStatus(t, s, erase, "completed", 2*time.Minute)

	// What is left in Temporal: Emily's conversation and the erasure.
	var conv struct{ ID, RunID string }
	resp, err := s.Client.ListWorkflow(context.Background(), listAll())
	if err != nil {
		t.Fatal(err)
	}
	var dsrRun string
	for _, e := range resp.GetExecutions() {
		switch e.GetType().GetName() {
		case "Conversation":
			if conv.ID != "" {
				t.Fatalf("more than one conversation left after Sanne's erasure: %s and %s", conv.ID, e.GetExecution().GetWorkflowId())
			}
			conv.ID, conv.RunID = e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
		case "DSR":
			if e.GetExecution().GetWorkflowId() == erase {
				dsrRun = e.GetExecution().GetRunId()
			}
		}
	}
	if conv.ID == "" || dsrRun == "" {
		t.Fatalf("want Emily's conversation and the erasure %s in Temporal, got %v", erase, resp.GetExecutions())
	}

	localhost := strings.Replace(ui, "127.0.0.1", "localhost", 1)
	b.open(ui+"/namespaces/default/workflows", "1-workflows", conv.ID, erase, "Conversation", "DSR")

	signal := firstSignal(t, s, conv.ID, conv.RunID)
	live := b.open(localhost+"/namespaces/default/workflows/"+conv.ID+"/"+conv.RunID+"/history/events/"+strconv.FormatInt(signal, 10),
		"2-live-conversation-signal", emilyText, `"platform_user_id": "`+samples.EmilyPSID+`"`)
	if strings.Contains(live, "Codec Server could not connect") {
		t.Fatalf("the UI could not reach the codec endpoint:\n%s", live)
	}

	erased := b.open(ui+"/namespaces/default/workflows/"+erase+"/"+dsrRun+"/history",
		"3-erased-request", `"erased": true`, `"key_id": "`+erase+`"`)
	if hits := containsAny(erased, "sanne", "Sanne", samples.SanneXID, samples.SanneWaID, "12345678", "Codec Server could not connect"); len(hits) > 0 {
		t.Fatalf("the erased request's page shows %q:\n%s", hits, erased)
	}
}
