package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/activities/platforms"
	"github.com/webcaresync/webcaresync/internal/identity"
	"github.com/webcaresync/webcaresync/internal/metrics"
	"github.com/webcaresync/webcaresync/internal/store"
)

// KeyShredder destroys data keys: the crypto-shredding step of erasure.
// internal/privacy's Keyring is one.
type KeyShredder interface {
	KeyMerger
	Sealer
	Destroy(ctx context.Context, subjectID string) (int, error)
}

// DSR carries out data-subject requests across every linked system.
type DSR struct {
	CRM       crm.Connector
	Store     store.Store
	Keys      KeyShredder
	Hasher    Hasher
	Temporal  client.Client
	Namespace string
	Platforms []platforms.Platform
	Region    string
	Metrics   *metrics.Metrics
	Log       *zap.Logger
}

// Policies recorded in the ledger.
const (
	policyAccountability = "GDPR Art. 5(2) accountability: ledger and audit keep keyed hashes only"
	policyErasure        = "GDPR Art. 17"
	policyCryptoShred    = "crypto-shredding: the data keys are destroyed, so every encrypted copy (Temporal histories, backups, store) becomes unreadable"
)

// subjectHashes returns the keyed hashes of the request's identifiers.
func (a *DSR) subjectHashes(ids SubjectIdentifiers) (hashes []string, emails, phones []string, personas []crm.PersonaRef) {
	if e := strings.ToLower(strings.TrimSpace(ids.Email)); e != "" {
		emails = append(emails, e)
		hashes = append(hashes, a.Hasher.Hash(store.KindEmail, e))
	}
	if p := identity.NormalisePhone(ids.Phone, a.Region); p != "" {
		phones = append(phones, p)
		hashes = append(hashes, a.Hasher.Hash(store.KindPhone, p))
	}
	for _, h := range ids.Handles {
		hashes = append(hashes, a.Hasher.Hash(store.KindHandle, h.Provider+":"+h.ID))
		personas = append(personas, crm.PersonaRef{Provider: h.Provider, ExternalID: h.ID})
	}
	return hashes, emails, phones, personas
}

// Discover finds the subject in every linked system: the identity graph,
// the CRM (contacts by email and phone, personas by handle, then their
// posts and cases), the conversations and their Temporal executions. It
// appends "found" rows to the ledger and returns ids and counts only.
func (a *DSR) Discover(ctx context.Context, in DiscoverInput) (Footprint, error) {
	defer keepAlive(ctx)()
	fp := Footprint{CRM: map[string][]string{}, Platforms: map[string][]PlatformItem{}, Store: map[string]int{}}
	hashes, emails, phones, personas := a.subjectHashes(in.Identifiers)
	subjects, err := a.Store.FindSubjectsByIdentifierHashes(ctx, hashes)
	if err != nil {
		return fp, err
	}
	q := crm.DiscoverQuery{Emails: emails, Phones: phones, Personas: personas, LiveOnly: in.LiveOnly}
	convs := map[string]bool{}
	for _, c := range in.ContactIDs {
		if !contains(q.ContactIDs, c) {
			q.ContactIDs = append(q.ContactIDs, c)
		}
	}
	for _, c := range in.ConversationIDs {
		convs[c] = true
	}
	for _, s := range subjects {
		if err := a.subjectLinks(ctx, s, &q, convs); err != nil {
			return fp, err
		}
	}
	for c := range convs {
		q.ConversationIDs = append(q.ConversationIDs, c)
	}
	sort.Strings(q.ConversationIDs)
	if eraser, ok := a.CRM.(crm.Eraser); ok {
		found, err := eraser.Discover(ctx, q)
		if err != nil {
			return fp, classify(err)
		}
		fp.CRM = found.Records
		for _, p := range found.Posts {
			fp.Platforms[p.Provider] = append(fp.Platforms[p.Provider], PlatformItem{
				ID: p.ExternalPostID, Kind: postKind(p), Channel: p.Provider, ByBrand: p.Outbound,
			})
		}
		// Contacts found in the CRM lead to subjects webcaresync linked to
		// them, and those to more conversations.
		for _, contact := range found.Records["Contact"] {
			more, err := a.Store.FindSubjectsByIdentifierHashes(ctx, []string{a.Hasher.Hash(KindContact, contact)})
			if err != nil {
				return fp, err
			}
			for _, s := range more {
				if !contains(subjects, s) {
					subjects = append(subjects, s)
					if err := a.subjectLinks(ctx, s, &q, convs); err != nil {
						return fp, err
					}
				}
			}
		}
		for _, c := range found.ConversationIDs {
			convs[c] = true
		}
		// The conversations that carried the subject's posts and the
		// brand's replies to them, by the dedupe claims of their messages:
		// this also finds threads synced before their customers were
		// recorded as participants.
		more, err := a.Store.ConversationsOfEvents(ctx, a.postEventKeys(found.Posts))
		if err != nil {
			return fp, err
		}
		for _, c := range more {
			convs[c] = true
		}
	}
	fp.SubjectIDs = subjects
	for c := range convs {
		fp.ConversationIDs = append(fp.ConversationIDs, c)
	}
	sort.Strings(fp.ConversationIDs)
	if err := a.countStore(ctx, &fp, hashes); err != nil {
		return fp, err
	}
	fp.Executions = a.countExecutions(ctx, fp.ConversationIDs)
	return fp, a.ledgerFound(ctx, in, fp)
}

