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
	Keys    KeyMerger
	Gate    *BudgetGate
	Metrics *metrics.Metrics
	Log     *zap.Logger
}

// SyncBatch writes one ordered batch of a conversation into the CRM. Events
// the CRM rejects permanently are parked, encrypted, with the reason, and
// the rest of the batch is still written.
func (a *Sync) SyncBatch(ctx context.Context, batch crm.SyncBatch) (crm.SyncResult, error) {
	defer keepAlive(ctx)()
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
	res.State.SubjectID = batch.State.SubjectID
	if err := a.Store.UpsertConversation(ctx, store.Conversation{
		ID: batch.ConversationID, Channel: channelOf(batch.Events), KeyID: batch.ConversationID, LastEventAt: time.Now(),
	}); err != nil {
		return res, err
	}
	if res.State.SubjectID == "" {
		if e, ok := customer(batch.Events); ok {
			sid, err := a.registerSubject(ctx, batch.ConversationID, e)
			if err != nil {
				return res, err
			}
			res.State.SubjectID = sid
		}
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

// customer returns the first inbound message: its author is the
// conversation's customer.
func customer(events []schemas.Event) (schemas.Event, bool) {
	for _, e := range events {
		if e.Direction == schemas.Inbound && e.Kind == schemas.KindMessage && e.Author.PlatformUserID != "" {
			return e, true
		}
	}
	return schemas.Event{}, false
}

// registerSubject makes the conversation's customer a data subject from
// the first message on: the persona's handle is stored hashed (for lookup)
// and encrypted (for the access export), and the conversation and its data
// key join the subject. So a handle that never gets linked to a contact can
// still be found, exported and erased. A persona seen before on another
// conversation is the same subject.
func (a *Sync) registerSubject(ctx context.Context, conversationID string, e schemas.Event) (string, error) {
	hash := a.Hasher.Hash(store.KindHandle, string(e.Channel)+":"+e.Author.PlatformUserID)
	found, err := a.Store.FindSubjectsByIdentifierHashes(ctx, []string{hash})
	if err != nil {
		return "", err
	}
	var subjectID string
	if len(found) > 0 {
		subjectID = found[0]
	} else {
		s, err := a.Store.CreateSubject(ctx, store.Subject{})
		if err != nil {
			return "", err
		}
		subjectID = s.ID
		display := e.Author.Handle
		if display == "" {
			display = e.Author.DisplayName
		}
		sealed, err := a.Sealer.Seal(ctx, conversationID, []byte(string(e.Channel)+":"+e.Author.PlatformUserID+" "+display))
		if err != nil {
			return "", err
		}
		if _, err := a.Store.AddIdentifiers(ctx, []store.Identifier{{
			SubjectID: subjectID, Kind: store.KindHandle, Hash: hash, Ciphertext: sealed,
			KeyID: conversationID, SourceConversationID: conversationID,
		}}); err != nil {
			return "", err
		}
	}
	if err := a.Store.SetConversationSubject(ctx, conversationID, subjectID); err != nil {
		return "", err
	}
	return subjectID, a.Keys.Merge(ctx, []string{conversationID}, subjectID)
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
