package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities"
	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/internal/edge"
	"github.com/webcaresync/webcaresync/internal/identity"
	"github.com/webcaresync/webcaresync/internal/ingest"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/workflows"
)

func (a *App) identityActivities() *activities.Identity {
	policy := identity.LeaveUnlinked
	if a.Cfg.Identity.NoMatch == "create" {
		policy = identity.CreateContact
	}
	return &activities.Identity{
		CRM: a.CRM, Store: a.Store, Sealer: a.Keyring, Hasher: a.Hasher, Keys: a.Keyring, Gate: a.Gate,
		Region: a.Cfg.Identity.DefaultRegion, NoMatch: policy, Metrics: a.Metrics, Log: a.Log.Named("identity"),
	}
}

// ReviewView is one review as the API and CLI show it: the candidates are
// decrypted for the reviewer.
type ReviewView struct {
	ID             string                       `json:"id"`
	Status         string                       `json:"status"`
	Rule           string                       `json:"rule"`
	Reason         string                       `json:"reason"`
	ConversationID string                       `json:"conversation_id"`
	CreatedAt      time.Time                    `json:"created_at"`
	ResolvedBy     string                       `json:"resolved_by,omitempty"`
	ResolvedAt     *time.Time                   `json:"resolved_at,omitempty"`
	ContactID      string                       `json:"contact_id,omitempty"`
	Candidates     *activities.ReviewCandidates `json:"candidates,omitempty"`
	Erased         bool                         `json:"erased,omitempty"`
}

// reviews is the review queue service behind /v1/reviews and the CLI.
type reviews struct{ a *App }

// ReviewService returns the review queue service.
func (a *App) ReviewService() edge.ReviewService { return reviews{a} }

// List returns every review, open ones first.
func (r reviews) List(ctx context.Context) (any, error) {
	all, err := r.a.Store.ListReviews(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]ReviewView, 0, len(all))
	for _, rv := range all {
		v := ReviewView{
			ID: rv.ID, Status: rv.Status, Rule: rv.Rule, Reason: rv.Reason, ConversationID: rv.ConversationID,
			CreatedAt: rv.CreatedAt, ResolvedBy: rv.ResolvedBy, ResolvedAt: rv.ResolvedAt, ContactID: rv.ResolvedContactID,
		}
		raw, err := r.a.Keyring.Open(ctx, rv.ConversationID, rv.CandidatesCiphertext)
		switch {
		case errors.Is(err, privacy.ErrErased):
			v.Erased = true
		case err != nil:
			return nil, err
		default:
			var c activities.ReviewCandidates
			if err := json.Unmarshal(raw, &c); err != nil {
				return nil, err
			}
			v.Candidates = &c
		}
		out = append(out, v)
	}
	// Open reviews first, then newest first.
	sortReviews(out)
	return out, nil
}

// Resolve hands the decision to the conversation's workflow, which links
// (or rejects) and records who approved it.
func (r reviews) Resolve(ctx context.Context, id, contactID string, reject bool, actor string) error {
	rv, err := r.a.Store.GetReview(ctx, id)
	if err != nil {
		return err
	}
	if rv.Status != store.ReviewOpen {
		return fmt.Errorf("%w: review %s is already %s", edge.ErrConflict, id, rv.Status)
	}
	if !reject {
		raw, err := r.a.Keyring.Open(ctx, rv.ConversationID, rv.CandidatesCiphertext)
		if err != nil {
			return err
		}
		var c activities.ReviewCandidates
		if err := json.Unmarshal(raw, &c); err != nil {
			return err
		}
		// A reviewer may choose a contact outside the candidates; it must
		// exist in the CRM.
		if !hasCandidate(c, contactID) && r.a.CRM != nil {
			found, err := r.a.CRM.FindContacts(ctx, contactQueryByID(contactID))
			if err != nil || len(found) == 0 {
				return fmt.Errorf("%w: contact %s is neither a candidate nor found in the CRM", edge.ErrInvalid, contactID)
			}
		}
	}
	return r.signal(ctx, rv.ConversationID, workflows.ReviewSignal, workflows.ReviewDecision{
		ReviewID: id, ContactID: contactID, Reject: reject, Actor: actor,
	})
}

// Unlink hands an unlink request to the conversation's workflow, which
// removes the link of the conversation's customer in the CRM and takes the
// conversation out of the contact's data subject. The API's audit log
// records who asked; the identity graph keeps the revoked link.
func (r reviews) Unlink(ctx context.Context, conversationID, actor string) error {
	c, err := r.a.Store.GetConversation(ctx, conversationID)
	if err != nil {
		return err
	}
	linked := false
	if c.SubjectID != "" {
		links, err := r.a.Store.LinksBySubject(ctx, c.SubjectID)
		if err != nil {
			return err
		}
		for _, l := range links {
			linked = linked || l.RevokedAt == nil
		}
	}
	if !linked {
		return fmt.Errorf("%w: the customer of conversation %s is not linked to a contact", edge.ErrConflict, conversationID)
	}
	r.a.Log.Info("unlink requested", zap.String("conversation", conversationID), zap.String("actor", actor))
	return r.signal(ctx, conversationID, workflows.UnlinkSignal, nil)
}

