package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/webcaresync/webcaresync/internal/app"
	"github.com/webcaresync/webcaresync/internal/channels/meta"
	"github.com/webcaresync/webcaresync/internal/channels/x"
	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/demo"
	"github.com/webcaresync/webcaresync/internal/logging"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/privacyscan"
	"github.com/webcaresync/webcaresync/internal/samples"
	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/schemas"
)

// sampleEvents parses a demo conversation's payloads into events.
func sampleEvents(t *testing.T, conv samples.Conversation) []schemas.Event {
	t.Helper()
	var out []schemas.Event
	for _, p := range conv.Payloads {
		var (
			evs []schemas.Event
			err error
		)
		switch p.Channel {
		case "meta":
			evs, err = meta.New("", "").Parse(p.Body)
		case "x":
			evs, err = x.New("").Parse(p.Body)
		default:
			t.Fatalf("sample conversation %s: unknown channel %s", conv.Name, p.Channel)
		}
		if err != nil {
			t.Fatalf("sample conversation %s: %v", conv.Name, err)
		}
		out = append(out, evs...)
	}
	return out
}

// sanneConversations returns the demo conversations Sanne wrote in.
func sanneConversations(t *testing.T) map[string][]schemas.Event {
	t.Helper()
	out := map[string][]schemas.Event{}
	for _, conv := range samples.Conversations() {
		evs := sampleEvents(t, conv)
		for _, e := range evs {
			if e.Author.PlatformUserID == samples.SanneXID || e.Author.PlatformUserID == samples.SanneWaID {
				out[conv.Name] = evs
				break
			}
		}
	}
	if len(out) != 2 {
		t.Fatalf("found %d conversations of Sanne in the samples, want 2 (X DM and WhatsApp)", len(out))
	}
	return out
}

// sanneSubject is everything personal about the demo customer Sanne: her
// contact details, ids and handle, and every text of her conversations
// (the brand's replies in them are about her too).
func sanneSubject(t *testing.T) privacyscan.Subject {
	s := privacyscan.Subject{
		Emails:  []string{"sanne.devries@example.nl"},
		Phones:  []string{"+31612345678", "+31201234560"},
		Handles: []string{samples.SanneXID, "sannedv", samples.SanneWaID},
		Names:   []string{"Sanne de Vries", "Oudegracht 12"},
	}
	for _, evs := range sanneConversations(t) {
		for _, e := range evs {
			if e.Text != "" {
				s.Texts = append(s.Texts, e.Text)
			}
		}
	}
	if len(s.Texts) < 6 {
		t.Fatalf("found %d texts in Sanne's conversations, want at least 6", len(s.Texts))
	}
	return s
}

// keyIDNeedles names opaque key ids, which a scan must find in the
// Temporal database while the encrypted payloads are there.
func keyIDNeedles(ids []string) []privacyscan.Needle {
	var out []privacyscan.Needle
	for i, id := range ids {
		out = append(out, privacyscan.Needle{Kind: "key-id", Label: fmt.Sprintf("key-id[%d]", i), Value: id})
	}
	return out
}

// payloadsIn returns every Payload inside a protobuf message, however deep,
// except those in headers (the key id propagator's opaque key id) and
// search attributes (plain by design; TestPrivacyIdentifiers checks them).
func payloadsIn(m proto.Message) []*commonpb.Payload {
	var out []*commonpb.Payload
	var walk func(protoreflect.Message)
	walk = func(m protoreflect.Message) {
		switch v := m.Interface().(type) {
		case *commonpb.Payload:
			out = append(out, v)
			return
		case *commonpb.Header, *commonpb.SearchAttributes:
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList():
				if fd.Message() != nil {
					for i := 0; i < v.List().Len(); i++ {
						walk(v.List().Get(i).Message())
					}
				}
			case fd.IsMap():
				if fd.MapValue().Message() != nil {
					v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
						walk(mv.Message())
						return true
					})
				}
			case fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return out
}

