package ingest

import (
	"context"
	"sync/atomic"
	"time"
)

// Health tracks whether Temporal is reachable. With the durable inbox, a
// webhook is acknowledged once it is in the store; while Temporal is down,
// the inbox would only grow, so the edge answers 503 instead and the
// platforms keep their events and retry, as they do without an inbox.
type Health struct {
	down atomic.Bool
}

// Down reports whether the last check found Temporal unreachable.
func (h *Health) Down() bool { return h != nil && h.down.Load() }

// Watch runs check every interval until ctx ends. Two failures in a row
// mark Temporal down; one success marks it up.
func (h *Health) Watch(ctx context.Context, every time.Duration, check func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	failures := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, every+time.Second)
		err := check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		h.down.Store(failures >= 2)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