// subjectLinks adds a subject's CRM links and conversations (those it is
// the subject of and those it wrote in) to the query.
func (a *DSR) subjectLinks(ctx context.Context, subjectID string, q *crm.DiscoverQuery, convs map[string]bool) error {
	links, err := a.Store.LinksBySubject(ctx, subjectID)
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.CRMContactID != "" && !contains(q.ContactIDs, l.CRMContactID) {
			q.ContactIDs = append(q.ContactIDs, l.CRMContactID)
		}
	}
	cs, err := a.Store.ConversationsBySubject(ctx, subjectID)
	if err != nil {
		return err
	}
	for _, c := range cs {
		convs[c.ID] = true
	}
	// Public threads the subject wrote in but did not start: their
	// executions hold the subject's messages too.
	joined, err := a.Store.ConversationsByParticipant(ctx, subjectID)
	if err != nil {
		return err
	}
	for _, id := range joined {
		convs[id] = true
	}
	return nil
}

// postEventKeys returns the dedupe keys under which the ingest claimed the
// posts' messages: the keyed hash of workflows.DedupeKey of a message
// (channel, "|m|", platform message ID). The DSR's provider names are the
// channel names.
func (a *DSR) postEventKeys(posts []crm.PlatformPost) []string {
	keys := make([]string, 0, len(posts))
	for _, p := range posts {
		if p.Provider == "" || p.ExternalPostID == "" {
			continue
		}
		keys = append(keys, a.Hasher.Hash("event", p.Provider+"|m|"+p.ExternalPostID))
	}
	return keys
}

func postKind(p crm.PlatformPost) string {
	switch {
	case !p.Public:
		return "dm"
	case p.Outbound:
		return "reply"
	default:
		return "comment"
	}
}

// countStore counts the subject's rows in webcaresync's store.
func (a *DSR) countStore(ctx context.Context, fp *Footprint, requestHashes []string) error {
	all := map[string]bool{}
	for _, h := range requestHashes {
		all[h] = true
	}
	for _, s := range fp.SubjectIDs {
		ids, err := a.Store.IdentifiersBySubject(ctx, s)
		if err != nil {
			return err
		}
		fp.Store["identifiers"] += len(ids)
		for _, id := range ids {
			if id.Kind != KindContact {
				all[id.Hash] = true
			}
		}
		links, err := a.Store.LinksBySubject(ctx, s)
		if err != nil {
			return err
		}
		fp.Store["links"] += len(links)
		keys, err := a.Store.DataKeysBySubject(ctx, s)
		if err != nil {
			return err
		}
		fp.Store["data_keys"] += len(keys)
	}
	fp.Store["conversations"] = len(fp.ConversationIDs)
	reviews, err := a.Store.ListReviews(ctx, "")
	if err != nil {
		return err
	}
	for _, r := range reviews {
		if contains(fp.ConversationIDs, r.ConversationID) {
			fp.Store["reviews"]++
		}
	}
	for h := range all {
		fp.IdentifierHashes = append(fp.IdentifierHashes, h)
	}
	sort.Strings(fp.IdentifierHashes)
	return nil
}