// history returns the encrypted payloads of a workflow's history.
func history(ctx context.Context, t *testing.T, a *app.App, workflowID string) []*commonpb.Payload {
	t.Helper()
	it := a.Client.GetWorkflowHistory(ctx, workflowID, "", false, 0)
	var out []*commonpb.Payload
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of a conversation workflow: %v", err)
		}
		for _, p := range payloadsIn(ev) {
			out = append(out, proto.Clone(p).(*commonpb.Payload))
		}
	}
	return out
}

// storeReaders returns the store's tables as text when it runs on
// PostgreSQL; on SQLite the store's files are in the data dir.
func storeReaders(ctx context.Context, t *testing.T, dbURL string) []privacyscan.NamedReader {
	t.Helper()
	if dbURL == "" {
		return nil
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := privacyscan.PostgresTables(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 3 {
		t.Fatalf("the store's PostgreSQL schema has %d tables: the scan would see nothing", len(rs))
	}
	return rs
}

// reportText renders a report for a test failure; it holds no values.
func reportText(r privacyscan.Report) string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

// testKeyStore adapts the store's data keys to the keyring, as the app
// does, so the test can build a Keyring of its own.
type testKeyStore struct{ s store.Store }

func toDataKey(k store.DataKey) privacy.DataKey {
	return privacy.DataKey{ID: k.ID, SubjectID: k.SubjectID, Wrapped: k.Wrapped, MasterKeyID: k.MasterKeyID, CreatedAt: k.CreatedAt, DestroyedAt: k.DestroyedAt}
}

func (k testKeyStore) PutDataKey(context.Context, privacy.DataKey) error {
	return errors.New("the test keyring only reads keys")
}

func (k testKeyStore) GetDataKey(ctx context.Context, id string) (privacy.DataKey, error) {
	d, err := k.s.GetDataKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return privacy.DataKey{}, privacy.ErrKeyNotFound
	}
	return toDataKey(d), err
}

func (k testKeyStore) DataKeysBySubject(ctx context.Context, subjectID string) ([]privacy.DataKey, error) {
	ks, err := k.s.DataKeysBySubject(ctx, subjectID)
	out := make([]privacy.DataKey, len(ks))
	for i, d := range ks {
		out[i] = toDataKey(d)
	}
	return out, err
}

func (k testKeyStore) AssignDataKeys(context.Context, []string, string) error {
	return errors.New("the test keyring only reads keys")
}

func (k testKeyStore) DestroyDataKeys(context.Context, string) (int, error) {
	return 0, errors.New("the test keyring only reads keys")
}

func (k testKeyStore) DataKeysByMaster(context.Context, string, int) ([]privacy.DataKey, error) {
	return nil, nil
}

func (k testKeyStore) RewrapDataKey(context.Context, string, []byte, string) error {
	return errors.New("the test keyring only reads keys")
}

var _ privacy.KeyStore = testKeyStore{}

// reopen starts Temporal, the store and the keyring again on a finished
// demo's data dir, without workers, webhooks or the sandbox.
func reopen(ctx context.Context, t *testing.T, dir, dbURL string) *app.App {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.DatabaseURL = dbURL
	log, _ := logging.NewCapture()
	a, err := app.Start(ctx, cfg, log, app.Parts{Embedded: true, EphemeralPorts: true, DevSecrets: true})
	if err != nil {
		t.Fatalf("reopen the data dir: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// TestPrivacyResidue is the privacy proof of issue 8: it runs the demo,
// scans every file of the data dir (the embedded Temporal SQLite database
// and WAL, the store database and WAL; on PostgreSQL the store's tables)
// and the logs for Sanne's data byte for byte, before and after her
// erasure, and checks that her recorded payloads cannot be decrypted after
// it, even with the master key.
func TestPrivacyResidue(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	dbURL := databaseURL(t)
	subject := sanneSubject(t)
	needles := subject.Needles()
	log, capture := logging.NewCapture()

	type recorded struct {
		conversation string
		keyIDs       map[string]bool
		payloads     []*commonpb.Payload
	}
	var (
		sanne   []recorded // Sanne's conversation workflows, as recorded before the erasure
		control recorded   // a conversation of another customer
		convIDs []string
		ran     bool
	)
	afterSync := func(a *app.App) {
		ran = true
		for name, evs := range sanneConversations(t) {
			id := a.Ingestor.ConversationID(evs[0])
			convIDs = append(convIDs, id)
			r := recorded{conversation: name, keyIDs: map[string]bool{}, payloads: history(ctx, t, a, id)}
			for _, p := range r.payloads {
				r.keyIDs[string(p.GetMetadata()[privacy.MetadataKeyID])] = true
			}
			sanne = append(sanne, r)
		}
		for _, conv := range samples.Conversations() {
			if conv.Name == "messenger-emily-refund" {
				id := a.Ingestor.ConversationID(sampleEvents(t, conv)[0])
				control = recorded{conversation: conv.Name, payloads: history(ctx, t, a, id)}
				break
			}
		}

		// Before the erasure: her data is everywhere in Temporal and the
		// store, but only encrypted. The scan finds the key ids that are
		// stored in clear beside the ciphertexts, which shows it reads the
		// files; it finds none of her data in clear.
		all := append(keyIDNeedles(convIDs), needles...)
		rep, err := privacyscan.Scan(dir, all, append(storeReaders(ctx, t, dbURL), privacyscan.NamedReader{Name: "logs", R: bytes.NewReader(capture.Bytes())})...)
		if err != nil {
			t.Fatalf("scan before the erasure: %v", err)
		}
		t.Logf("before the erasure: recorded %d and %d payloads of Sanne's conversations; the scan found their key ids %d times in the Temporal database",
			len(sanne[0].payloads), len(sanne[1].payloads), rep.CountIn("key-id", "temporal/"))
		if n := rep.CountIn("key-id", "temporal/"); n == 0 {
			t.Errorf("before the erasure the scan found none of the key ids of Sanne's conversations in the Temporal database: it cannot see payloads\n%s", reportText(rep))
		}
		if n := rep.CountIn("key-id", "postgres:"); dbURL != "" && n == 0 {
			t.Errorf("before the erasure the scan found none of the key ids in the store's PostgreSQL tables: it cannot see the store")
		}
		var plain []string
		for _, nr := range rep.Found() {
			if nr.Kind != "key-id" {
				plain = append(plain, nr.Label)
			}
		}
		if len(plain) > 0 {
			t.Errorf("before the erasure Sanne's data is stored in clear (payloads must be encrypted at rest): %v\n%s", plain, reportText(rep))
		}
		// The sandbox (the stand-in CRM, excluded above) holds her records
		// in its snapshot, which it writes within a second of a change: the
		// scan after the erasure can see them.
		eventually(t, 10*time.Second, "Sanne's records in the sandbox snapshot", func() bool {
			crm, err := privacyscan.Options{Exclude: []string{}}.Scan(filepath.Join(dir, "sandbox"), needles)
			return err == nil && crm.Total() > 0
		})
	}

	var out bytes.Buffer
	sum, err := demo.Run(ctx, demo.Options{DataDir: dir, DatabaseURL: dbURL, Out: &out, Log: log, Timeout: 60 * time.Second, AfterSync: afterSync})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if !ran || sum.ErasureDSR == "" {
		t.Fatalf("the demo ran no erasure (after-sync hook ran: %v)", ran)
	}
	for _, r := range sanne {
		if len(r.payloads) == 0 {
			t.Fatalf("recorded no payloads of %s", r.conversation)
		}
	}

	// After the erasure: nothing of hers, in any form, in any file or log.
	rep, err := privacyscan.Scan(dir, needles, append(storeReaders(ctx, t, dbURL), privacyscan.NamedReader{Name: "logs", R: bytes.NewReader(capture.Bytes())})...)
	if err != nil {
		t.Fatalf("scan after the erasure: %v", err)
	}
	if rep.Total() != 0 {
		t.Errorf("after the erasure Sanne's data is still readable:\n%s", reportText(rep))
	}
	if len(rep.Sources) < 3 {
		t.Errorf("the scan read only %d sources", len(rep.Sources))
	}
	t.Logf("scanned %d sources and %d bytes of logs after the erasure for %d needles", len(rep.Sources), len(capture.Bytes()), len(needles))
	// Nor does the sandbox's snapshot keep her records, not even deleted
	// ones: Salesforce's Recycle Bin keeps deleted records readable and
	// restorable, so the erasure hard-deletes or purges them.
	crm, err := privacyscan.Options{Exclude: []string{}}.Scan(filepath.Join(dir, "sandbox"), needles)
	if err != nil {
		t.Fatalf("scan of the sandbox after the erasure: %v", err)
	}
	if crm.Total() != 0 || len(crm.Sources) == 0 {
		t.Errorf("after the erasure the CRM (sandbox snapshot, %d files) still holds Sanne's data:\n%s", len(crm.Sources), reportText(crm))
	}
	// The deleted workflows' opaque ids may survive in free pages; they are
	// not personal data, but show whether deleted rows leave bytes behind.
	if ids, err := privacyscan.Scan(dir, keyIDNeedles(convIDs)); err == nil && testing.Verbose() {
		t.Logf("after the erasure the key ids of Sanne's conversations occur %d times in the Temporal database", ids.CountIn("key-id", "temporal/"))
	}

	// Her payloads cannot be decrypted any more, even with the master key:
	// a fresh keyring over the same store and master key file sees her data
	// keys destroyed. Another customer's payloads still decrypt, so the
	// keyring itself works.
	a := reopen(ctx, t, dir, dbURL)
	mk, err := privacy.LoadMasterKeys(a.Cfg.Secrets.MasterKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	kr := privacy.NewKeyring(testKeyStore{a.Store}, mk, nil, privacy.WithCacheTTL(0))
	dc := privacy.NewDataConverter(kr)
	codec := privacy.NewCodec(kr)
	for _, r := range sanne {
		encrypted := 0
		for _, p := range r.payloads {
			if string(p.GetMetadata()[converter.MetadataEncoding]) != privacy.EncodingEncrypted {
				t.Errorf("%s: a payload in the history is not encrypted (encoding %q)", r.conversation, p.GetMetadata()[converter.MetadataEncoding])
				continue
			}
			encrypted++
			var v any
			err := dc.FromPayload(p, &v)
			if !errors.Is(err, privacy.ErrErased) {
				t.Errorf("%s: decoding a recorded payload after the erasure: %v, want an error wrapping privacy.ErrErased", r.conversation, err)
			}
			dec, err := codec.Decode([]*commonpb.Payload{p})
			if err != nil {
				t.Errorf("%s: the codec endpoint's decode failed instead of marking the payload erased: %v", r.conversation, err)
				continue
			}
			var marker privacy.ErasedMarker
			if json.Unmarshal(dec[0].GetData(), &marker) != nil || !marker.Erased {
				t.Errorf("%s: the codec decoded an erased payload to something other than the erased marker", r.conversation)
			}
		}
		if encrypted == 0 {
			t.Errorf("%s: no encrypted payloads recorded", r.conversation)
		}
		for id := range r.keyIDs {
			if _, err := kr.Open(ctx, id, []byte("0123456789012345678901234567890123")); !errors.Is(err, privacy.ErrErased) {
				t.Errorf("%s: data key %s survived the erasure (%v)", r.conversation, id, err)
			}
		}
	}
	if len(control.payloads) == 0 {
		t.Fatal("recorded no payloads of the control conversation")
	}
	for _, p := range control.payloads {
		var v any
		if err := dc.FromPayload(p, &v); err != nil {
			t.Fatalf("another customer's payload does not decode with the fresh keyring (so the check above proves nothing): %v", err)
		}
	}
}

// identifierNeedles lists every demo customer's personal data: e-mail
// addresses, phone numbers in all forms, names, handles and platform ids.
func identifierNeedles() []privacyscan.Needle {
	var s privacyscan.Subject
	for _, c := range samples.Customers() {
		s.Emails = append(s.Emails, c.Email)
		s.Phones = append(s.Phones, c.Phone, c.Mobile)
		s.Names = append(s.Names, c.FirstName, c.LastName, c.FirstName+" "+c.LastName, c.Street)
	}
	s.Phones = nonEmpty(s.Phones)
	s.Handles = []string{samples.SanneXID, samples.SanneWaID, samples.EmilyPSID, samples.JorisIGID, samples.FleurIGID,
		samples.LotteXID, samples.PieterXID, "sannedv", "pjansen", "lottevisser", "joris.bakker", "fleur.maes"}
	return s.Needles()
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TestPrivacyIdentifiers runs the demo, then lists every workflow execution
// in the namespace, open and closed, and checks that no workflow id, run
// id, workflow type, task queue, search attribute or memo holds any demo
// customer's personal data, in clear or decoded.
func TestPrivacyIdentifiers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	dbURL := databaseURL(t)
	log, capture := logging.NewCapture()
	var before []byte
	listAll := func(a *app.App) ([]byte, int) {
		var buf bytes.Buffer
		n := 0
		var token []byte
		codec := privacy.NewCodec(a.Keyring)
		for {
			resp, err := a.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: a.Cfg.Temporal.Namespace, NextPageToken: token, PageSize: 100,
			})
			if err != nil {
				t.Fatalf("list workflows: %v", err)
			}
			for _, info := range resp.GetExecutions() {
				n++
				raw, err := proto.Marshal(info)
				if err != nil {
					t.Fatal(err)
				}
				buf.Write(raw)
				buf.WriteString("\n" + info.GetExecution().GetWorkflowId() + "\n" + info.GetExecution().GetRunId() + "\n" +
					info.GetType().GetName() + "\n" + info.GetTaskQueue() + "\n")
				// The memo may be encrypted; look at it decoded too, as an
				// operator with the codec would.
				for _, p := range info.GetMemo().GetFields() {
					dec, err := codec.Decode([]*commonpb.Payload{p})
					if err == nil {
						buf.Write(dec[0].GetData())
					}
				}
				for _, p := range info.GetSearchAttributes().GetIndexedFields() {
					buf.Write(p.GetData())
					buf.WriteByte('\n')
				}
			}
			token = resp.GetNextPageToken()
			if len(token) == 0 {
				return buf.Bytes(), n
			}
		}
	}
	afterSync := func(a *app.App) {
		var n int
		before, n = listAll(a)
		if n < 6 {
			t.Errorf("listed %d workflow executions after the sync, want at least the 6 conversations", n)
		}
	}
	if _, err := demo.Run(ctx, demo.Options{DataDir: dir, DatabaseURL: dbURL, Log: log, Timeout: 60 * time.Second, AfterSync: afterSync}); err != nil {
		t.Fatalf("demo: %v", err)
	}
	a := reopen(ctx, t, dir, dbURL)
	after, n := listAll(a)
	if n < 6 {
		t.Errorf("listed %d workflow executions after the demo, want at least 6", n)
	}
	t.Logf("checked %d workflow executions after the demo (%d bytes), and those running after the sync (%d bytes)", n, len(after), len(before))

	needles := identifierNeedles()
	// The scan must see identifiers: the namespace's task queue is in
	// every execution.
	probe := append([]privacyscan.Needle{{Kind: "probe", Label: "task queue", Value: a.Cfg.Temporal.TaskQueue}}, needles...)
	rep, err := privacyscan.Scan("", probe,
		privacyscan.NamedReader{Name: "executions after sync", R: bytes.NewReader(before)},
		privacyscan.NamedReader{Name: "executions after demo", R: bytes.NewReader(after)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Needles[0].Count == 0 {
		t.Fatal("the task queue name is not in the listed executions: the check sees nothing")
	}
	rep.Needles = rep.Needles[1:]
	if rep.Total() != 0 {
		t.Errorf("workflow identifiers, search attributes or memos carry personal data:\n%s", reportText(rep))
	}
	if leaks := capture.Leaks("sanne.devries@example.nl", "+31612345678", "06-12345678", "sannedv", "Sanne de Vries"); len(leaks) > 0 {
		t.Errorf("the logs leak %d personal values", len(leaks))
	}
}
