package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/webcaresync/webcaresync/activities/crm"
	"github.com/webcaresync/webcaresync/mappings"
	"github.com/webcaresync/webcaresync/schemas"
)

// The Salesforce objects of a data subject's footprint, as keys of
// crm.Discovered.Records.
const (
	SObjectContact    = "Contact"
	SObjectPersona    = "SocialPersona"
	SObjectPost       = "SocialPost"
	SObjectCase       = "Case"
	SObjectIndividual = "Individual"
	SObjectTask       = "Task"
)

// Key prefixes of the record ids Discover follows.
const (
	prefixContact = "003"
	prefixCase    = "500"
)

// idChunk is how many ids one SOQL IN list holds, so that a query URL
// stays far below Salesforce's 16 KB limit.
const idChunk = 100

// maxDiscoverRounds bounds how often Discover follows links; a real
// footprint settles in three or four rounds.
const maxDiscoverRounds = 50

// The DSR's provider names (crm.PersonaRef.Provider, crm.PlatformPost.Provider).
const (
	providerX         = "x"
	providerMessenger = "messenger"
	providerInstagram = "instagram"
	providerWhatsApp  = "whatsapp"
)

// providerAliases are other names a request may use for a provider.
var providerAliases = map[string]string{
	"twitter": providerX, "facebook": providerMessenger, "fb": providerMessenger,
	"ig": providerInstagram, "wa": providerWhatsApp,
}

// sfProviders are the SocialPost/SocialPersona Provider values of each
// provider, used when the mapping does not say.
var sfProviders = map[string]string{
	providerX: "Twitter", providerMessenger: "Facebook", providerInstagram: "Instagram", providerWhatsApp: "WhatsApp",
}

// dsrProviders maps Provider picklist values to the DSR's provider names.
var dsrProviders = map[string]string{
	"Twitter": providerX, "Facebook": providerMessenger, "Messenger": providerMessenger,
	"Instagram": providerInstagram, "InstagramBusiness": providerInstagram, "WhatsApp": providerWhatsApp,
}

// publicMessageTypes are the SocialPost.MessageType values of public posts;
// Direct and PrivateMessage are private.
var publicMessageTypes = map[string]bool{"Post": true, "Comment": true, "Reply": true, "Tweet": true, "Retweet": true}

// isSFID reports whether s looks like a Salesforce record id (15 or 18
// letters and digits), so that no other text reaches a query or a URL.
func isSFID(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func hasPrefix(id, prefix string) bool { return isSFID(id) && strings.HasPrefix(id, prefix) }

// soqlList renders values as a SOQL IN list: ('a','b').
func soqlList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = "'" + EscapeSOQL(v) + "'"
	}
	return "(" + strings.Join(q, ",") + ")"
}

