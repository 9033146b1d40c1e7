package privacy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

// keysSeen reports, from inside a workflow run, which data key ID each hop
// had in its context.
type keysSeen struct {
	Workflow        string
	ActivityContext string
	ChildContext    string
}

// hop tags a value with the hop it is sent on, so the recorder can tell which
// key each hop's payload was encrypted under.
type hop struct {
	Hop string
	Msg message
}

func echoKeyActivity(ctx context.Context, in hop) (hop, error) {
	if in.Msg != pii {
		return hop{}, errors.New("activity input did not round-trip")
	}
	return hop{Hop: "activity-result:" + KeyIDFromContext(ctx)}, nil
}

func childKeyWorkflow(ctx workflow.Context, in hop) (hop, error) {
	if in.Msg != pii {
		return hop{}, errors.New("child input did not round-trip")
	}
	return hop{Hop: "child-result:" + KeyIDFromWorkflow(ctx)}, nil
}

func propagationWorkflow(ctx workflow.Context, in message, setKey string) (keysSeen, error) {
	if setKey != "" {
		ctx = WorkflowWithKeyID(ctx, setKey)
	}
	seen := keysSeen{Workflow: KeyIDFromWorkflow(ctx)}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// The activity is a pure function; a short timeout keeps a broken
		// test from hanging.
		StartToCloseTimeout: 10 * time.Second,
	})
	var res hop
	if err := workflow.ExecuteActivity(actx, echoKeyActivity, hop{Hop: "activity-input", Msg: in}).Get(actx, &res); err != nil {
		return seen, err
	}
	seen.ActivityContext = strings.TrimPrefix(res.Hop, "activity-result:")
	if err := workflow.ExecuteChildWorkflow(ctx, childKeyWorkflow, hop{Hop: "child-input", Msg: in}).Get(ctx, &res); err != nil {
		return seen, err
	}
	seen.ChildContext = strings.TrimPrefix(res.Hop, "child-result:")
	return seen, nil
}

// recorder wraps the DataConverter and records the key ID every hop value
// was encrypted under, following the SDK's WithContext and
// WithWorkflowContext calls.
type recorder struct {
	*DataConverter
	mu   *sync.Mutex
	keys map[string][]string // hop tag -> key IDs
}

func newRecorder(dc *DataConverter) recorder {
	return recorder{DataConverter: dc, mu: &sync.Mutex{}, keys: map[string][]string{}}
}

func (r recorder) note(v any, p *commonpb.Payload) {
	tag := ""
	switch v := v.(type) {
	case hop:
		tag, _, _ = strings.Cut(v.Hop, ":")
	case keysSeen:
		tag = "workflow-result"
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[tag] = append(r.keys[tag], string(p.GetMetadata()[MetadataKeyID]))
}

func (r recorder) ToPayload(v any) (*commonpb.Payload, error) {
	p, err := r.DataConverter.ToPayload(v)
	if err == nil {
		r.note(v, p)
	}
	return p, err
}

func (r recorder) ToPayloads(vs ...any) (*commonpb.Payloads, error) {
	ps, err := r.DataConverter.ToPayloads(vs...)
	if err == nil {
		for i, v := range vs {
			r.note(v, ps.GetPayloads()[i])
		}
	}
	return ps, err
}

func (r recorder) WithContext(ctx context.Context) converter.DataConverter {
	return recorder{r.DataConverter.WithContext(ctx).(*DataConverter), r.mu, r.keys}
}

func (r recorder) WithWorkflowContext(ctx converter.WorkflowContext) converter.DataConverter {
	return recorder{r.DataConverter.WithWorkflowContext(ctx).(*DataConverter), r.mu, r.keys}
}

func (r recorder) snapshot() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k, v := range r.keys {
		out[k] = slices.Clone(v)
	}
	return out
}