// countExecutions counts the conversations that have a Temporal execution.
func (a *DSR) countExecutions(ctx context.Context, convs []string) int {
	n := 0
	for _, id := range convs {
		if _, err := a.Temporal.DescribeWorkflowExecution(ctx, id, ""); err == nil {
			n++
		}
	}
	return n
}

func (a *DSR) ledgerFound(ctx context.Context, in DiscoverInput, fp Footprint) error {
	var out []Outcome
	for obj, ids := range fp.CRM {
		out = append(out, Outcome{System: SystemCRM, Action: store.LedgerFound, Object: obj, Count: len(ids)})
	}
	for p, items := range fp.Platforms {
		out = append(out, Outcome{System: p, Action: store.LedgerFound, Object: "posts", Count: len(items)})
	}
	for table, n := range fp.Store {
		out = append(out, Outcome{System: SystemStore, Action: store.LedgerFound, Object: table, Count: n})
	}
	out = append(out, Outcome{System: SystemTemporal, Action: store.LedgerFound, Object: "conversation executions", Count: fp.Executions})
	return a.ledger(ctx, in.DSRID, "found-"+in.Pass, out)
}

// ledger appends outcomes idempotently: a retried or replayed step writes
// each row once.
func (a *DSR) ledger(ctx context.Context, dsrID, step string, outcomes []Outcome) error {
	sort.SliceStable(outcomes, func(i, j int) bool {
		if outcomes[i].System != outcomes[j].System {
			return outcomes[i].System < outcomes[j].System
		}
		return outcomes[i].Object < outcomes[j].Object
	})
	for i, o := range outcomes {
		at := o.At
		if at.IsZero() {
			at = time.Now()
		}
		if err := a.Store.AppendLedger(ctx, store.LedgerEntry{
			ID:    fmt.Sprintf("%s:%s:%s:%s:%s:%d", dsrID, step, o.System, o.Action, o.Object, i),
			DSRID: dsrID, System: o.System, Action: o.Action, Count: o.Count,
			Detail: strings.TrimSpace(o.Object + " " + o.Detail), Policy: o.Policy, At: at,
		}); err != nil {
			return err
		}
	}
	return nil
}