// chunks splits list into parts of at most n.
func chunks(list []string, n int) [][]string {
	var out [][]string
	for start := 0; start < len(list); start += n {
		out = append(out, list[start:min(start+n, len(list))])
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k, ok := range m {
		if ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// query is one SOQL query of a discovery round and what to do with its
// records.
type query struct {
	soql   string
	handle func([]Record)
}

// runQueries runs independent queries, up to 25 in one Composite call, and
// hands each its records (following nextRecordsUrl when an answer is
// paged). One query alone is sent as a plain query. The queries are
// queryAll: a data subject's records in the Recycle Bin are still
// readable and restorable, so they are found, exported and purged too;
// with live set they are plain queries, which leave the Recycle Bin out.
func (c *Connector) runQueries(ctx context.Context, qs []query, live bool) error {
	resource, run := "/queryAll", c.client.QueryAll
	if live {
		resource, run = "/query", c.client.Query
	}
	if len(qs) == 1 {
		recs, err := run(ctx, qs[0].soql)
		if err != nil {
			return err
		}
		qs[0].handle(recs)
		return nil
	}
	for start := 0; start < len(qs); start += MaxComposite {
		part := qs[start:min(start+MaxComposite, len(qs))]
		subs := make([]Subrequest, len(part))
		for i, q := range part {
			subs[i] = Subrequest{Method: http.MethodGet, URL: resource + "?q=" + url.QueryEscape(q.soql), ReferenceID: fmt.Sprintf("q%d", i)}
		}
		resps, err := c.client.Composite(ctx, false, subs)
		if err != nil {
			return err
		}
		if len(resps) != len(part) {
			return badAnswer("composite query")
		}
		for i, r := range resps {
			if e := r.Err("", ""); e != nil {
				return e
			}
			recs, next, err := parseQueryAnswer(r.Body)
			if err != nil {
				return err
			}
			if next != "" {
				more, err := c.client.queryMore(ctx, next)
				if err != nil {
					return err
				}
				recs = append(recs, more...)
			}
			part[i].handle(recs)
		}
	}
	return nil
}

// parseQueryAnswer reads one query answer of a Composite call: its records
// and, when the answer is paged, the nextRecordsUrl of the rest.
func parseQueryAnswer(body []byte) ([]Record, string, error) {
	var qr struct {
		Done           bool     `json:"done"`
		NextRecordsURL string   `json:"nextRecordsUrl"`
		Records        []Record `json:"records"`
	}
	if err := json.Unmarshal(body, &qr); err != nil {
		return nil, "", badAnswer("composite query")
	}
	if qr.Done {
		return qr.Records, "", nil
	}
	return qr.Records, qr.NextRecordsURL, nil
}

// postInfo is what Discover needs of a SocialPost.
type postInfo struct {
	id, personaID, whoID, caseID, replyToID string
	provider, externalPostID, messageType   string
	posted                                  string
	outbound                                bool
}

func postOf(r Record) postInfo {
	out, _ := r["IsOutbound"].(bool)
	posted := str(r["Posted"])
	if posted == "" {
		posted = str(r["CreatedDate"])
	}
	return postInfo{
		id: str(r["Id"]), personaID: str(r["PersonaId"]), whoID: str(r["WhoId"]), caseID: str(r["ParentId"]),
		replyToID: str(r["ReplyToId"]), provider: str(r["Provider"]), externalPostID: str(r["ExternalPostId"]),
		messageType: str(r["MessageType"]), posted: posted, outbound: out,
	}
}

const postFields = "Id, PersonaId, WhoId, ParentId, ReplyToId, IsOutbound, Provider, ExternalPostId, MessageType, Posted, CreatedDate"

// discovery is the state of one Discover: what was found and which links
// were already followed.
type discovery struct {
	c *Connector

	contacts    map[string]bool // the subject's contacts
	ambiguous   map[string]bool // contacts found only by a phone others share
	wantContact map[string]bool // contact ids to read (linked from personas or posts)
	personas    map[string]bool
	individuals map[string]bool
	tasks       map[string]bool
	posts       map[string]postInfo
	subjectPost map[string]bool   // posts by the subject's personas or linked to their contacts
	cases       map[string]string // candidate case id → ContactId ("" until read)
	caseRead    map[string]bool
	ownCase     map[string]bool // cases found by the subject's ContactId

	contactDone map[string]bool
	personaDone map[string]bool
	caseDone    map[string]bool
}

// Discover finds every Salesforce record of the data subject and follows
// the links between them, in rounds of at most 25 SOQL queries per
// Composite call (a typical subject takes three calls):
//   - Contacts by exact Email, by Phone or MobilePhone (the E.164 number and
//     its national and international forms) and by id. A phone number that
//     several Contacts hold (a household or company line) identifies none
//     of them on its own: such Contacts are included only when another
//     identifier or link also finds them.
//   - SocialPersonas by provider and platform user id (and by their opaque
//     webcaresync key), by the Contacts they belong to; a WhatsApp persona
//     also by the phone number.
//   - SocialPosts by persona and by Contact (WhoId); Cases by ContactId and
//     by the subject's posts; a persona's or post's Contact is followed too.
//   - Tasks by WhoId and Individuals by Contact.IndividualId.
//
// Records in the Recycle Bin are found too (queryAll): they are still
// readable and restorable, so an erasure must purge them.
//
// Cases and the brand's replies are the subject's only when they are about
// the subject: a case whose ContactId is the subject's, or that the subject
// opened or is the only customer in. Public threads where several customers
// wrote share one case; there only the subject's own posts and the brand's
// replies to them are included, and the case is left to the others.
func (c *Connector) Discover(ctx context.Context, q crm.DiscoverQuery) (crm.Discovered, error) {
	d := newDiscovery(c)
	qs, err := d.identQueries(q)
	if err != nil {
		return crm.Discovered{}, err
	}
	for round := 0; len(qs) > 0; round++ {
		if round >= maxDiscoverRounds {
			return crm.Discovered{}, &crm.Error{Kind: crm.Permanent, Code: "DISCOVERY_TOO_DEEP", Message: "the subject's records link to each other more than 50 levels deep; check the CRM data"}
		}
		if err := c.runQueries(ctx, qs, q.LiveOnly); err != nil {
			return crm.Discovered{}, err
		}
		qs = d.linkQueries()
	}
	return d.result(), nil
}

func newDiscovery(c *Connector) *discovery {
	return &discovery{
		c: c, contacts: map[string]bool{}, ambiguous: map[string]bool{}, wantContact: map[string]bool{},
		personas: map[string]bool{}, individuals: map[string]bool{}, tasks: map[string]bool{},
		posts: map[string]postInfo{}, subjectPost: map[string]bool{}, cases: map[string]string{},
		caseRead: map[string]bool{}, ownCase: map[string]bool{},
		contactDone: map[string]bool{}, personaDone: map[string]bool{}, caseDone: map[string]bool{},
	}
}

// identQueries are the first round: Contacts and personas by the request's
// identifiers.
func (d *discovery) identQueries(q crm.DiscoverQuery) ([]query, error) {
	var conds []string
	emails := map[string]bool{}
	for _, e := range q.Emails {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			emails[e] = true
		}
	}
	if len(emails) > 0 {
		conds = append(conds, "Email IN "+soqlList(sortedSet(emails)))
	}
	region := d.c.m.DefaultPhoneRegion
	phones := map[string]bool{}   // E.164 numbers of the request
	variants := map[string]bool{} // every written form to look for
	personas := append([]crm.PersonaRef(nil), q.Personas...)
	for _, p := range q.Phones {
		e164 := mappings.E164(p, region)
		if e164 == "" {
			continue
		}
		phones[e164] = true
		for _, v := range phoneForms(e164) {
			variants[v] = true
		}
		// A WhatsApp account is its phone number; WhatsApp's user id is the
		// number without the plus.
		personas = append(personas, crm.PersonaRef{Provider: providerWhatsApp, ExternalID: strings.TrimPrefix(e164, "+")})
	}
	if len(variants) > 0 {
		list := soqlList(sortedSet(variants))
		conds = append(conds, "Phone IN "+list, "MobilePhone IN "+list)
	}
	ids := map[string]bool{}
	for _, id := range q.ContactIDs {
		id = strings.TrimSpace(id)
		if !hasPrefix(id, prefixContact) {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "MALFORMED_ID", Message: "a contact id of the request is not a Salesforce Contact id; correct the request"}
		}
		ids[id] = true
	}
	if len(ids) > 0 {
		conds = append(conds, "Id IN "+soqlList(sortedSet(ids)))
	}
	var qs []query
	if len(conds) > 0 {
		qs = append(qs, query{
			soql: "SELECT Id, Email, Phone, MobilePhone, IndividualId FROM Contact WHERE " + strings.Join(conds, " OR "),
			handle: func(recs []Record) {
				d.identContacts(recs, emails, ids, phones)
			},
		})
	}
	qs = append(qs, d.personaQueries(personas)...)
	return qs, nil
}

// identContacts applies the shared-phone rule to the Contacts found by the
// request's identifiers.
func (d *discovery) identContacts(recs []Record, emails, ids, phones map[string]bool) {
	region := d.c.m.DefaultPhoneRegion
	holders := map[string]map[string]bool{}
	strong := map[string]bool{}
	byID := map[string]Record{}
	for _, r := range recs {
		id := str(r["Id"])
		if !isSFID(id) {
			continue
		}
		byID[id] = r
		if emails[strings.ToLower(str(r["Email"]))] || ids[id] || ids[shortID(id)] {
			strong[id] = true
		}
		for _, f := range []string{"Phone", "MobilePhone"} {
			if p := mappings.E164(str(r[f]), region); phones[p] {
				if holders[p] == nil {
					holders[p] = map[string]bool{}
				}
				holders[p][id] = true
			}
		}
	}
	for _, hs := range holders {
		if len(hs) != 1 {
			continue
		}
		for id := range hs {
			strong[id] = true
		}
	}
	for id, r := range byID {
		if strong[id] {
			d.addContact(r)
			continue
		}
		d.ambiguous[id] = true
	}
}

func shortID(id string) string {
	if len(id) == 18 {
		return id[:15]
	}
	return id
}

// addContact records one of the subject's Contacts read from Salesforce.
func (d *discovery) addContact(r Record) {
	id := str(r["Id"])
	if !isSFID(id) {
		return
	}
	d.contacts[id] = true
	delete(d.wantContact, id)
	delete(d.ambiguous, id)
	if ind := str(r["IndividualId"]); isSFID(ind) {
		d.individuals[ind] = true
	}
}

// linkContact records a link to a Contact from a persona or post.
func (d *discovery) linkContact(id string) {
	if !hasPrefix(id, prefixContact) || d.contacts[id] {
		return
	}
	d.wantContact[id] = true
}

// personaQueries look personas up by provider and platform user id, and
// by the opaque key webcaresync gave them.
func (d *discovery) personaQueries(refs []crm.PersonaRef) []query {
	obj := d.c.m.Object(mappings.ObjectPersona)
	byProvider := map[string]map[string]bool{}
	keys := map[string]bool{}
	for _, ref := range refs {
		prov := normaliseProvider(ref.Provider)
		ext := strings.TrimSpace(ref.ExternalID)
		if prov == "" || ext == "" {
			continue
		}
		if prov == providerWhatsApp {
			ext = strings.TrimPrefix(strings.ReplaceAll(ext, " ", ""), "+")
		}
		sf := d.c.sfProvider(prov)
		if byProvider[sf] == nil {
			byProvider[sf] = map[string]bool{}
		}
		byProvider[sf][ext] = true
		if obj != nil && obj.ExternalIDField != "" {
			keys[PersonaExternalID(schemas.Channel(prov), ext)] = true
		}
	}
	var conds []string
	provs := make([]string, 0, len(byProvider))
	for p := range byProvider {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	for _, p := range provs {
		for _, part := range chunks(sortedSet(byProvider[p]), idChunk) {
			conds = append(conds, fmt.Sprintf("(Provider = '%s' AND ExternalId IN %s)", EscapeSOQL(p), soqlList(part)))
		}
	}
	for _, part := range chunks(sortedSet(keys), idChunk) {
		conds = append(conds, obj.ExternalIDField+" IN "+soqlList(part))
	}
	var qs []query
	for _, part := range chunks(conds, 20) {
		qs = append(qs, query{soql: "SELECT Id, ParentId FROM SocialPersona WHERE " + strings.Join(part, " OR "), handle: d.addPersonas})
	}
	return qs
}

func (d *discovery) addPersonas(recs []Record) {
	for _, r := range recs {
		id := str(r["Id"])
		if !isSFID(id) {
			continue
		}
		d.personas[id] = true
		d.linkContact(str(r["ParentId"]))
	}
}

// addSubjectPosts records posts by the subject's personas or linked to the
// subject's Contacts.
func (d *discovery) addSubjectPosts(recs []Record) {
	for _, r := range recs {
		p := postOf(r)
		if !isSFID(p.id) {
			continue
		}
		d.posts[p.id] = p
		d.subjectPost[p.id] = true
		if !p.outbound {
			d.linkContact(p.whoID)
		}
		if hasPrefix(p.caseID, prefixCase) {
			if _, ok := d.cases[p.caseID]; !ok {
				d.cases[p.caseID] = ""
			}
		}
	}
}

// addCasePosts records the posts of candidate cases; which of them are the
// subject's is decided at the end.
func (d *discovery) addCasePosts(recs []Record) {
	for _, r := range recs {
		p := postOf(r)
		if isSFID(p.id) {
			d.posts[p.id] = p
		}
	}
}

func (d *discovery) addCases(own bool) func([]Record) {
	return func(recs []Record) {
		for _, r := range recs {
			id := str(r["Id"])
			if !isSFID(id) {
				continue
			}
			d.cases[id] = str(r["ContactId"])
			d.caseRead[id] = true
			if own {
				d.ownCase[id] = true
			}
		}
	}
}

func (d *discovery) addTasks(recs []Record) {
	for _, r := range recs {
		if id := str(r["Id"]); isSFID(id) {
			d.tasks[id] = true
		}
	}
}

// linkQueries are the next round: the links of everything found in the
// last round that were not followed yet.
func (d *discovery) linkQueries() []query {
	var qs []query
	add := func(ids []string, soql func(list string) string, handle func([]Record)) {
		for _, part := range chunks(ids, idChunk) {
			qs = append(qs, query{soql: soql(soqlList(part)), handle: handle})
		}
	}
	// Contacts that personas or posts point to, and ambiguous ones that a
	// link now confirms.
	var read []string
	for _, id := range sortedSet(d.wantContact) {
		read = append(read, id)
		d.wantContact[id] = false
	}
	add(read, func(l string) string { return "SELECT Id, IndividualId FROM Contact WHERE Id IN " + l }, func(recs []Record) {
		for _, r := range recs {
			d.addContact(r)
		}
	})

	var contacts []string
	for _, id := range sortedSet(d.contacts) {
		if !d.contactDone[id] {
			d.contactDone[id] = true
			contacts = append(contacts, id)
		}
	}
	add(contacts, func(l string) string { return "SELECT Id, ParentId FROM SocialPersona WHERE ParentId IN " + l }, d.addPersonas)
	add(contacts, func(l string) string { return "SELECT " + postFields + " FROM SocialPost WHERE WhoId IN " + l }, d.addSubjectPosts)
	add(contacts, func(l string) string { return "SELECT Id, ContactId FROM Case WHERE ContactId IN " + l }, d.addCases(true))
	add(contacts, func(l string) string { return "SELECT Id FROM Task WHERE WhoId IN " + l }, d.addTasks)

	var personas []string
	for _, id := range sortedSet(d.personas) {
		if !d.personaDone[id] {
			d.personaDone[id] = true
			personas = append(personas, id)
		}
	}
	add(personas, func(l string) string { return "SELECT " + postFields + " FROM SocialPost WHERE PersonaId IN " + l }, d.addSubjectPosts)

	var unread, cases []string
	for id := range d.cases {
		if !d.caseDone[id] {
			d.caseDone[id] = true
			cases = append(cases, id)
			if !d.caseRead[id] {
				unread = append(unread, id)
			}
		}
	}
	sort.Strings(unread)
	sort.Strings(cases)
	add(unread, func(l string) string { return "SELECT Id, ContactId FROM Case WHERE Id IN " + l }, d.addCases(false))
	add(cases, func(l string) string { return "SELECT " + postFields + " FROM SocialPost WHERE ParentId IN " + l }, d.addCasePosts)
	return qs
}

// result decides which cases and case posts are the subject's and builds
// the footprint.
func (d *discovery) result() crm.Discovered {
	isSubject := func(p postInfo) bool {
		return d.subjectPost[p.id] || d.personas[p.personaID] || (d.contacts[p.whoID] && p.whoID != "")
	}
	included := map[string]bool{}
	for id, p := range d.posts {
		if isSubject(p) {
			included[id] = true
		}
	}
	byCase := map[string][]postInfo{}
	for _, p := range d.posts {
		byCase[p.caseID] = append(byCase[p.caseID], p)
	}
	cases := map[string]bool{}
	for id, contact := range d.cases {
		posts := byCase[id]
		sort.Slice(posts, func(i, j int) bool {
			if posts[i].posted != posts[j].posted {
				return posts[i].posted < posts[j].posted
			}
			return posts[i].id < posts[j].id
		})
		exclusive, subjectWrote := true, false
		var first *postInfo
		for i, p := range posts {
			if p.outbound {
				continue
			}
			if first == nil {
				first = &posts[i]
			}
			switch {
			case included[p.id]:
				subjectWrote = true
			case p.personaID != "" || p.whoID != "":
				exclusive = false
			}
		}
		own := d.ownCase[id] || d.contacts[contact] ||
			(exclusive && subjectWrote) ||
			(contact == "" && first != nil && included[first.id])
		if !own {
			continue
		}
		cases[id] = true
		if !exclusive {
			continue
		}
		// A conversation of the subject alone: the brand's replies and
		// posts whose author is unknown are part of it.
		for _, p := range posts {
			if p.outbound || (p.personaID == "" && p.whoID == "") {
				included[p.id] = true
			}
		}
	}
	// The brand's replies to the subject's posts, also in shared threads.
	for changed := true; changed; {
		changed = false
		for id, p := range d.posts {
			if p.outbound && !included[id] && included[p.replyToID] {
				included[id] = true
				changed = true
			}
		}
	}

	out := crm.Discovered{Records: map[string][]string{}}
	put := func(obj string, set map[string]bool) {
		if ids := sortedSet(set); len(ids) > 0 {
			out.Records[obj] = ids
		}
	}
	put(SObjectContact, d.contacts)
	put(SObjectPersona, d.personas)
	put(SObjectPost, included)
	put(SObjectCase, cases)
	put(SObjectIndividual, d.individuals)
	put(SObjectTask, d.tasks)
	for _, id := range out.Records[SObjectPost] {
		p := d.posts[id]
		prov := d.c.dsrProvider(p.provider)
		if prov == "" || p.externalPostID == "" {
			continue
		}
		out.Posts = append(out.Posts, crm.PlatformPost{Provider: prov, ExternalPostID: p.externalPostID, Outbound: p.outbound, Public: publicMessageTypes[p.messageType]})
	}
	return out
}

// normaliseProvider returns the DSR's name of a provider (x, messenger,
// instagram, whatsapp), accepting common other names.
func normaliseProvider(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	if a, ok := providerAliases[p]; ok {
		return a
	}
	return p
}

// sfProvider returns the Provider picklist value the mapping writes for a
// provider's personas and posts.
func (c *Connector) sfProvider(provider string) string {
	e := schemas.Event{Kind: schemas.KindMessage, Channel: schemas.Channel(provider), Direction: schemas.Inbound, Author: schemas.Author{PlatformUserID: "0"}}
	if rec, err := c.m.Record(mappings.ObjectPersona, mappings.EventVars("", e)); err == nil {
		if v, ok := rec["Provider"].(string); ok && v != "" && (v != "Other" || sfProviders[provider] == "") {
			return v
		}
	}
	if v, ok := sfProviders[provider]; ok {
		return v
	}
	return "Other"
}

// dsrProvider returns the DSR's provider name of a Provider picklist value,
// or "" when it is not one of the social platforms.
func (c *Connector) dsrProvider(sf string) string {
	for _, p := range []string{providerX, providerMessenger, providerInstagram, providerWhatsApp} {
		if c.sfProvider(p) == sf {
			return p
		}
	}
	return dsrProviders[sf]
}

// exportFields are the fields an access export reads per object, besides
// the fields the mapping writes. IsDeleted marks records in the Recycle
// Bin, which the export includes: Salesforce still holds them.
var exportFields = map[string][]string{
	SObjectContact: {"Id", "IsDeleted", "Name", "Salutation", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "HomePhone", "OtherPhone",
		"MailingStreet", "MailingCity", "MailingState", "MailingPostalCode", "MailingCountry", "Birthdate", "Title", "Department",
		"Description", "AccountId", "IndividualId", "HasOptedOutOfEmail", "DoNotCall", "CreatedDate", "LastModifiedDate"},
	SObjectPersona: {"Id", "IsDeleted", "Name", "Provider", "ExternalId", "RealName", "ProfileUrl", "ParentId", "Bio", "CreatedDate", "LastModifiedDate"},
	SObjectPost: {"Id", "IsDeleted", "Name", "Content", "Headline", "Handle", "Provider", "MessageType", "Posted", "IsOutbound", "ExternalPostId",
		"PostUrl", "Status", "PersonaId", "ParentId", "WhoId", "ReplyToId", "CreatedDate", "LastModifiedDate"},
	SObjectCase: {"Id", "IsDeleted", "CaseNumber", "Subject", "Description", "Status", "Origin", "Priority", "ContactId", "SuppliedName",
		"SuppliedEmail", "SuppliedPhone", "IsClosed", "ClosedDate", "CreatedDate", "LastModifiedDate"},
	SObjectIndividual: {"Id", "IsDeleted", "Name", "Salutation", "FirstName", "LastName", "BirthDate", "ShouldForget", "HasOptedOutTracking",
		"HasOptedOutProfiling", "HasOptedOutProcessing", "HasOptedOutSolicit", "CreatedDate", "LastModifiedDate"},
	SObjectTask: {"Id", "IsDeleted", "Subject", "Description", "Status", "Priority", "ActivityDate", "Type", "WhoId", "WhatId", "CreatedDate", "LastModifiedDate"},
}

// exportFieldList returns the fields to read of an object: the standard
// personal and descriptive fields and every field the mapping writes.
func (c *Connector) exportFieldList(sobject string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, f := range exportFields[sobject] {
		add(f)
	}
	names := make([]string, 0, len(c.m.Objects))
	for n := range c.m.Objects {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		o := c.m.Objects[n]
		if o.SObject != sobject {
			continue
		}
		add(o.ExternalIDField)
		roles := make([]string, 0, len(o.Links))
		for r := range o.Links {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		for _, r := range roles {
			add(o.Links[r])
		}
		for _, f := range o.Fields {
			add(f.Name)
		}
	}
	return out
}

// checkIDs returns the distinct, sorted ids, or a permanent error when one
// is not a Salesforce id (the error does not repeat it).
func checkIDs(object string, ids []string) ([]string, error) {
	set := map[string]bool{}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if !isSFID(id) {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "MALFORMED_ID", Message: fmt.Sprintf("a %s id is not a Salesforce id; run discovery again", object)}
		}
		set[id] = true
	}
	return sortedSet(set), nil
}

// Export reads the records' fields for an access request, grouped by
// object: the personal and descriptive standard fields and every field the
// mapping writes, without Salesforce's attributes. All objects are read in
// one Composite call for up to 25 queries of 100 ids. Records in the
// Recycle Bin are included (IsDeleted true); records that no longer exist
// are left out.
func (c *Connector) Export(ctx context.Context, records map[string][]string) (map[string][]map[string]any, error) {
	out := map[string][]map[string]any{}
	objects := make([]string, 0, len(records))
	for o := range records {
		objects = append(objects, o)
	}
	sort.Strings(objects)
	var qs []query
	for _, obj := range objects {
		if _, ok := exportFields[obj]; !ok {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "INVALID_TYPE", Message: fmt.Sprintf("cannot export %s records; webcaresync exports Contact, SocialPersona, SocialPost, Case, Individual and Task", safeObject(obj))}
		}
		ids, err := checkIDs(obj, records[obj])
		if err != nil {
			return nil, err
		}
		fields := strings.Join(c.exportFieldList(obj), ", ")
		for _, part := range chunks(ids, idChunk) {
			qs = append(qs, query{
				soql: "SELECT " + fields + " FROM " + obj + " WHERE Id IN " + soqlList(part),
				handle: func(recs []Record) {
					for _, r := range recs {
						m := make(map[string]any, len(r))
						for k, v := range r {
							if k != "attributes" {
								m[k] = v
							}
						}
						out[obj] = append(out[obj], m)
					}
				},
			})
		}
	}
	if len(qs) == 0 {
		return out, nil
	}
	if err := c.runQueries(ctx, qs, false); err != nil {
		return nil, err
	}
	for obj := range out {
		sort.Slice(out[obj], func(i, j int) bool { return str(out[obj][i]["Id"]) < str(out[obj][j]["Id"]) })
	}
	return out, nil
}