// signal sends a signal to a conversation's workflow. A workflow that has
// ended (a conversation idle for a day) is started again with the state
// its last run ended with, so that the decision is applied by the same
// activities as in a running one.
func (r reviews) signal(ctx context.Context, conversationID, name string, arg any) error {
	ctx = privacy.WithKeyID(ctx, conversationID)
	err := r.a.Client.SignalWorkflow(ctx, conversationID, "", name, arg)
	var notFound *serviceerror.NotFound
	if !errors.As(err, &notFound) {
		return err
	}
	st, err := r.lastState(ctx, conversationID)
	if errors.As(err, &notFound) {
		// Temporal no longer keeps the history (retention): the new run
		// starts without state, the identity graph and the contact still
		// change now, and the persona and posts in the CRM follow with the
		// customer's next message.
		r.a.Log.Warn("the ended conversation's history is gone; applying without its state", zap.String("conversation", conversationID))
		st, err = crm.ConversationState{}, nil
	}
	if err != nil {
		return fmt.Errorf("the conversation's workflow has ended and its last state cannot be read; retry later: %w", err)
	}
	in := workflows.ConversationInput{ConversationID: conversationID, CRMTaskQueue: r.a.CRMTaskQueue(), BatchSize: r.a.Cfg.Sync.BatchSize, State: st}
	if ing := r.a.Ingestor; ing != nil {
		in.IdleTimeout, in.FlushInterval = ing.IdleTimeout, ing.FlushInterval
	}
	_, err = r.a.Client.SignalWithStartWorkflow(ctx, conversationID, name, arg, client.StartWorkflowOptions{
		ID:                       conversationID,
		TaskQueue:                r.a.Cfg.Temporal.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(ingest.KindKey.ValueSet("conversation")),
	}, workflows.Conversation, in)
	return err
}

// lastState replays the history of a conversation's last run as the
// workflow keeps its state: the run's input, then each batch's, match's
// and review's result.
func (r reviews) lastState(ctx context.Context, conversationID string) (crm.ConversationState, error) {
	dc := privacy.NewDataConverter(r.a.Keyring).WithKeyID(conversationID)
	it := r.a.Client.GetWorkflowHistory(ctx, conversationID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var st crm.ConversationState
	activity := map[int64]string{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return st, err
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			var in workflows.ConversationInput
			if p := ev.GetWorkflowExecutionStartedEventAttributes().GetInput(); p != nil {
				if err := dc.FromPayloads(p, &in); err != nil {
					return st, err
				}
			}
			st = in.State
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			activity[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			attrs := ev.GetActivityTaskCompletedEventAttributes()
			res := attrs.GetResult()
			if res == nil {
				continue
			}
			switch activity[attrs.GetScheduledEventId()] {
			case "SyncBatch":
				var out crm.SyncResult
				if err := dc.FromPayloads(res, &out); err != nil {
					return st, err
				}
				st = out.State
			case "Match":
				var out activities.MatchResult
				if err := dc.FromPayloads(res, &out); err != nil {
					return st, err
				}
				if out.ContactID != "" {
					st.ContactID = out.ContactID
				}
				if out.SubjectID != "" {
					st.SubjectID = out.SubjectID
				}
			case "ApplyReview":
				var out crm.ConversationState
				if err := dc.FromPayloads(res, &out); err != nil {
					return st, err
				}
				st = out
			}
		}
	}
	return st, nil
}

func hasCandidate(c activities.ReviewCandidates, id string) bool {
	for _, m := range c.Contacts {
		if m.ID == id {
			return true
		}
	}
	return false
}

func sortReviews(v []ReviewView) {
	rank := func(r ReviewView) int {
		if r.Status == store.ReviewOpen {
			return 0
		}
		return 1
	}
	for i := 1; i < len(v); i++ {
		for j := i; j > 0; j-- {
			a, b := v[j-1], v[j]
			if rank(a) < rank(b) || (rank(a) == rank(b) && !a.CreatedAt.Before(b.CreatedAt)) {
				break
			}
			v[j-1], v[j] = b, a
		}
	}
}

func contactQueryByID(id string) crm.ContactQuery { return crm.ContactQuery{ID: id} }

// LinkView is one link of a persona to a contact, with its evidence.
type LinkView struct {
	ID        string     `json:"id"`
	Channel   string     `json:"channel"`
	Persona   string     `json:"persona_id"`
	ContactID string     `json:"contact_id"`
	Rule      string     `json:"rule"`
	Evidence  string     `json:"evidence_message_hash"`
	Approved  string     `json:"approved_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// ConversationID is the conversation where the persona was first
	// seen: the one to unlink (webcaresync review unlink).
	ConversationID string `json:"conversation_id,omitempty"`
}

// Links explains every link to a contact, revoked ones included.
func (r reviews) Links(ctx context.Context, contactID string) (any, error) {
	ids, err := r.a.Store.FindSubjectsByIdentifierHashes(ctx, []string{r.a.Hasher.Hash(activities.KindContact, contactID)})
	if err != nil {
		return nil, err
	}
	out := []LinkView{}
	for _, s := range ids {
		links, err := r.a.Store.LinksBySubject(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if l.CRMContactID != contactID {
				continue
			}
			v := LinkView{ID: l.ID, Channel: l.Channel, Persona: l.CRMPersonaID, ContactID: l.CRMContactID, Rule: l.Rule,
				Evidence: l.EvidenceMessageHash, Approved: l.ApprovedBy, CreatedAt: l.CreatedAt, RevokedAt: l.RevokedAt}
			handles, err := r.a.Store.IdentifiersByHashes(ctx, []string{l.PersonaHash})
			if err != nil {
				return nil, err
			}
			for _, h := range handles {
				if h.Kind == store.KindHandle && h.SourceConversationID != "" {
					v.ConversationID = h.SourceConversationID
					break
				}
			}
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no links to contact %s", edge.ErrNotFound, contactID)
	}
	return out, nil
}