// StopConversations terminates the subject's conversation workflows so
// that nothing writes to the CRM while it is erased, and forgets their
// stored CRM state: it names the case, personas and contact the erasure is
// about to delete, so a message that arrives meanwhile starts a new run
// with new records (which the final discovery sweeps up) instead of
// writing against deleted ones.
func (a *DSR) StopConversations(ctx context.Context, in EraseInput) error {
	defer keepAlive(ctx)()
	for _, id := range in.Footprint.ConversationIDs {
		err := a.Temporal.TerminateWorkflow(ctx, id, "", "data-subject erasure")
		var nf *serviceerror.NotFound
		if err != nil && !errors.As(err, &nf) {
			return err
		}
		if err := a.Store.DeleteConversationState(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// EraseCRM applies the mapping's erasure policy in the CRM.
func (a *DSR) EraseCRM(ctx context.Context, in EraseInput) error {
	defer keepAlive(ctx)()
	eraser, ok := a.CRM.(crm.Eraser)
	if !ok {
		return a.ledger(ctx, in.DSRID, in.ledgerStep("erase-crm"), []Outcome{{System: SystemCRM, Action: store.LedgerNotPossible, Detail: "the CRM connector does not support erasure; erase the records by hand"}})
	}
	records, err := a.withLateCRMRecords(ctx, eraser, in)
	if err != nil {
		return err
	}
	results, err := eraser.Erase(ctx, records)
	if err != nil {
		return classify(err)
	}
	out := make([]Outcome, 0, len(results))
	for _, r := range results {
		out = append(out, Outcome{System: SystemCRM, Action: r.Action, Object: r.Object, Count: r.Count, Detail: r.Detail, Policy: r.Policy})
	}
	return a.ledger(ctx, in.DSRID, in.ledgerStep("erase-crm"), out)
}

// withLateCRMRecords adds to the footprint's CRM records what the CRM holds
// of the subject now: the conversation workflows stop before this step,
// but a message that arrives afterwards starts a new run, which writes its
// post and case against the subject's persona and contact until they are
// gone; and this step may run hours after the discovery when it waited for
// an operator. Asking the CRM again here, while the persona and contact
// still lead to such records, leaves nothing orphaned for the final
// discovery to miss.
func (a *DSR) withLateCRMRecords(ctx context.Context, eraser crm.Eraser, in EraseInput) (map[string][]string, error) {
	_, emails, phones, personas := a.subjectHashes(in.Subject)
	q := crm.DiscoverQuery{Emails: emails, Phones: phones, Personas: personas, ContactIDs: in.Footprint.CRM["Contact"]}
	found, err := eraser.Discover(ctx, q)
	if err != nil {
		return nil, classify(err)
	}
	records := make(map[string][]string, len(in.Footprint.CRM))
	for obj, ids := range in.Footprint.CRM {
		records[obj] = slices.Clone(ids)
	}
	for obj, ids := range found.Records {
		for _, id := range ids {
			if !contains(records[obj], id) {
				records[obj] = append(records[obj], id)
			}
		}
	}
	return records, nil
}

// ErasePlatforms deletes or hides what the platforms' APIs allow and
// records what they do not, with the guidance for the subject.
func (a *DSR) ErasePlatforms(ctx context.Context, in EraseInput) error {
	defer keepAlive(ctx)()
	var out []Outcome
	providers := make([]string, 0, len(in.Footprint.Platforms))
	for p := range in.Footprint.Platforms {
		providers = append(providers, p)
	}
	sort.Strings(providers)
	for _, provider := range providers {
		items := in.Footprint.Platforms[provider]
		posts := make([]crm.PlatformPost, 0, len(items))
		for _, it := range items {
			posts = append(posts, crm.PlatformPost{Provider: provider, ExternalPostID: it.ID, Outbound: it.ByBrand, Public: it.Kind != "dm"})
		}
		p := platforms.ForProvider(a.Platforms, provider)
		if p == nil {
			out = append(out, Outcome{System: provider, Action: store.LedgerNotPossible, Object: "posts", Count: len(posts),
				Detail: "no API credentials are configured for this platform; the subject was told to delete their own posts and messages in the app, and the brand's replies must be removed by hand", Policy: policyErasure})
			continue
		}
		results, err := p.Erase(ctx, posts)
		if err != nil {
			return classify(err)
		}
		for _, r := range results {
			out = append(out, Outcome{System: p.Name(), Action: ledgerAction(r.Action), Object: provider + " posts", Count: r.Count, Detail: r.Detail, Policy: r.Policy})
		}
	}
	return a.ledger(ctx, in.DSRID, in.ledgerStep("erase-platforms"), out)
}

// ledgerAction maps a platform action to a ledger action: hiding a comment
// is an anonymisation from the public's point of view.
func ledgerAction(action string) string {
	if action == "hidden" {
		return store.LedgerAnonymised
	}
	return action
}

// EraseTemporal deletes every run of the subject's conversation executions
// and their histories: the current run and those a continue-as-new or an
// idle stop closed, which a deletion by workflow ID alone would leave until
// the namespace's retention ends. Copies in backups or archives stay
// encrypted under keys that the next step destroys.
func (a *DSR) EraseTemporal(ctx context.Context, in EraseInput) error {
	defer keepAlive(ctx)()
	n := 0
	for _, id := range in.Footprint.ConversationIDs {
		deleted, err := a.deleteRuns(ctx, id)
		if err != nil {
			return err
		}
		n += deleted
	}
	return a.ledger(ctx, in.DSRID, in.ledgerStep("erase-temporal"), []Outcome{
		{System: SystemTemporal, Action: store.LedgerErased, Object: "conversation executions", Count: n, Policy: policyErasure},
		{System: SystemTemporal, Action: store.LedgerRetained, Object: "this request's own history", Detail: "encrypted under the request's key, which is destroyed when the request completes", Policy: policyCryptoShred},
	})
}

// deleteTimeout bounds how long deleteRuns waits for Temporal to remove
// the runs of one workflow: a cluster removes a deleted execution, and its
// visibility record, once its queues checkpoint, every 30 seconds by
// default (the embedded server does it every second).
const deleteTimeout = 90 * time.Second

// deleteRuns deletes every run of workflowID and returns once Temporal
// holds none of them, neither the runs nor their visibility records, with
// the number of runs it deleted. Deletion runs in the background on the
// server; waiting makes the ledger say what is true, and a retry of the
// activity repeats the wait. The runs are listed again on every round, so
// that a run that visibility showed late is deleted too.
func (a *DSR) deleteRuns(ctx context.Context, workflowID string) (int, error) {
	deleted := map[string]bool{}
	deadline := time.Now().Add(deleteTimeout)
	for {
		runs, err := a.runsOf(ctx, workflowID)
		if err != nil {
			return len(deleted), err
		}
		// The latest run as well: visibility may not list a run that
		// started a moment ago.
		d, err := a.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return len(deleted), err
		default:
			if latest := d.GetWorkflowExecutionInfo().GetExecution().GetRunId(); !slices.Contains(runs, latest) {
				runs = append(runs, latest)
			}
		}
		if len(runs) == 0 {
			return len(deleted), nil
		}
		for _, run := range runs {
			_, err := a.Temporal.WorkflowService().DeleteWorkflowExecution(ctx, deleteRequest(a.Namespace, workflowID, run))
			switch {
			case err == nil:
				deleted[run] = true
			case errors.As(err, &nf):
			default:
				return len(deleted), err
			}
		}
		if time.Now().After(deadline) {
			return len(deleted), fmt.Errorf("temporal has not finished deleting a conversation's executions; retrying")
		}
		select {
		case <-ctx.Done():
			return len(deleted), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runsOf lists the run IDs visibility holds for workflowID, open and
// closed.
func (a *DSR) runsOf(ctx context.Context, workflowID string) ([]string, error) {
	var runs []string
	var token []byte
	for {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     a.Namespace,
			Query:         "WorkflowId = '" + strings.ReplaceAll(workflowID, "'", "\\'") + "'",
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("cannot list the runs of a conversation execution: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			runs = append(runs, e.GetExecution().GetRunId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return runs, nil
		}
	}
}

// ShredKeys destroys every data key of the subject and of its
// conversations: whatever copy of their payloads survives anywhere can no
// longer be decrypted, even with the master key.
func (a *DSR) ShredKeys(ctx context.Context, in EraseInput) error {
	defer keepAlive(ctx)()
	total := 0
	earlier, running, err := a.earlierRequests(ctx, in)
	if err != nil {
		return err
	}
	// Conversations not linked to a subject, and the subject's earlier
	// access requests (their histories and exports hold what they found),
	// have keys of their own; gather them under one shred subject first.
	shred := "shred-" + in.DSRID
	if names := append(slices.Clone(in.Footprint.ConversationIDs), earlier...); len(names) > 0 {
		if err := a.Keys.Merge(ctx, names, shred); err != nil {
			return err
		}
	}
	for _, s := range append([]string{shred}, in.Footprint.SubjectIDs...) {
		n, err := a.Keys.Destroy(ctx, s)
		if err != nil {
			return err
		}
		total += n
	}
	outcomes := []Outcome{{System: SystemKeys, Action: store.LedgerErased, Object: "data keys", Count: total, Policy: policyCryptoShred}}
	if len(earlier) > 0 {
		outcomes = append(outcomes, Outcome{System: SystemKeys, Action: store.LedgerErased, Object: "earlier access requests", Count: len(earlier),
			Detail: "their Temporal histories and access exports can no longer be decrypted; their ledger rows stay", Policy: policyCryptoShred})
	}
	if len(running) > 0 {
		outcomes = append(outcomes, Outcome{System: SystemKeys, Action: store.LedgerRetained, Object: "requests still running", Count: len(running),
			Detail: "other requests for this subject were still running and keep their copies: run this erasure again once they complete (" + strings.Join(running, ", ") + ")",
			Policy: policyCryptoShred})
	}
	return a.ledger(ctx, in.DSRID, in.ledgerStep("shred-keys"), outcomes)
}

// earlierRequests lists the subject's other requests by their keyed hash:
// the completed access requests, whose keys the erasure destroys, and the
// requests still running, which keep theirs. Completed erasures destroyed
// their own keys already.
func (a *DSR) earlierRequests(ctx context.Context, in EraseInput) (completedAccess, running []string, err error) {
	hashes, _, _, _ := a.subjectHashes(in.Subject)
	seen := map[string]bool{in.DSRID: true}
	for _, h := range append(hashes, in.Footprint.IdentifierHashes...) {
		ds, err := a.Store.ListDSRs(ctx, store.DSRFilter{SubjectHash: h})
		if err != nil {
			return nil, nil, err
		}
		for _, d := range ds {
			if seen[d.ID] {
				continue
			}
			seen[d.ID] = true
			switch {
			case d.Status != StatusCompleted:
				running = append(running, d.ID)
			case d.Type == store.DSRAccess:
				completedAccess = append(completedAccess, d.ID)
			}
		}
	}
	sort.Strings(completedAccess)
	sort.Strings(running)
	return completedAccess, running, nil
}

// KindConversation is the hash kind of a conversation on the suppression
// list: ConversationHash.
const KindConversation = "conversation"

// ConversationHash is the suppression-list hash of a conversation, by its
// opaque conversation ID (the workflow ID the ingest derives from the
// channel and conversation key). The ingest's import checks it for every
// event, so that the brand's replies in an erased conversation, which the
// brand wrote but which answer and name the customer, stay out too.
func ConversationHash(h Hasher, conversationID string) string {
	return h.Hash(KindConversation, conversationID)
}

// EraseStore purges the subject from webcaresync's store and adds its
// identifiers, its conversations and its messages (and the brand's replies
// to them) to the suppression list, so that a backfill or a replay of old
// events cannot bring the data back: not the subject's own messages, nor
// the brand's replies to them. Ledger and audit rows stay; they name the
// subject, the conversations and the messages by keyed hash only.
func (a *DSR) EraseStore(ctx context.Context, in EraseInput) error {
	defer keepAlive(ctx)()
	// First, while the conversations still say whose they are; a retry
	// adds what is missing.
	suppressed, err := a.suppressionHashes(ctx, in.Footprint)
	if err != nil {
		return err
	}
	if err := a.Store.AddSuppressed(ctx, suppressed, in.DSRID); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, s := range in.Footprint.SubjectIDs {
		c, err := a.Store.PurgeSubject(ctx, s)
		if err != nil {
			return err
		}
		for k, v := range c {
			counts[k] += v
		}
	}
	for _, id := range in.Footprint.ConversationIDs {
		n, err := a.Store.ForgetEvents(ctx, id)
		if err != nil {
			return err
		}
		counts["dedupe"] += n
		if err := a.Store.DeleteConversation(ctx, id); err != nil {
			return err
		}
	}
	var out []Outcome
	for table, n := range counts {
		out = append(out, Outcome{System: SystemStore, Action: store.LedgerErased, Object: table, Count: n, Policy: policyErasure})
	}
	out = append(out,
		Outcome{System: SystemStore, Action: store.LedgerRetained, Object: "suppression list", Count: len(suppressed), Detail: "keyed hashes of the identifiers, conversations and messages, so that imports and replays cannot restore the data", Policy: policyErasure},
		Outcome{System: SystemStore, Action: store.LedgerRetained, Object: "ledger and audit log", Policy: policyAccountability},
	)
	return a.ledger(ctx, in.DSRID, in.ledgerStep("erase-store"), out)
}

// suppressionHashes returns what an erasure puts on the suppression list:
//   - the subject's identifier hashes;
//   - the conversations that are the subject's (ConversationHash), or have
//     no subject: every event of them is the subject's or answers them,
//     the brand's replies included, which the author hash does not cover;
//   - the dedupe keys of the subject's messages and of the brand's replies
//     to them, which the CRM discovery found: an imported reply to one of
//     them stays out even when its conversation key names another root
//     than the erased thread's.
//
// A public thread that another customer started is kept off as a whole:
// an import of that customer's backfill must still bring in their own
// messages. The subject's messages in it, and the replies to them, are
// suppressed one by one.
func (a *DSR) suppressionHashes(ctx context.Context, fp Footprint) ([]string, error) {
	hashes := slices.Clone(fp.IdentifierHashes)
	for _, id := range fp.ConversationIDs {
		c, err := a.Store.GetConversation(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			// Deleted by an earlier attempt, which suppressed it if it
			// was the subject's.
			continue
		}
		if err != nil {
			return nil, err
		}
		if c.SubjectID == "" || contains(fp.SubjectIDs, c.SubjectID) {
			hashes = append(hashes, ConversationHash(a.Hasher, id))
		}
	}
	var posts []crm.PlatformPost
	for provider, items := range fp.Platforms {
		for _, it := range items {
			posts = append(posts, crm.PlatformPost{Provider: provider, ExternalPostID: it.ID})
		}
	}
	return append(hashes, a.postEventKeys(posts)...), nil
}

// Export writes the access export: everything held about the subject,
// grouped by system, sealed under the request's key.
func (a *DSR) Export(ctx context.Context, in ExportInput) error {
	defer keepAlive(ctx)()
	doc := AccessExport{DSRID: in.DSRID, GeneratedAt: time.Now().UTC(), Subject: in.Subject, Systems: map[string]any{}}
	if eraser, ok := a.CRM.(crm.Eraser); ok {
		records, err := eraser.Export(ctx, in.Footprint.CRM)
		if err != nil {
			return classify(err)
		}
		doc.Systems[SystemCRM] = records
	}
	st, err := a.storeExport(ctx, in)
	if err != nil {
		return err
	}
	doc.Systems[SystemStore] = st
	doc.Systems[SystemTemporal] = map[string]any{
		"conversation_executions": in.Footprint.Executions,
		"note":                    "the messages in these executions are the CRM's social posts listed above; they are kept encrypted under the subject's key",
	}
	plat := map[string]any{}
	for p, items := range in.Footprint.Platforms {
		plat[p] = items
	}
	doc.Systems["platforms"] = plat
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	sealed, err := a.Keys.Seal(ctx, in.DSRID, raw)
	if err != nil {
		return err
	}
	d, err := a.Store.GetDSR(ctx, in.DSRID)
	if err != nil {
		return err
	}
	d.ReportJSON, _ = json.Marshal(SealedReport{KeyID: in.DSRID, Sealed: sealed})
	d.UpdatedAt = time.Time{}
	if _, err := a.Store.UpdateDSR(ctx, d); err != nil {
		return err
	}
	var n int
	for _, ids := range in.Footprint.CRM {
		n += len(ids)
	}
	return a.ledger(ctx, in.DSRID, "export", []Outcome{{System: SystemStore, Action: "exported", Object: "access export", Count: n, Policy: "GDPR Art. 15"}})
}

// AccessExport is the access export document.
type AccessExport struct {
	DSRID       string             `json:"dsr_id"`
	GeneratedAt time.Time          `json:"generated_at"`
	Subject     SubjectIdentifiers `json:"subject"`
	Systems     map[string]any     `json:"systems"`
}

// SealedReport is how an access export is kept in the store: encrypted
// under the request's key.
type SealedReport struct {
	KeyID  string `json:"key_id"`
	Sealed []byte `json:"sealed"`
}

// storeExport gathers the subject's identifiers (decrypted), links with
// their evidence, reviews and DSR history from webcaresync's store.
func (a *DSR) storeExport(ctx context.Context, in ExportInput) (map[string]any, error) {
	type ident struct {
		Kind, Value, Source string
		At                  time.Time
	}
	var idents []ident
	var links []store.Link
	for _, s := range in.Footprint.SubjectIDs {
		ids, err := a.Store.IdentifiersBySubject(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if id.Kind == KindContact || len(id.Ciphertext) == 0 {
				continue
			}
			v, err := a.Keys.Open(ctx, id.KeyID, id.Ciphertext)
			if err != nil {
				v = []byte("(unreadable: " + err.Error() + ")")
			}
			idents = append(idents, ident{id.Kind, string(v), id.SourceConversationID, id.CreatedAt})
		}
		ls, err := a.Store.LinksBySubject(ctx, s)
		if err != nil {
			return nil, err
		}
		links = append(links, ls...)
	}
	var reviews []store.Review
	all, err := a.Store.ListReviews(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if contains(in.Footprint.ConversationIDs, r.ConversationID) {
			r.CandidatesCiphertext = nil
			reviews = append(reviews, r)
		}
	}
	hashes, _, _, _ := a.subjectHashes(in.Subject)
	var history []store.DSR
	for _, h := range hashes {
		ds, err := a.Store.ListDSRs(ctx, store.DSRFilter{SubjectHash: h})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			d.ReportJSON = nil
			history = append(history, d)
		}
	}
	return map[string]any{
		"identifiers":   idents,
		"links":         links,
		"reviews":       reviews,
		"conversations": in.Footprint.ConversationIDs,
		"dsr_history":   history,
	}, nil
}

// RecordStatus writes a DSR's status, deadline, approval and ledger rows
// to the store.
func (a *DSR) RecordStatus(ctx context.Context, in StatusInput) error {
	d, err := a.Store.GetDSR(ctx, in.DSRID)
	if err != nil {
		return err
	}
	d.Status = in.Status
	if in.Deadline != nil {
		d.Deadline = *in.Deadline
		d.Extended = true
		d.ExtensionReason = in.ExtensionReason
	}
	if in.ApprovedBy != "" && d.ApprovedBy == "" {
		now := time.Now()
		d.ApprovedBy, d.ApprovedAt = in.ApprovedBy, &now
	}
	d.UpdatedAt = time.Time{}
	if _, err := a.Store.UpdateDSR(ctx, d); err != nil {
		return err
	}
	if len(in.Outcomes) > 0 {
		step := in.Step
		if step == "" {
			step = in.Status
		}
		if err := a.ledger(ctx, in.DSRID, step+"-"+in.Status+"-"+outcomesDigest(in.Outcomes), in.Outcomes); err != nil {
			return err
		}
	}
	if in.Status == StatusCompleted && d.Type == store.DSRErasure {
		// The request's own history is encrypted under its key; destroy it
		// now that nothing needs it.
		if err := a.Keys.Merge(ctx, []string{in.DSRID}, "shred-"+in.DSRID); err != nil {
			return err
		}
		if _, err := a.Keys.Destroy(ctx, "shred-"+in.DSRID); err != nil {
			return err
		}
	}
	return nil
}

// outcomesDigest names a RecordStatus call's ledger rows by what they say:
// a retry of the activity carries the same outcomes and writes no row
// twice, while another call of the same step records rows of its own: an
// escalation says which attempt failed, and every outcome carries the
// workflow's time of the call.
func outcomesDigest(outcomes []Outcome) string {
	h := sha256.New()
	for _, o := range outcomes {
		for _, f := range []string{o.System, o.Action, o.Object, strconv.Itoa(o.Count), o.Detail, o.Policy, o.At.UTC().Format(time.RFC3339Nano)} {
			h.Write([]byte(f))
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// DeadlineEvent fires reminders before the deadline and the overdue alert
// after it.
func (a *DSR) DeadlineEvent(ctx context.Context, in DeadlineInput) error {
	switch in.Kind {
	case "overdue":
		// webcaresync_dsr_overdue reads the store at scrape time
		// (metrics.WatchDSRs), so it needs no update here.
		a.Log.Error("a data-subject request is past its deadline; act now or extend it", zap.String("dsr", in.DSRID))
	default:
		a.Metrics.DSRReminders.Inc()
		a.Log.Warn("a data-subject request is due soon", zap.String("dsr", in.DSRID), zap.String("reminder", in.Kind), zap.Time("deadline", in.Deadline))
	}
	return a.Store.AppendAudit(ctx, store.AuditEntry{Actor: "webcaresync", Action: "dsr.deadline." + in.Kind, Target: in.DSRID, Outcome: in.Deadline.UTC().Format(time.RFC3339)})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// deleteRequest deletes one run of a workflow; an empty runID names the
// latest.
func deleteRequest(namespace, workflowID, runID string) *workflowservice.DeleteWorkflowExecutionRequest {
	return &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace:         namespace,
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID},
	}
}