// safeObject returns an object name fit for an error message.
func safeObject(s string) string {
	if isAPIName(s) {
		return s
	}
	return "unknown"
}

// eraseOrder is the order Erase works in: records before the records they
// point to, so that Salesforce never refuses a delete because of a record
// this erasure removes anyway.
var eraseOrder = []string{SObjectPost, SObjectPersona, SObjectCase, SObjectTask, SObjectContact, SObjectIndividual}

// Action words of crm.ErasureResult.
const (
	actionErased     = "erased"
	actionAnonymised = "anonymised"
	actionRetained   = "retained"
)

// codeInRecycleBin is Salesforce's answer for a record in the Recycle Bin:
// deleted, but still readable with queryAll and restorable with undelete.
const codeInRecycleBin = "ENTITY_IS_DELETED"

// gone reports whether a delete or update failed because the record no
// longer exists at all (hard-deleted, purged from the Recycle Bin, or never
// there), which for an erasure is success. A record in the Recycle Bin is
// not gone: it is purged.
func gone(code string) bool {
	switch code {
	case "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY":
		return true
	}
	return false
}

// purgeRefused reports whether Salesforce refused to purge a record for
// lack of a permission, which an administrator can grant: the record
// stays in the Recycle Bin until Salesforce empties it.
func purgeRefused(code string) bool {
	switch code {
	case "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED", "FUNCTIONALITY_NOT_ENABLED":
		return true
	}
	return false
}

