// Package activities holds webcaresync's Temporal activities: the side
// effects of the workflows. Each activity struct carries its dependencies
// and is registered by pointer, so tests can swap one dependency.
package activities

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/webcaresync/webcaresync/activities/crm"
)

// Application error types the workflows branch on.
const (
	// ErrPermanent marks a failure retrying cannot fix.
	ErrPermanent = "Permanent"
	// ErrBudgetExhausted marks the CRM's daily API budget as gone.
	ErrBudgetExhausted = "BudgetExhausted"
	// ErrConcurrency marks the CRM's concurrency cap as hit.
	ErrConcurrency = "Concurrency"
)

// classify turns a connector error into the Temporal error the retry
// policy expects. The message never carries record data.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *crm.Error
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Kind {
	case crm.Permanent:
		return temporal.NewNonRetryableApplicationError(ce.Error(), ErrPermanent, nil)
	case crm.BudgetExhausted:
		return temporal.NewNonRetryableApplicationError(ce.Error(), ErrBudgetExhausted, nil)
	case crm.Concurrency:
		delay := ce.RetryAfter
		if delay <= 0 {
			delay = 2 * time.Second
		}
		return temporal.NewApplicationErrorWithOptions(ce.Error(), ErrConcurrency, temporal.ApplicationErrorOptions{NextRetryDelay: delay})
	default:
		if ce.RetryAfter > 0 {
			return temporal.NewApplicationErrorWithOptions(ce.Error(), string(ce.Kind), temporal.ApplicationErrorOptions{NextRetryDelay: ce.RetryAfter})
		}
		return temporal.NewApplicationError(ce.Error(), string(ce.Kind))
	}
}

// BudgetGate remembers, for the whole worker process, that the CRM's daily
// budget is exhausted, so that paused conversations do not each spend a
// call finding out. While closed, one caller a minute may probe.
type BudgetGate struct {
	mu        sync.Mutex
	closed    bool
	nextProbe time.Time
	now       func() time.Time
	// OnChange is called with true when the gate closes and false when it
	// opens again (metrics and alerts).
	OnChange func(paused bool)
}

// NewBudgetGate returns an open gate.
func NewBudgetGate() *BudgetGate { return &BudgetGate{now: time.Now} }

// Close records that the budget is exhausted.
func (g *BudgetGate) Close() {
	g.mu.Lock()
	was := g.closed
	g.closed = true
	g.nextProbe = g.now().Add(time.Minute)
	g.mu.Unlock()
	if !was && g.OnChange != nil {
		g.OnChange(true)
	}
}

// Open records that the CRM accepts calls again.
func (g *BudgetGate) Open() {
	g.mu.Lock()
	was := g.closed
	g.closed = false
	g.mu.Unlock()
	if was && g.OnChange != nil {
		g.OnChange(false)
	}
}

// Enter reports whether a caller may call the CRM now: always while the
// gate is open, and once a minute (the probe) while it is closed.
func (g *BudgetGate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		return true
	}
	if g.now().Before(g.nextProbe) {
		return false
	}
	g.nextProbe = g.now().Add(time.Minute)
	return true
}

// Closed reports whether the budget is known to be exhausted.
func (g *BudgetGate) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// guard runs call through the gate, closing it on BudgetExhausted and
// opening it on success.
func (g *BudgetGate) guard(ctx context.Context, call func(context.Context) error) error {
	if !g.Enter() {
		return &crm.Error{Kind: crm.BudgetExhausted, Code: "REQUEST_LIMIT_EXCEEDED", Message: "daily API budget exhausted; syncing is paused and probes once a minute"}
	}
	err := call(ctx)
	switch crm.KindOf(err) {
	case crm.BudgetExhausted:
		if err != nil {
			g.Close()
		}
	default:
		if err == nil {
			g.Open()
		}
	}
	return err
}

// keepAlive heartbeats every few seconds while an activity runs, so that
// Temporal notices a dead worker within the heartbeat timeout (set at the
// call site) instead of the whole start-to-close timeout, and retries the
// attempt on another worker.
func keepAlive(ctx context.Context) func() {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// heartbeatEvery is how often keepAlive heartbeats; call sites set a
// heartbeat timeout of a few times this.
const heartbeatEvery = 3 * time.Second