func newWorkflowEnv(t *testing.T, tk *testKeys) (*testsuite.TestWorkflowEnvironment, recorder) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	dc := NewDataConverter(tk.kr)
	rec := newRecorder(dc)
	env.SetDataConverter(rec)
	env.SetFailureConverter(NewFailureConverter(dc, FailureConverterOptions{}))
	env.SetContextPropagators([]workflow.ContextPropagator{NewKeyIDPropagator()})
	env.RegisterActivity(echoKeyActivity)
	env.RegisterWorkflow(childKeyWorkflow)
	return env, rec
}

func keyHeader(t *testing.T, id string) *commonpb.Header {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(id)
	if err != nil {
		t.Fatal(err)
	}
	return &commonpb.Header{Fields: map[string]*commonpb.Payload{KeyIDHeader: p}}
}

func TestKeyIDPropagatesThroughWorkflowActivityAndChild(t *testing.T) {
	const key = "conv-0123456789abcdefghjkmnpq"
	for name, tc := range map[string]struct {
		header bool   // key arrives from the starter in the Temporal header
		setKey string // workflow sets the key itself
		// resultKey is the key of the workflow's own result. The SDK encodes
		// it with the context the workflow was started with, so a key the
		// workflow sets itself covers activities and children but not its
		// own result: starters must put the key in the context.
		resultKey string
	}{
		"from client header":  {header: true, resultKey: key},
		"set by the workflow": {setKey: key, resultKey: SystemKeyID},
	} {
		t.Run(name, func(t *testing.T) {
			tk := newTestKeys(t)
			env, rec := newWorkflowEnv(t, tk)
			if tc.header {
				env.SetHeader(keyHeader(t, key))
			}
			env.ExecuteWorkflow(propagationWorkflow, pii, tc.setKey)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var seen keysSeen
			if err := env.GetWorkflowResult(&seen); err != nil {
				t.Fatal(err)
			}
			want := keysSeen{Workflow: key, ActivityContext: key, ChildContext: key}
			if seen != want {
				t.Fatalf("keys seen = %+v, want %+v", seen, want)
			}
			keys := rec.snapshot()
			for _, tag := range []string{"activity-input", "activity-result", "child-input", "child-result"} {
				if len(keys[tag]) == 0 || slices.ContainsFunc(keys[tag], func(k string) bool { return k != key }) {
					t.Errorf("%s encrypted under %v, want only %s", tag, keys[tag], key)
				}
			}
			if got := keys["workflow-result"]; !slices.Equal(got, []string{tc.resultKey}) {
				t.Errorf("workflow result encrypted under %v, want %s", got, tc.resultKey)
			}
			if _, err := tk.store.GetDataKey(context.Background(), key); err != nil {
				t.Fatalf("the conversation key was never created: %v", err)
			}
		})
	}
}

func TestWithoutKeyIDPayloadsUseSystemKey(t *testing.T) {
	tk := newTestKeys(t)
	env, rec := newWorkflowEnv(t, tk)
	env.ExecuteWorkflow(propagationWorkflow, pii, "")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var seen keysSeen
	if err := env.GetWorkflowResult(&seen); err != nil {
		t.Fatal(err)
	}
	if seen != (keysSeen{}) {
		t.Fatalf("keys seen = %+v, want no context key anywhere", seen)
	}
	for tag, keys := range rec.snapshot() {
		if slices.ContainsFunc(keys, func(k string) bool { return k != SystemKeyID }) {
			t.Errorf("%s encrypted under %v, want the system key", tag, keys)
		}
	}
}

// shredding is an activity that destroys its own subject's keys on its
// first attempt and asks to be retried: the retry's input, encrypted under
// the destroyed key, can no longer be decrypted.
type shredding struct {
	kr       *Keyring
	attempts atomic.Int32
}

func (s *shredding) ShredActivity(ctx context.Context, in message) (string, error) {
	s.attempts.Add(1)
	if _, err := s.kr.Destroy(ctx, "subject-1"); err != nil {
		return "", err
	}
	return "", errors.New("try again")
}

func shredWorkflow(ctx workflow.Context) error {
	ctx = WorkflowWithKeyID(ctx, "conv-shred")
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: time.Millisecond},
	})
	var out string
	return workflow.ExecuteActivity(ctx, "ShredActivity", pii).Get(ctx, &out)
}