// recycleBinDays is how long Salesforce keeps deleted records in the
// Recycle Bin before it purges them itself.
const recycleBinDays = 15

// hardDeleteRecheck is how long auto mode takes a missing "Bulk API Hard
// Delete" permission for granted before it tries a hard delete again.
const hardDeleteRecheck = time.Hour

// What the ledger says of deleted records.
const (
	detailHardDeleted = "deleted permanently with a Bulk API hardDelete job: never in the Recycle Bin, cannot be restored"
	detailPurged      = "deleted and removed from the Recycle Bin with emptyRecycleBin(): cannot be restored (Salesforce may list the deleted rows in queryAll for about a day before it drops them)"
	detailGone        = "already deleted permanently: not in the Recycle Bin, cannot be restored"
)

// detailInRecycleBin says why records are still in the Recycle Bin and
// until when, and what to do.
func detailInRecycleBin(code string, now time.Time) string {
	return fmt.Sprintf("deleted, but still in the Salesforce Recycle Bin until %s at the latest, where an administrator can restore them; "+
		"Salesforce purges them automatically after %d days. Salesforce refused to purge them now (%s): grant the integration user "+
		"Modify All Data (needed to empty records another user deleted from the Recycle Bin), then open the erasure again to purge them; "+
		"Bulk API Hard Delete keeps later erasures out of the Recycle Bin",
		now.AddDate(0, 0, recycleBinDays).UTC().Format("2006-01-02"), recycleBinDays, code)
}

