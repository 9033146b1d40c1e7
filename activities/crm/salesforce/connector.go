package salesforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// Connector writes conversations into Salesforce through a mapping. It is
// safe for concurrent use.
type Connector struct {
	client *Client
	m      *mappings.Mapping
	log    *zap.Logger
	// noHardDelete is when (Unix nanoseconds) Salesforce last refused a
	// hard delete for lack of "Bulk API Hard Delete"; 0 if never.
	noHardDelete atomic.Int64
}

// New builds a Salesforce connector. reg receives the client's metrics and
// may be nil; log may be nil.
func New(cfg Config, m *mappings.Mapping, reg prometheus.Registerer, log *zap.Logger) (*Connector, error) {
	if m == nil {
		return nil, errors.New("salesforce connector needs a mapping; use mappings.Default() or mappings.Load")
	}
	for _, name := range []string{mappings.ObjectPersona, mappings.ObjectPost, mappings.ObjectCase} {
		if m.Object(name) == nil {
			return nil, fmt.Errorf("mapping %s has no %s object; add it under objects", m.File, name)
		}
	}
	c, err := NewClient(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	return &Connector{client: c, m: m, log: c.log}, nil
}

// Client returns the connector's REST client, for GDPR and admin tasks.
func (c *Connector) Client() *Client { return c.client }

// extID is the opaque external id of a record: a hash of what identifies it,
// never the identifying values themselves.
func extID(kind string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte("webcaresync/" + kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return kind[:2] + "-" + hex.EncodeToString(h.Sum(nil))[:40]
}

// PostExternalID is the webcaresync_Id__c of the post of a platform message.
func PostExternalID(channel schemas.Channel, platformMessageID string) string {
	return extID("post", string(channel), platformMessageID)
}

// PersonaExternalID is the webcaresync_Id__c of a platform user's persona.
func PersonaExternalID(channel schemas.Channel, platformUserID string) string {
	return extID("persona", string(channel), platformUserID)
}

func caseExternalID(conversationID, openingMessageID string) string {
	return extID("case", conversationID, openingMessageID)
}

func personaKey(e schemas.Event) string {
	return string(e.Channel) + ":" + e.Author.PlatformUserID
}

// Sync writes one batch of a conversation. Up to 200 messages take at most
// three calls: one Composite for new personas and the case, one Collections
// upsert of the posts, and one Collections update for reply-to links within
// the batch, status updates and a case reopen (skipped when there are none).
// Two rare cases take one more call each: opening a new case when a closed
// case is past its reopen window, and writing a new author's persona when
// Salesforce rejected the author's first post. Larger batches are written
// 200 at a time.
func (c *Connector) Sync(ctx context.Context, batch crm.SyncBatch) (crm.SyncResult, error) {
	ctx, cc := withCounter(ctx)
	st := cloneState(batch.State)
	res := crm.SyncResult{}
	events := batch.Events
	for start := 0; start < len(events); start += MaxCollection {
		chunk := events[start:min(start+MaxCollection, len(events))]
		if err := c.syncChunk(ctx, batch.ConversationID, chunk, &st, &res); err != nil {
			res.State = st
			res.Calls = int(cc.n.Load())
			return res, err
		}
	}
	res.State = st
	res.Calls = int(cc.n.Load())
	return res, nil
}

func cloneState(s crm.ConversationState) crm.ConversationState {
	out := s
	out.PersonaIDs = make(map[string]string, len(s.PersonaIDs))
	for k, v := range s.PersonaIDs {
		out.PersonaIDs[k] = v
	}
	out.PostIDs = make(map[string]string, len(s.PostIDs))
	for k, v := range s.PostIDs {
		out.PostIDs[k] = v
	}
	return out
}

// pendingPost is one post to upsert.
type pendingPost struct {
	event schemas.Event
	extID string
	rec   Record
}

// chunkSync holds the work of one chunk of at most 200 events.
type chunkSync struct {
	conv    string
	st      *crm.ConversationState
	res     *crm.SyncResult
	posts   []*pendingPost
	byMsgID map[string]*pendingPost
	parked  map[string]bool
	// seeded are posts written in the first call (as persona parents).
	seeded map[string]bool
	// deferred are personas whose first post Salesforce rejected; they are
	// written after the posts, parented to a post it accepted.
	deferred []deferredPersona
	updates  []Update
	// updateOwner is the platform message id each update belongs to ("" for
	// the case).
	updateOwner []string
}

// deferredPersona is a persona to write after the posts; posts are its
// author's other posts of the chunk, in order.
type deferredPersona struct {
	key   string
	posts []*pendingPost
}

// updatePost queues an update of the written post of a message for the
// update call, merged with one already queued for it: Salesforce refuses a
// record twice in one Collections call.
func (s *chunkSync) updatePost(sobject, messageID string, fields Record) {
	id := s.st.PostIDs[messageID]
	for i, u := range s.updates {
		if u.ID == id && s.updateOwner[i] == messageID {
			for k, v := range fields {
				u.Fields[k] = v
			}
			return
		}
	}
	s.updates = append(s.updates, Update{SObject: sobject, ID: id, Fields: fields})
	s.updateOwner = append(s.updateOwner, messageID)
}

func (s *chunkSync) park(e schemas.Event, err *crm.Error, fields []string) {
	if s.parked[e.PlatformMessageID] {
		return
	}
	s.parked[e.PlatformMessageID] = true
	s.res.Parked = append(s.res.Parked, crm.Parked{PlatformMessageID: e.PlatformMessageID, ErrorCode: err.Code, Message: err.Message, Fields: fields})
}

func (c *Connector) syncChunk(ctx context.Context, conv string, events []schemas.Event, st *crm.ConversationState, res *crm.SyncResult) error {
	s := &chunkSync{conv: conv, st: st, res: res, byMsgID: map[string]*pendingPost{}, parked: map[string]bool{}, seeded: map[string]bool{}}
	var statuses []schemas.Event
	for _, e := range events {
		if e.Kind == schemas.KindStatus {
			statuses = append(statuses, e)
			continue
		}
		vars := mappings.EventVars(conv, e)
		rec, err := c.m.Record(mappings.ObjectPost, vars)
		if err != nil {
			s.park(e, mappingError(err), nil)
			continue
		}
		p := &pendingPost{event: e, extID: PostExternalID(e.Channel, e.PlatformMessageID), rec: rec}
		if old, dup := s.byMsgID[e.PlatformMessageID]; dup {
			// The workflow dedupes; if a repeat slips through, the later
			// version of the message wins and it is written once.
			*old = *p
			continue
		}
		s.byMsgID[e.PlatformMessageID] = p
		s.posts = append(s.posts, p)
	}
	if err := c.personasAndCase(ctx, s); err != nil {
		return err
	}
	c.linkPosts(s)
	c.foldStatuses(s, statuses)
	if err := c.upsertPosts(ctx, s); err != nil {
		return err
	}
	if err := c.deferredPersonas(ctx, s); err != nil {
		return err
	}
	c.replyLinks(s)
	return c.applyUpdates(ctx, s)
}

func mappingError(err error) *crm.Error {
	var ae *mappings.ApplyError
	msg := "the mapping could not compute a field; fix the mapping and replay"
	if errors.As(err, &ae) {
		msg = fmt.Sprintf("the mapping could not compute %s.%s; fix the mapping and replay", ae.Object, ae.Field)
	}
	return &crm.Error{Kind: crm.Permanent, Code: "MAPPING_ERROR", Message: msg}
}

// personasAndCase runs the first call: a Composite that upserts the
// personas not yet known (each with its first post as the parent Salesforce
// requires until a Contact is known) and the case, or reads the status of
// the known case for the reopen rule.
func (c *Connector) personasAndCase(ctx context.Context, s *chunkSync) error {
	personaObj := c.m.Object(mappings.ObjectPersona)
	postObj := c.m.Object(mappings.ObjectPost)
	caseObj := c.m.Object(mappings.ObjectCase)

	type personaWork struct {
		key   string
		first *pendingPost
		// posts are the author's inbound posts of the chunk, first included.
		posts []*pendingPost
	}
	var personas []*personaWork
	byKey := map[string]*personaWork{}
	var firstInbound *pendingPost
	var opening *pendingPost
	for _, p := range s.posts {
		if p.event.Direction != schemas.Inbound {
			continue
		}
		if firstInbound == nil {
			firstInbound = p
		}
		if opening == nil && s.st.CaseID == "" {
			ok, err := c.m.OpensCase(mappings.EventVars(s.conv, p.event))
			if err != nil {
				s.park(p.event, mappingError(err), nil)
				continue
			}
			if ok {
				opening = p
			}
		}
		key := personaKey(p.event)
		if s.st.PersonaIDs[key] != "" {
			continue
		}
		if w := byKey[key]; w != nil {
			w.posts = append(w.posts, p)
			continue
		}
		w := &personaWork{key: key, first: p, posts: []*pendingPost{p}}
		byKey[key] = w
		personas = append(personas, w)
	}

	type subInfo struct {
		persona *personaWork
		isCase  string // "upsert" or "get"
	}
	info := map[string]subInfo{}
	// personaGroups builds, per persona, the upsert of its first post (its
	// parent until a Contact is known) and of the persona itself. A group
	// stays in one Composite call so that @{ref.id} resolves. strip leaves
	// out create-only fields, for records that already exist.
	personaGroups := func(list []*personaWork, round int, strip bool) [][]Subrequest {
		var groups [][]Subrequest
		for i, w := range list {
			rec, err := c.m.Record(mappings.ObjectPersona, mappings.EventVars(s.conv, w.first.event))
			if err != nil {
				for _, p := range w.posts {
					s.park(p.event, mappingError(err), nil)
				}
				continue
			}
			if strip {
				rec = c.withoutCreateOnly(mappings.ObjectPersona, rec)
			}
			var group []Subrequest
			parent := s.st.ContactID
			if parent == "" {
				ref := fmt.Sprintf("post%d_%d", round, i)
				body := w.first.rec
				if strip {
					body = c.withoutCreateOnly(mappings.ObjectPost, body)
				}
				group = append(group, Subrequest{Method: "PATCH", URL: "/sobjects/" + postObj.SObject + "/" + postObj.ExternalIDField + "/" + w.first.extID, ReferenceID: ref, Body: body})
				info[ref] = subInfo{persona: w}
				parent = "@{" + ref + ".id}"
				s.seeded[w.first.event.PlatformMessageID] = true
			}
			if f := personaObj.Link("contact"); f != "" {
				rec[f] = parent
			}
			ref := fmt.Sprintf("persona%d_%d", round, i)
			group = append(group, Subrequest{Method: "PATCH", URL: "/sobjects/" + personaObj.SObject + "/" + personaObj.ExternalIDField + "/" + PersonaExternalID(w.first.event.Channel, w.first.event.Author.PlatformUserID), ReferenceID: ref, Body: rec})
			info[ref] = subInfo{persona: w}
			groups = append(groups, group)
		}
		return groups
	}
	groups := personaGroups(personas, 0, false)
	if opening != nil {
		rec, err := c.m.Record(mappings.ObjectCase, mappings.EventVars(s.conv, opening.event))
		if err != nil {
			s.park(opening.event, mappingError(err), nil)
		} else {
			if f := caseObj.Link("contact"); f != "" && s.st.ContactID != "" {
				rec[f] = s.st.ContactID
			}
			groups = append(groups, []Subrequest{{Method: "PATCH", URL: "/sobjects/" + caseObj.SObject + "/" + caseObj.ExternalIDField + "/" + caseExternalID(s.conv, opening.event.PlatformMessageID), ReferenceID: "case", Body: rec}})
			info["case"] = subInfo{isCase: "upsert"}
		}
	} else if s.st.CaseID != "" && firstInbound != nil {
		groups = append(groups, []Subrequest{{Method: "GET", URL: "/sobjects/" + caseObj.SObject + "/" + s.st.CaseID + "?fields=IsClosed,ClosedDate,Status", ReferenceID: "case"}})
		info["case"] = subInfo{isCase: "get"}
	}

	var newCaseNeeded bool
	var redo []*personaWork
	redoSeen := map[*personaWork]bool{}
	handle := func(r SubResponse) error {
		in, ok := info[r.ReferenceID]
		if !ok {
			return nil
		}
		switch {
		case in.persona != nil:
			obj := personaObj
			objName := mappings.ObjectPersona
			if strings.HasPrefix(r.ReferenceID, "post") {
				obj, objName = postObj, mappings.ObjectPost
			}
			e := r.Err(obj.SObject, obj.ExternalIDField)
			if e == nil {
				if strings.HasPrefix(r.ReferenceID, "persona") {
					s.st.PersonaIDs[in.persona.key] = idOf(r.Body)
				}
				return nil
			}
			fields := recordFields(r.Body)
			switch {
			case e.Code == "PROCESSING_HALTED":
				return nil
			case e.Kind != crm.Permanent:
				return e
			case c.onlyCreateOnly(objName, e.Code, fields):
				// The record exists already (state was lost or this is a
				// replay): write it again without its create-only fields.
				if !redoSeen[in.persona] {
					redoSeen[in.persona] = true
					redo = append(redo, in.persona)
				}
				return nil
			case objName == mappings.ObjectPost:
				// Salesforce rejects the author's first post. Park that
				// post alone; the persona is written after the posts,
				// parented to the first of the author's other posts that
				// Salesforce accepts.
				w := in.persona
				s.park(w.first.event, e, fields)
				delete(s.seeded, w.first.event.PlatformMessageID)
				s.deferred = append(s.deferred, deferredPersona{key: w.key, posts: w.posts[1:]})
				return nil
			}
			for _, p := range in.persona.posts {
				s.park(p.event, e, fields)
			}
		case in.isCase == "upsert":
			if e := r.Err(caseObj.SObject, caseObj.ExternalIDField); e != nil {
				if e.Kind != crm.Permanent {
					return e
				}
				s.park(opening.event, e, recordFields(r.Body))
				return nil
			}
			s.st.CaseID = idOf(r.Body)
			s.st.CaseOpenedAt = opening.event.OccurredAt
		case in.isCase == "get":
			if e := r.Err(caseObj.SObject, "Id"); e != nil {
				if e.Code == "NOT_FOUND" || e.Code == "ENTITY_IS_DELETED" {
					newCaseNeeded = true
					return nil
				}
				return e
			}
			var cs struct {
				IsClosed   bool   `json:"IsClosed"`
				ClosedDate string `json:"ClosedDate"`
			}
			_ = json.Unmarshal(r.Body, &cs)
			if !cs.IsClosed {
				return nil
			}
			closed := parseSFTime(cs.ClosedDate)
			if c.m.CaseRules.Reopens(closed, firstInbound.event.OccurredAt) {
				s.updates = append(s.updates, Update{SObject: caseObj.SObject, ID: s.st.CaseID, Fields: Record{"Status": c.m.CaseRules.ReopenStatus}})
				s.updateOwner = append(s.updateOwner, "")
				s.st.CaseOpenedAt = firstInbound.event.OccurredAt
				return nil
			}
			newCaseNeeded = true
		}
		return nil
	}
	run := func(groups [][]Subrequest) error {
		for _, part := range packGroups(groups, MaxComposite) {
			resps, err := c.client.Composite(ctx, false, part)
			if err != nil {
				return err
			}
			for _, r := range resps {
				if err := handle(r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := run(groups); err != nil {
		return err
	}
	if len(redo) > 0 {
		if err := run(personaGroups(redo, 1, true)); err != nil {
			return err
		}
	}
	if !newCaseNeeded {
		return nil
	}
	// The case is gone or closed too long ago: a new one is opened under the
	// same case rules as the first, from the first customer message of this
	// batch that opens a case (one extra call, rare). Without one, the batch
	// has no case and a later message may open it.
	s.st.CaseID = ""
	var opener *pendingPost
	for _, p := range s.posts {
		ok, err := c.m.OpensCase(mappings.EventVars(s.conv, p.event))
		if err != nil {
			s.park(p.event, mappingError(err), nil)
			continue
		}
		if ok {
			opener = p
			break
		}
	}
	if opener == nil {
		return nil
	}
	rec, err := c.m.Record(mappings.ObjectCase, mappings.EventVars(s.conv, opener.event))
	if err != nil {
		s.park(opener.event, mappingError(err), nil)
		return nil
	}
	if f := caseObj.Link("contact"); f != "" && s.st.ContactID != "" {
		rec[f] = s.st.ContactID
	}
	ur, err := c.client.Upsert(ctx, caseObj.SObject, caseObj.ExternalIDField, caseExternalID(s.conv, opener.event.PlatformMessageID), rec)
	if err != nil {
		var ce *crm.Error
		if errors.As(err, &ce) && ce.Kind == crm.Permanent {
			s.park(opener.event, ce, nil)
			return nil
		}
		return err
	}
	s.st.CaseID = ur.ID
	s.st.CaseOpenedAt = opener.event.OccurredAt
	return nil
}

// deferredPersonas writes the personas whose first post Salesforce
// rejected, each parented to the contact or else to the first of its
// author's posts that upsertPosts wrote, and queues the persona link of
// those posts for the update call. It takes one call, only when a first
// post was rejected (two when a persona exists already and must be written
// again without its create-only fields). When Salesforce rejects the
// persona itself, the author's written posts are parked with its reason.
func (c *Connector) deferredPersonas(ctx context.Context, s *chunkSync) error {
	personaObj := c.m.Object(mappings.ObjectPersona)
	postObj := c.m.Object(mappings.ObjectPost)
	type job struct {
		key     string
		written []*pendingPost
		strip   bool
	}
	var jobs []*job
	for _, d := range s.deferred {
		j := &job{key: d.key}
		for _, p := range d.posts {
			if !s.parked[p.event.PlatformMessageID] && s.st.PostIDs[p.event.PlatformMessageID] != "" {
				j.written = append(j.written, p)
			}
		}
		// With no post written, every post of the author is parked with
		// its own reason and there is nothing to parent the persona to.
		if len(j.written) > 0 {
			jobs = append(jobs, j)
		}
	}
	parkWritten := func(j *job, e *crm.Error, fields []string) {
		for _, p := range j.written {
			s.park(p.event, e, fields)
			s.res.Written = remove(s.res.Written, p.event.PlatformMessageID)
		}
	}
	for pass := 0; pass < 2 && len(jobs) > 0; pass++ {
		var groups [][]Subrequest
		byRef := map[string]*job{}
		for i, j := range jobs {
			first := j.written[0]
			rec, err := c.m.Record(mappings.ObjectPersona, mappings.EventVars(s.conv, first.event))
			if err != nil {
				parkWritten(j, mappingError(err), nil)
				continue
			}
			if j.strip {
				rec = c.withoutCreateOnly(mappings.ObjectPersona, rec)
			}
			if f := personaObj.Link("contact"); f != "" {
				parent := s.st.ContactID
				if parent == "" {
					parent = s.st.PostIDs[first.event.PlatformMessageID]
				}
				rec[f] = parent
			}
			ref := fmt.Sprintf("persona%d", i)
			byRef[ref] = j
			groups = append(groups, []Subrequest{{Method: "PATCH", URL: "/sobjects/" + personaObj.SObject + "/" + personaObj.ExternalIDField + "/" + PersonaExternalID(first.event.Channel, first.event.Author.PlatformUserID), ReferenceID: ref, Body: rec}})
		}
		jobs = nil
		for _, part := range packGroups(groups, MaxComposite) {
			resps, err := c.client.Composite(ctx, false, part)
			if err != nil {
				return err
			}
			for _, r := range resps {
				j := byRef[r.ReferenceID]
				if j == nil {
					continue
				}
				e := r.Err(personaObj.SObject, personaObj.ExternalIDField)
				if e != nil {
					fields := recordFields(r.Body)
					switch {
					case e.Kind != crm.Permanent:
						return e
					case !j.strip && c.onlyCreateOnly(mappings.ObjectPersona, e.Code, fields):
						// The persona exists (state was lost or this is a
						// replay): write it again without create-only fields.
						j.strip = true
						jobs = append(jobs, j)
					default:
						parkWritten(j, e, fields)
					}
					continue
				}
				id := idOf(r.Body)
				s.st.PersonaIDs[j.key] = id
				f := postObj.Link("persona")
				if f == "" {
					continue
				}
				for _, p := range j.written {
					s.updatePost(postObj.SObject, p.event.PlatformMessageID, Record{f: id})
				}
			}
		}
	}
	return nil
}

// packGroups packs groups of subrequests into Composite calls of at most
// max subrequests without splitting a group.
func packGroups(groups [][]Subrequest, max int) [][]Subrequest {
	var out [][]Subrequest
	var cur []Subrequest
	for _, g := range groups {
		if len(cur)+len(g) > max && len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, g...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// withoutCreateOnly returns rec without the object's create-only fields.
func (c *Connector) withoutCreateOnly(object string, rec Record) Record {
	out := make(Record, len(rec))
	for k, v := range rec {
		out[k] = v
	}
	for _, f := range c.m.CreateOnly(object) {
		delete(out, f)
	}
	return out
}

// onlyCreateOnly reports whether a rejection is Salesforce refusing to
// update create-only fields of an existing record.
func (c *Connector) onlyCreateOnly(object, code string, fields []string) bool {
	if code != "INVALID_FIELD_FOR_INSERT_UPDATE" || len(fields) == 0 {
		return false
	}
	co := c.m.CreateOnly(object)
	for _, f := range fields {
		found := false
		for _, x := range co {
			if x == f {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func idOf(body json.RawMessage) string {
	var sr saveResult
	_ = json.Unmarshal(body, &sr)
	return sr.ID
}

// recordFields returns the field names of a failed subrequest's error.
func recordFields(body json.RawMessage) []string {
	var errs []apiError
	if json.Unmarshal(body, &errs) != nil || len(errs) == 0 {
		return nil
	}
	return safeFieldNames(errs[0].Fields)
}

func parseSFTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05.000Z", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// linkPosts fills the reference fields of the posts: persona, case,
// contact, and the reply-to post when it is already known.
func (c *Connector) linkPosts(s *chunkSync) {
	postObj := c.m.Object(mappings.ObjectPost)
	for _, p := range s.posts {
		if s.parked[p.event.PlatformMessageID] {
			continue
		}
		if f := postObj.Link("persona"); f != "" && p.event.Direction == schemas.Inbound {
			if id := s.st.PersonaIDs[personaKey(p.event)]; id != "" {
				p.rec[f] = id
			}
		}
		if f := postObj.Link("case"); f != "" && s.st.CaseID != "" {
			p.rec[f] = s.st.CaseID
		}
		if f := postObj.Link("contact"); f != "" && s.st.ContactID != "" {
			p.rec[f] = s.st.ContactID
		}
		if f := postObj.Link("reply_to"); f != "" && p.event.ReplyToID != "" && s.byMsgID[p.event.ReplyToID] == nil {
			if id := s.st.PostIDs[p.event.ReplyToID]; id != "" {
				p.rec[f] = id
			}
		}
	}
}

// foldStatuses applies status events: to the post in this batch, to a known
// post by id (in the update call), or else by external id in the upsert.
func (c *Connector) foldStatuses(s *chunkSync, statuses []schemas.Event) {
	postObj := c.m.Object(mappings.ObjectPost)
	for _, e := range statuses {
		fields := c.m.StatusFields(e.Status)
		if fields == nil {
			s.res.Written = append(s.res.Written, e.PlatformMessageID)
			continue
		}
		if p := s.byMsgID[e.PlatformMessageID]; p != nil {
			for k, v := range fields {
				p.rec[k] = v
			}
			continue
		}
		if id := s.st.PostIDs[e.PlatformMessageID]; id != "" {
			s.updates = append(s.updates, Update{SObject: postObj.SObject, ID: id, Fields: fields})
			s.updateOwner = append(s.updateOwner, e.PlatformMessageID)
			continue
		}
		// Unknown post: a status of a message webcaresync never saw, such
		// as a WhatsApp template the brand sent from another tool. There is
		// nothing to update, and it is not an error to park.
		s.res.Written = append(s.res.Written, e.PlatformMessageID)
	}
}

// upsertPosts runs the second call: one Collections upsert of the posts.
func (c *Connector) upsertPosts(ctx context.Context, s *chunkSync) error {
	postObj := c.m.Object(mappings.ObjectPost)
	var recs []Record
	var order []*pendingPost
	for _, p := range s.posts {
		if s.parked[p.event.PlatformMessageID] {
			continue
		}
		rec := p.rec
		if s.st.PostIDs[p.event.PlatformMessageID] != "" || s.seeded[p.event.PlatformMessageID] {
			rec = c.withoutCreateOnly(mappings.ObjectPost, rec)
		} else {
			rec = c.withoutCreateOnly("", rec)
		}
		rec[postObj.ExternalIDField] = p.extID
		recs = append(recs, rec)
		order = append(order, p)
	}
	if len(recs) == 0 {
		return nil
	}
	results, err := c.client.CollectionUpsert(ctx, postObj.SObject, postObj.ExternalIDField, recs)
	if err != nil {
		return err
	}
	var transient *crm.Error
	var redo []Record
	var redoOrder []*pendingPost
	for i, r := range results {
		p := order[i]
		if r.Err != nil {
			switch {
			case r.Err.Kind != crm.Permanent:
				transient = r.Err
			case c.onlyCreateOnly(mappings.ObjectPost, r.Err.Code, r.Fields):
				// The post exists already (state was lost or this is a
				// replay): write it again without its create-only fields.
				redo = append(redo, c.withoutCreateOnly(mappings.ObjectPost, recs[i]))
				redoOrder = append(redoOrder, p)
			default:
				s.park(p.event, r.Err, r.Fields)
			}
			continue
		}
		s.st.PostIDs[p.event.PlatformMessageID] = r.ID
		s.res.Written = append(s.res.Written, p.event.PlatformMessageID)
	}
	if len(redo) > 0 && transient == nil {
		results, err := c.client.CollectionUpsert(ctx, postObj.SObject, postObj.ExternalIDField, redo)
		if err != nil {
			return err
		}
		for i, r := range results {
			p := redoOrder[i]
			if r.Err != nil {
				if r.Err.Kind != crm.Permanent {
					transient = r.Err
					continue
				}
				s.park(p.event, r.Err, r.Fields)
				continue
			}
			s.st.PostIDs[p.event.PlatformMessageID] = r.ID
			s.res.Written = append(s.res.Written, p.event.PlatformMessageID)
		}
	}
	if transient != nil {
		// Written posts are upserted again on the retry, without duplicates.
		return transient
	}
	return nil
}

// replyLinks queues ReplyToId updates for posts answering a post of the
// same batch, now that both have ids.
func (c *Connector) replyLinks(s *chunkSync) {
	postObj := c.m.Object(mappings.ObjectPost)
	f := postObj.Link("reply_to")
	if f == "" {
		return
	}
	for _, p := range s.posts {
		if p.event.ReplyToID == "" || s.byMsgID[p.event.ReplyToID] == nil || s.parked[p.event.PlatformMessageID] {
			continue
		}
		id, target := s.st.PostIDs[p.event.PlatformMessageID], s.st.PostIDs[p.event.ReplyToID]
		if id == "" || target == "" {
			continue
		}
		s.updatePost(postObj.SObject, p.event.PlatformMessageID, Record{f: target})
	}
}

// applyUpdates runs the third call, skipped when there is nothing to update.
func (c *Connector) applyUpdates(ctx context.Context, s *chunkSync) error {
	if len(s.updates) == 0 {
		return nil
	}
	results, err := c.client.CollectionUpdate(ctx, s.updates)
	if err != nil {
		return err
	}
	for i, r := range results {
		if r.Err == nil {
			continue
		}
		if r.Err.Kind != crm.Permanent {
			return r.Err
		}
		owner := s.updateOwner[i]
		if owner == "" {
			c.log.Warn("case reopen rejected by salesforce", zap.String("code", r.Err.Code), zap.Strings("fields", r.Fields))
			continue
		}
		s.park(schemas.Event{PlatformMessageID: owner}, r.Err, r.Fields)
		s.res.Written = remove(s.res.Written, owner)
	}
	return nil
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

var postcodeRe = regexp.MustCompile(`^([0-9]{4}) ?([A-Z]{2})$`)

// FindContacts returns the contacts whose Id, Email, Phone, MobilePhone or
// MailingPostalCode equals a field of q. Dutch postcodes are matched with
// and without the space. A phone number is looked for under each way a
// CRM user may have typed it (see phoneForms), so a contact holding
// 06-12345678 is found for +31612345678; the caller compares the numbers
// it gets back after normalising them. An id that is not a Salesforce
// Contact id is refused with MALFORMED_ID.
func (c *Connector) FindContacts(ctx context.Context, q crm.ContactQuery) ([]crm.Contact, error) {
	var conds []string
	if id := strings.TrimSpace(q.ID); id != "" {
		if !hasPrefix(id, prefixContact) {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "MALFORMED_ID", Message: "the contact id is not a Salesforce Contact id (15 or 18 letters and digits starting with 003); correct it"}
		}
		conds = append(conds, "Id = '"+id+"'")
	}
	if q.Email != "" {
		conds = append(conds, fmt.Sprintf("Email = '%s'", EscapeSOQL(strings.TrimSpace(q.Email))))
	}
	if raw := strings.TrimSpace(q.Phone); raw != "" {
		forms := []string{raw}
		if e164 := mappings.E164(raw, c.m.DefaultPhoneRegion); e164 != "" {
			forms = phoneForms(e164)
			if !slices.Contains(forms, raw) {
				forms = append(forms, raw)
			}
		}
		list := soqlList(forms)
		conds = append(conds, "Phone IN "+list, "MobilePhone IN "+list)
	}
	if q.PostalCode != "" {
		pc := strings.ToUpper(strings.TrimSpace(q.PostalCode))
		variants := []string{pc}
		if m := postcodeRe.FindStringSubmatch(pc); m != nil {
			variants = []string{m[1] + m[2], m[1] + " " + m[2]}
		}
		for _, v := range variants {
			conds = append(conds, fmt.Sprintf("MailingPostalCode = '%s'", EscapeSOQL(v)))
		}
	}
	if len(conds) == 0 {
		return nil, nil
	}
	soql := "SELECT Id, FirstName, LastName, Email, Phone, MobilePhone, MailingPostalCode, MailingStreet FROM Contact WHERE " + strings.Join(conds, " OR ")
	recs, err := c.client.Query(ctx, soql)
	if err != nil {
		return nil, err
	}
	out := make([]crm.Contact, 0, len(recs))
	for _, r := range recs {
		out = append(out, crm.Contact{
			ID: str(r["Id"]), FirstName: str(r["FirstName"]), LastName: str(r["LastName"]),
			Email: str(r["Email"]), Phone: str(r["Phone"]), Mobile: str(r["MobilePhone"]),
			PostalCode: str(r["MailingPostalCode"]), Street: str(r["MailingStreet"]),
		})
	}
	return out, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// CreateContact creates a contact through the mapping's contact object. It
// is an upsert by an opaque hash of the details, so a retry does not create
// a second contact.
func (c *Connector) CreateContact(ctx context.Context, ct crm.Contact) (string, error) {
	obj := c.m.Object(mappings.ObjectContact)
	if obj == nil {
		return "", &crm.Error{Kind: crm.Permanent, Code: "MAPPING_ERROR", Message: "the mapping has no contact object; add objects.contact to create contacts"}
	}
	rec, err := c.m.Record(mappings.ObjectContact, mappings.ContactVars(mappings.ContactDetails{
		FirstName: ct.FirstName, LastName: ct.LastName, Email: ct.Email, Phone: ct.Phone,
		Mobile: ct.Mobile, PostalCode: ct.PostalCode, Street: ct.Street,
	}))
	if err != nil {
		return "", mappingError(err)
	}
	key := extID("contact", strings.ToLower(strings.TrimSpace(ct.Email)), strings.TrimSpace(ct.Phone), strings.TrimSpace(ct.Mobile),
		strings.ToLower(strings.TrimSpace(ct.LastName)), strings.ToUpper(strings.ReplaceAll(ct.PostalCode, " ", "")))
	ur, err := c.client.Upsert(ctx, obj.SObject, obj.ExternalIDField, key, Record(rec))
	if err != nil {
		return "", err
	}
	if ur.ID == "" {
		return "", badAnswer("contact upsert")
	}
	return ur.ID, nil
}

// LinkPersonas parents the personas to the contact and sets the contact on
// the posts, in Collections updates of 200. With an empty contactID the
// posts are unlinked and the personas are parented back to the first post
// (Salesforce requires a persona parent).
func (c *Connector) LinkPersonas(ctx context.Context, personaIDs []string, contactID string, postIDs []string) error {
	personaObj := c.m.Object(mappings.ObjectPersona)
	postObj := c.m.Object(mappings.ObjectPost)
	var updates []Update
	parentField, whoField := personaObj.Link("contact"), postObj.Link("contact")
	parent := contactID
	if parent == "" && len(postIDs) > 0 {
		parent = postIDs[0]
	}
	if parentField != "" && parent != "" {
		for _, id := range personaIDs {
			updates = append(updates, Update{SObject: personaObj.SObject, ID: id, Fields: Record{parentField: parent}})
		}
	}
	if whoField != "" {
		var who any = contactID
		if contactID == "" {
			who = nil
		}
		for _, id := range postIDs {
			updates = append(updates, Update{SObject: postObj.SObject, ID: id, Fields: Record{whoField: who}})
		}
	}
	if len(updates) == 0 {
		return nil
	}
	results, err := c.client.CollectionUpdate(ctx, updates)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// Probe makes one cheap call (GET /limits) and reports BudgetExhausted while
// the daily request budget is used up.
func (c *Connector) Probe(ctx context.Context) error {
	limits, err := c.client.Limits(ctx)
	if err != nil {
		return err
	}
	if l, ok := limits["DailyApiRequests"]; ok && l.Max > 0 && l.Remaining <= 0 {
		return &crm.Error{Kind: crm.BudgetExhausted, Code: "REQUEST_LIMIT_EXCEEDED", Message: "the org's daily API request budget is used up"}
	}
	return nil
}

var _ crm.Connector = (*Connector)(nil)
