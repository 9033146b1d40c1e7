package activities

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// Sealer encrypts data under a subject's data key, so that crypto-shredding
// the key makes the data unreadable. internal/privacy's Keyring is one.
type Sealer interface {
	Seal(ctx context.Context, keyID string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
}

// Hasher derives keyed hashes, so that lookups never need the clear value.
type Hasher interface {
	Hash(kind, value string) string
}

// Sync writes conversations into the CRM.
type Sync struct {
	CRM     crm.Connector
	Store   store.Store
	Sealer  Sealer
	Hasher  Hasher
	Gate    *BudgetGate
	Metrics *metrics.Metrics
	Log     *zap.Logger
}

// SyncBatch writes one ordered batch of a conversation into the CRM. Events
// the CRM rejects permanently are parked, encrypted, with the reason, and
// the rest of the batch is still written.
func (a *Sync) SyncBatch(ctx context.Context, batch crm.SyncBatch) (crm.SyncResult, error) {
	var res crm.SyncResult
	err := a.Gate.guard(ctx, func(ctx context.Context) error {
		var err error
		res, err = a.CRM.Sync(ctx, batch)
		return err
	})
	if err != nil {
		if crm.KindOf(err) == crm.BudgetExhausted {
			a.Metrics.SyncPaused.Set(1)
		}
		return res, classify(err)
	}
	a.Metrics.SyncPaused.Set(0)
	a.Metrics.SyncBatches.Inc()
	a.Metrics.SyncEvents.Add(float64(len(res.Written)))
	a.Metrics.CRMCalls.Add(float64(res.Calls))
	if err := a.Store.UpsertConversation(ctx, store.Conversation{
		ID: batch.ConversationID, Channel: channelOf(batch.Events), KeyID: batch.ConversationID, LastEventAt: time.Now(),
	}); err != nil {
		return res, err
	}
	if err := a.park(ctx, batch, res.Parked); err != nil {
		return res, err
	}
	return res, nil
}

// park stores the events the CRM rejected permanently.
func (a *Sync) park(ctx context.Context, batch crm.SyncBatch, parked []crm.Parked) error {
	if len(parked) == 0 {
		return nil
	}
	byID := make(map[string]schemas.Event, len(batch.Events))
	for _, e := range batch.Events {
		byID[e.PlatformMessageID] = e
	}
	for _, p := range parked {
		e, ok := byID[p.PlatformMessageID]
		if !ok {
			continue
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		sealed, err := a.Sealer.Seal(ctx, batch.ConversationID, raw)
		if err != nil {
			return err
		}
		hash := a.Hasher.Hash("message", string(e.Channel)+"|"+e.PlatformMessageID)
		if err := a.Store.Park(ctx, store.ParkedMessage{
			ID:                  hash,
			ConversationID:      batch.ConversationID,
			PlatformMessageHash: hash,
			Payload:             sealed,
			KeyID:               batch.ConversationID,
			ErrorCode:           p.ErrorCode,
			Reason:              p.Message,
			Fields:              p.Fields,
		}); err != nil {
			return err
		}
		a.Metrics.Parked.Inc()
		a.Log.Warn("crm rejected an event; parked it for replay after the mapping is fixed",
			zap.String("conversation", batch.ConversationID), zap.String("error_code", p.ErrorCode), zap.Strings("fields", p.Fields))
	}
	return nil
}

// ProbeCRM makes one cheap CRM call, through the budget gate.
func (a *Sync) ProbeCRM(ctx context.Context) error {
	return classify(a.Gate.guard(ctx, a.CRM.Probe))
}

func channelOf(events []schemas.Event) string {
	if len(events) == 0 {
		return ""
	}
	return string(events[0].Channel)
}