// eraseFailure counts records one object's rule could not erase.
type eraseFailure struct {
	object string
	code   string
	n      int
}

// erasure is one Erase: the results so far, the records Salesforce
// refused, and the records in the Recycle Bin that are purged at the end.
type erasure struct {
	c        *Connector
	results  []crm.ErasureResult
	failures []eraseFailure
	// bin lists the records to purge from the Recycle Bin by object, in
	// the order the objects were erased, with each object's policy.
	bin      map[string][]string
	binOrder []string
	policy   map[string]string
}

func (r *erasure) add(obj, action string, n int, policy, detail string) {
	if n == 0 {
		return
	}
	for i, res := range r.results {
		if res.Object == obj && res.Action == action && res.Policy == policy && res.Detail == detail {
			r.results[i].Count += n
			return
		}
	}
	r.results = append(r.results, crm.ErasureResult{Object: obj, Action: action, Count: n, Policy: policy, Detail: detail})
}

// toBin queues a record in the Recycle Bin for the purge.
func (r *erasure) toBin(obj, id, policy string) {
	if _, ok := r.bin[obj]; !ok {
		r.binOrder = append(r.binOrder, obj)
	}
	r.bin[obj] = append(r.bin[obj], id)
	r.policy[obj] = policy
}

// Erase applies the mapping's erasure policy (mappings/salesforce.yaml,
// erasure:) to the records, object by object in eraseOrder: delete,
// anonymise and redact (Collections updates), and Individual.ShouldForget.
// Deleted records must not stay restorable in Salesforce's Recycle Bin:
// as Config.HardDelete says, they are deleted with a Bulk API 2.0
// hardDelete job, or deleted and then purged with emptyRecycleBin(), which
// also purges records of the subject that were already in the Recycle Bin
// (an earlier attempt, an earlier version, a delete by hand). Records
// Salesforce will not purge for lack of a permission are reported as
// retained, with the date the Recycle Bin lets go of them. A delete that
// Salesforce refuses falls back to the rule's fallback. Records already
// gone count as erased, so running it twice reports the same counts. An
// outage returns a Transient error at once (Temporal retries the whole,
// idempotent erasure); records Salesforce rejects for good are reported
// in one Permanent error after every other record was handled. A typical
// subject takes one hardDelete job (four calls) per deleted object and one
// call per updated object; on the Recycle Bin path, one call per deleted
// object and one or two emptyRecycleBin() calls per 200 records.
func (c *Connector) Erase(ctx context.Context, records map[string][]string) ([]crm.ErasureResult, error) {
	objects := append([]string(nil), eraseOrder...)
	var extra []string
	for o := range records {
		if !contains(eraseOrder, o) {
			extra = append(extra, o)
		}
	}
	sort.Strings(extra)
	objects = append(objects, extra...)

	run := &erasure{c: c, bin: map[string][]string{}, policy: map[string]string{}}
	for _, obj := range objects {
		if len(records[obj]) == 0 {
			continue
		}
		if !isAPIName(obj) {
			return nil, &crm.Error{Kind: crm.Permanent, Code: "INVALID_TYPE", Message: "an object name of the erasure is not a Salesforce object name; run discovery again"}
		}
		ids, err := checkIDs(obj, records[obj])
		if err != nil {
			return nil, err
		}
		if err := run.object(ctx, obj, ids); err != nil {
			return nil, err
		}
	}
	if err := run.purge(ctx); err != nil {
		return nil, err
	}
	if len(run.failures) == 0 {
		return run.results, nil
	}
	parts := make([]string, len(run.failures))
	for i, f := range run.failures {
		parts[i] = fmt.Sprintf("%d %s (%s: %s)", f.n, f.object, f.code, describe(f.code, nil))
	}
	return run.results, &crm.Error{Kind: crm.Permanent, Code: run.failures[0].code,
		Message: "Salesforce refused to erase " + strings.Join(parts, "; ") + "; fix this in Salesforce or the mapping's erasure rules, then run the erasure again"}
}

