package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// ReplayParked hands parked events back to their conversation workflows,
// bypassing dedupe, and removes them from the parking lot once Temporal
// accepted them. An empty ids replays every parked event. If the CRM
// rejects an event again it is parked again, with the new reason.
func (a *App) ReplayParked(ctx context.Context, ids []string) (int, error) {
	var list []store.ParkedMessage
	if len(ids) == 0 {
		all, err := a.Store.ListParked(ctx, 0)
		if err != nil {
			return 0, err
		}
		list = all
	}
	for _, id := range ids {
		m, err := a.Store.GetParked(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("parked message %s: %w", id, err)
		}
		list = append(list, m)
	}
	n := 0
	for _, m := range list {
		raw, err := a.Keyring.Open(ctx, m.KeyID, m.Payload)
		if err != nil {
			return n, fmt.Errorf("cannot decrypt parked message %s: %w", m.ID, err)
		}
		var e schemas.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return n, err
		}
		if _, err := a.Ingestor.Ingest(ctx, []schemas.Event{e}, ingest.Options{Replay: true}); err != nil {
			return n, err
		}
		if err := a.Store.DeleteParked(ctx, m.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