func TestErasedDataFailsOnceWithErasedError(t *testing.T) {
	tk := newTestKeys(t)
	if _, err := tk.kr.DataKeyFor(context.Background(), "conv-shred", "subject-1"); err != nil {
		t.Fatal(err)
	}
	env, _ := newWorkflowEnv(t, tk)
	act := &shredding{kr: tk.kr}
	env.RegisterActivity(act)
	env.ExecuteWorkflow(shredWorkflow)
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("workflow succeeded although its activity's input was erased")
	}
	if !IsErased(err) {
		t.Fatalf("workflow error %v is not recognisable as erased", err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErasedErrorType || !appErr.NonRetryable() {
		t.Fatalf("workflow error = %v, want non-retryable %s", err, ErasedErrorType)
	}
	if n := act.attempts.Load(); n != 1 {
		t.Fatalf("activity ran %d times, want 1 (erased input must not reach the activity, nor be retried)", n)
	}
}

func TestFailureMessagesAreEncrypted(t *testing.T) {
	tk := newTestKeys(t)
	fc := NewFailureConverter(NewDataConverter(tk.kr), FailureConverterOptions{})
	wfc := fc.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: "conv-a"})
	f := wfc.ErrorToFailure(temporal.NewApplicationError("could not sync "+pii.Email, "CRMError"))
	if f.GetMessage() == "" || containsAny(f.String(), pii.Email) {
		t.Fatalf("failure carries the message in clear: %v", f)
	}
	if got := string(f.GetEncodedAttributes().GetMetadata()[MetadataKeyID]); got != "conv-a" {
		t.Fatalf("failure encrypted under %q, want the workflow's key conv-a", got)
	}
	stored := proto.Clone(f).(*failurepb.Failure) // FailureToError decodes in place
	back := fc.FailureToError(f)
	if back == nil || !containsAny(back.Error(), pii.Email) {
		t.Fatalf("decoded failure = %v, want the original message", back)
	}

	// With the key destroyed, a new failure goes to the workflow's next key
	// generation, and the old one stays erased.
	if _, err := tk.kr.Destroy(context.Background(), "conv-a"); err != nil {
		t.Fatal(err)
	}
	late := wfc.ErrorToFailure(errors.New("late failure for " + pii.Phone))
	if containsAny(late.String(), pii.Phone) {
		t.Fatalf("failure after erasure carries the message in clear: %v", late)
	}
	if got := string(late.GetEncodedAttributes().GetMetadata()[MetadataKeyID]); got != "conv-a.gen2" {
		t.Fatalf("failure after erasure encrypted under %q, want conv-a.gen2", got)
	}
	if back := fc.FailureToError(late); back == nil || !containsAny(back.Error(), pii.Phone) {
		t.Fatalf("decoded late failure = %v", back)
	}
	if back := fc.FailureToError(stored); back == nil || containsAny(back.Error(), pii.Email) {
		t.Fatalf("failure from before the erasure still decodes: %v", back)
	}

	// When the workflow's key cannot be used, encoding still works (the SDK
	// would panic) and falls back to the system key.
	broken := NewFailureConverter(NewDataConverter(tk.kr), FailureConverterOptions{KeyIDForWorkflow: func(string) string { return "conv-b.gen2" }}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: "conv-b"})
	f = broken.ErrorToFailure(errors.New("failure for " + pii.Phone))
	if containsAny(f.String(), pii.Phone) {
		t.Fatalf("fallback failure carries the message in clear: %v", f)
	}
	if got := string(f.GetEncodedAttributes().GetMetadata()[MetadataKeyID]); got != SystemKeyID {
		t.Fatalf("failure under an unusable key encrypted under %q, want %q", got, SystemKeyID)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if len(sub) > 0 && len(s) >= len(sub) {
			for i := 0; i+len(sub) <= len(s); i++ {
				if s[i:i+len(sub)] == sub {
					return true
				}
			}
		}
	}
	return false
}