// object applies one object's rule.
func (r *erasure) object(ctx context.Context, obj string, ids []string) error {
	c := r.c
	rule, hasRule := c.m.Erasure.For(obj)
	if obj == SObjectIndividual {
		return r.individuals(ctx, ids, rule, hasRule)
	}
	if !hasRule {
		r.add(obj, actionRetained, len(ids), c.m.File+" erasure: no rule for "+obj,
			"the mapping has no erasure rule for "+obj+"; the records were kept unchanged")
		return nil
	}
	policy := fmt.Sprintf("%s erasure.%s: %s", c.m.File, obj, rule.Action)
	if rule.Fallback != "" {
		policy += ", fallback " + rule.Fallback
	}
	if rule.Action != mappings.EraseDelete {
		return r.update(ctx, obj, ids, erasureFields(rule, rule.Action), policy, erasureDetail(rule, rule.Action))
	}

	results, hard, err := r.deleteRecords(ctx, obj, ids)
	if err != nil {
		return err
	}
	if len(results) != len(ids) {
		return badAnswer("delete")
	}
	deleted, already := 0, 0
	var refused []string
	refusedCode := ""
	failed := map[string]int{}
	for i, res := range results {
		switch {
		case res.Err == nil && hard:
			deleted++
		case res.Err == nil, res.Err.Code == codeInRecycleBin:
			r.toBin(obj, ids[i], policy)
		case gone(res.Err.Code):
			already++
		case res.Err.Kind != crm.Permanent:
			return res.Err
		case rule.Fallback != "":
			refused = append(refused, ids[i])
			if refusedCode == "" {
				refusedCode = res.Err.Code
			}
		default:
			failed[res.Err.Code]++
		}
	}
	r.add(obj, actionErased, deleted, policy, detailHardDeleted)
	r.add(obj, actionErased, already, policy, detailGone)
	r.failures = append(r.failures, failuresOf(obj, failed)...)
	if len(refused) == 0 {
		return nil
	}
	why := fmt.Sprintf("Salesforce refused the delete (%s) because other records must keep pointing to it; ", refusedCode)
	return r.update(ctx, obj, refused, erasureFields(rule, rule.Fallback), policy, why+erasureDetail(rule, rule.Fallback))
}

// deleteRecords deletes records as Config.HardDelete says. hard reports
// whether the successful results were hard deletes; otherwise the records
// are in the Recycle Bin and must be purged.
func (r *erasure) deleteRecords(ctx context.Context, obj string, ids []string) (results []SaveResult, hard bool, err error) {
	c := r.c
	mode := c.client.cfg.HardDelete
	if mode == HardDeleteOff || (mode == HardDeleteAuto && c.hardDeleteDenied()) {
		results, err = c.client.CollectionDelete(ctx, ids)
		return results, false, err
	}
	results, err = c.client.HardDelete(ctx, obj, ids)
	var ce *crm.Error
	if err == nil || mode != HardDeleteAuto || !errors.As(err, &ce) || ce.Code != codeHardDeleteNotPermitted {
		return results, true, err
	}
	c.denyHardDelete()
	results, err = c.client.CollectionDelete(ctx, ids)
	return results, false, err
}

// hardDeleteDenied reports whether Salesforce refused a hard delete for
// lack of the permission within the last hardDeleteRecheck.
func (c *Connector) hardDeleteDenied() bool {
	at := c.noHardDelete.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < hardDeleteRecheck
}

// denyHardDelete remembers that the integration user lacks "Bulk API Hard
// Delete", and says so once: an administrator can grant it.
func (c *Connector) denyHardDelete() {
	prev := c.noHardDelete.Swap(time.Now().UnixNano())
	if prev != 0 && time.Since(time.Unix(0, prev)) < 24*time.Hour {
		return
	}
	c.log.Warn("the Salesforce integration user lacks the Bulk API Hard Delete permission: erasures delete records and then empty them from the Recycle Bin; grant the permission to delete them without the Recycle Bin")
}

// purge removes the queued records from the Recycle Bin, 200 per
// emptyRecycleBin() call, and reports per object what was purged and
// what Salesforce kept. Salesforce refuses to purge a record together
// with the record its delete cascaded from (a SocialPersona whose parent
// is a deleted SocialPost or Contact), so personas go in a second call,
// after their parents took the cascaded ones with them.
func (r *erasure) purge(ctx context.Context) error {
	var ids, owner []string
	var results []SaveResult
	for _, personas := range []bool{false, true} {
		var part, partOwner []string
		for _, obj := range r.binOrder {
			if (obj == SObjectPersona) != personas {
				continue
			}
			for _, id := range r.bin[obj] {
				part = append(part, id)
				partOwner = append(partOwner, obj)
			}
		}
		if len(part) == 0 {
			continue
		}
		res, err := r.c.client.EmptyRecycleBin(ctx, part)
		if err != nil {
			var ce *crm.Error
			if !errors.As(err, &ce) || ce.Kind != crm.Permanent || !purgeRefused(ce.Code) {
				return err
			}
			// The whole call was refused: every record stays in the bin.
			res = make([]SaveResult, len(part))
			for i := range res {
				res[i] = SaveResult{ID: part[i], Err: ce}
			}
		}
		if len(res) != len(part) {
			return badAnswer("emptyRecycleBin")
		}
		ids = append(ids, part...)
		owner = append(owner, partOwner...)
		results = append(results, res...)
	}
	if len(ids) == 0 {
		return nil
	}
	purged := map[string]int{}
	kept := map[string]map[string]int{}
	failed := map[string]map[string]int{}
	for i, res := range results {
		obj := owner[i]
		switch {
		case res.Err == nil || gone(res.Err.Code):
			purged[obj]++
		case purgeRefused(res.Err.Code):
			if kept[obj] == nil {
				kept[obj] = map[string]int{}
			}
			kept[obj][res.Err.Code]++
		case res.Err.Kind != crm.Permanent:
			return res.Err
		default:
			if failed[obj] == nil {
				failed[obj] = map[string]int{}
			}
			failed[obj][res.Err.Code]++
		}
	}
	now := time.Now()
	for _, obj := range r.binOrder {
		r.add(obj, actionErased, purged[obj], r.policy[obj], detailPurged)
		codes := make([]string, 0, len(kept[obj]))
		for code := range kept[obj] {
			codes = append(codes, code)
		}
		sort.Strings(codes)
		for _, code := range codes {
			r.add(obj, actionRetained, kept[obj][code], r.policy[obj], detailInRecycleBin(code, now))
		}
		r.failures = append(r.failures, failuresOf(obj, failed[obj])...)
	}
	return nil
}

func failuresOf(obj string, failed map[string]int) []eraseFailure {
	codes := make([]string, 0, len(failed))
	for code := range failed {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	out := make([]eraseFailure, 0, len(codes))
	for _, code := range codes {
		out = append(out, eraseFailure{object: obj, code: code, n: failed[code]})
	}
	return out
}

// erasureFields are the field values anonymise or redact writes.
func erasureFields(rule mappings.ErasureRule, action string) Record {
	f := Record{}
	for _, name := range rule.Fields {
		if action == mappings.EraseRedact {
			f[name] = rule.Replacement
		} else {
			f[name] = nil
		}
	}
	for _, name := range rule.Clear {
		f[name] = nil
	}
	for k, v := range rule.Set {
		f[k] = v
	}
	return f
}

// erasureDetail says in words what anonymise or redact did.
func erasureDetail(rule mappings.ErasureRule, action string) string {
	var parts []string
	if len(rule.Fields) > 0 {
		if action == mappings.EraseRedact {
			parts = append(parts, strings.Join(rule.Fields, ", ")+" replaced with the redaction text")
		} else {
			parts = append(parts, strings.Join(rule.Fields, ", ")+" emptied")
		}
	}
	if len(rule.Clear) > 0 {
		parts = append(parts, strings.Join(rule.Clear, ", ")+" emptied")
	}
	if len(rule.Set) > 0 {
		set := make([]string, 0, len(rule.Set))
		for k := range rule.Set {
			set = append(set, k)
		}
		sort.Strings(set)
		parts = append(parts, strings.Join(set, ", ")+" set to a placeholder")
	}
	return "record kept; " + strings.Join(parts, "; ")
}

// update anonymises or redacts records with Collections updates. A record
// that is in the Recycle Bin cannot be updated: it is purged instead.
func (r *erasure) update(ctx context.Context, obj string, ids []string, fields Record, policy, detail string) error {
	updates := make([]Update, len(ids))
	for i, id := range ids {
		updates[i] = Update{SObject: obj, ID: id, Fields: fields}
	}
	results, err := r.c.client.CollectionUpdate(ctx, updates)
	if err != nil {
		return err
	}
	if len(results) != len(ids) {
		return badAnswer("collection update")
	}
	anonymised, already := 0, 0
	failed := map[string]int{}
	for i, res := range results {
		switch {
		case res.Err == nil:
			anonymised++
		case res.Err.Code == codeInRecycleBin:
			r.toBin(obj, ids[i], policy)
		case gone(res.Err.Code):
			already++
		case res.Err.Kind != crm.Permanent:
			return res.Err
		default:
			failed[res.Err.Code]++
		}
	}
	r.add(obj, actionAnonymised, anonymised, policy, detail)
	r.add(obj, actionErased, already, policy, detailGone)
	r.failures = append(r.failures, failuresOf(obj, failed)...)
	return nil
}

// individuals sets ShouldForget and anonymises the Individuals as the
// mapping's `individual:` block says, in one update.
func (r *erasure) individuals(ctx context.Context, ids []string, rule mappings.ErasureRule, hasRule bool) error {
	c := r.c
	forget := c.m.Erasure.IndividualShouldForget
	if !forget && !hasRule {
		r.add(SObjectIndividual, actionRetained, len(ids), c.m.File+" erasure.individual: not set",
			"the mapping does not set Individual.ShouldForget; the records were kept unchanged")
		return nil
	}
	fields := Record{}
	var detail []string
	policy := c.m.File + " erasure.individual:"
	if forget {
		fields["ShouldForget"] = true
		detail = append(detail, "ShouldForget set")
		policy += " should_forget"
	}
	if hasRule {
		for k, v := range erasureFields(rule, mappings.EraseAnonymise) {
			fields[k] = v
		}
		detail = append(detail, strings.TrimPrefix(erasureDetail(rule, mappings.EraseAnonymise), "record kept; "))
		policy += " anonymise"
	}
	return r.update(ctx, SObjectIndividual, ids, fields, policy, "record kept; "+strings.Join(detail, "; "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var _ crm.Eraser = (*Connector)(nil)
