package sfsandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// record is one stored sObject record. Fields holds canonical field names.
type record struct {
	Object string         `json:"object"`
	Fields map[string]any `json:"fields"`
	Seq    uint64         `json:"seq"`
	// CascadeOf is, for a record in the Recycle Bin, the ID of the record
	// whose delete cascaded to it: it leaves the Recycle Bin (undelete,
	// emptyRecycleBin) together with that record.
	CascadeOf string `json:"cascade_of,omitempty"`
}

func (r *record) id() string { return r.Fields["Id"].(string) }

func (r *record) deleted() bool { b, _ := r.Fields["IsDeleted"].(bool); return b }

func (r *record) clone() *record {
	f := make(map[string]any, len(r.Fields))
	for k, v := range r.Fields {
		f[k] = v
	}
	return &record{Object: r.Object, Fields: f, Seq: r.Seq, CascadeOf: r.CascadeOf}
}

// store holds all records in memory and snapshots them to a JSON file.
// One mutex serialises every API call's data access; that is plenty for a
// sandbox and makes allOrNone rollback simple. Stored records are never
// changed in place (writers put a changed clone), which keeps the
// per-object indexes (index.go) exact.
type store struct {
	mu      sync.Mutex
	records map[string]*record // by 18-character ID
	objects map[string]*objectIndex
	seq     map[string]uint64 // by key prefix
	caseNo  uint64
	dirty   bool
	// onWrite, when set, observes every record a transaction leaves
	// written (Options.OnWrite).
	onWrite func(object, id string, fields map[string]any)

	path string // "" = in memory
}

type snapshot struct {
	Records []*record         `json:"records"`
	Seq     map[string]uint64 `json:"seq"`
	CaseNo  uint64            `json:"case_number"`
}

func newStore(dir string, wipe bool) (*store, error) {
	s := &store{records: map[string]*record{}, objects: map[string]*objectIndex{}, seq: map[string]uint64{}}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create sandbox data dir: %w", err)
	}
	s.path = filepath.Join(dir, "sfsandbox.json")
	if wipe {
		if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("wipe sandbox data: %w", err)
		}
		return s, nil
	}
	b, err := os.ReadFile(s.path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sandbox data: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("sandbox data file %s is unreadable (start with wipe to discard it): %w", s.path, err)
	}
	for _, r := range snap.Records {
		if r == nil || r.Fields == nil {
			continue
		}
		id, _ := r.Fields["Id"].(string)
		if id == "" {
			continue
		}
		s.set(r)
	}
	if snap.Seq != nil {
		s.seq = snap.Seq
	}
	s.caseNo = snap.CaseNo
	return s, nil
}

// flush writes a snapshot atomically (temp file, fsync, rename) when
// anything changed since the last one. Stored records are never changed in
// place, so the snapshot shares them instead of cloning, and it streams
// them to the file one at a time: a sandbox holding tens of thousands of
// records never builds the whole file in memory.
func (s *store) flush() error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	seq := make(map[string]uint64, len(s.seq))
	for k, v := range s.seq {
		seq[k] = v
	}
	caseNo := s.caseNo
	records := make([]*record, 0, len(s.records))
	for _, r := range s.records {
		records = append(records, r)
	}
	s.dirty = false
	s.mu.Unlock()
	sort.Slice(records, func(i, j int) bool { return records[i].Seq < records[j].Seq })
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".sfsandbox-*.tmp")
	if err != nil {
		return fmt.Errorf("write sandbox snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSnapshot(tmp, records, seq, caseNo); err != nil {
		tmp.Close()
		return fmt.Errorf("write sandbox snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync sandbox snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close sandbox snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("replace sandbox snapshot: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writeSnapshot writes the JSON form of snapshot, record by record.
func writeSnapshot(f *os.File, records []*record, seq map[string]uint64, caseNo uint64) error {
	w := bufio.NewWriterSize(f, 256<<10)
	head, err := json.Marshal(seq)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, `{"seq":%s,"case_number":%d,"records":[`, head, caseNo)
	enc := json.NewEncoder(w)
	for i, r := range records {
		if i > 0 {
			w.WriteByte(',')
		}
		// Encode appends a newline, which JSON allows between elements.
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	w.WriteString("]}\n")
	return w.Flush()
}

// run flushes every interval until ctx is done.
func (s *store) run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.flush(); err != nil {
				onErr(err)
			}
		}
	}
}

// txn is a unit of work holding the store lock, with an undo log so that
// allOrNone requests can roll back.
type txn struct {
	st   *store
	undo []undoEntry
	now  time.Time
}

type undoEntry struct {
	id   string
	prev *record // nil: did not exist
}

type txnKey struct{}

// begin starts a transaction, or joins the one already in ctx (composite
// subrequests). done releases the lock unless the transaction was joined.
func (s *store) begin(ctx context.Context) (*txn, context.Context, func()) {
	if tx, ok := ctx.Value(txnKey{}).(*txn); ok {
		return tx, ctx, func() {}
	}
	s.mu.Lock()
	tx := &txn{st: s, now: time.Now().UTC()}
	return tx, context.WithValue(ctx, txnKey{}, tx), func() {
		s.observe(tx)
		s.mu.Unlock()
	}
}

// observe reports the records tx left written to onWrite, under the lock,
// so that the observer sees them exactly when readers can.
func (s *store) observe(tx *txn) {
	if s.onWrite == nil || len(tx.undo) == 0 {
		return
	}
	seen := make(map[string]bool, len(tx.undo))
	for _, u := range tx.undo {
		if seen[u.id] {
			continue
		}
		seen[u.id] = true
		if r := s.records[u.id]; r != nil {
			s.onWrite(r.Object, u.id, r.Fields)
		}
	}
}

func (tx *txn) savepoint() int { return len(tx.undo) }

func (tx *txn) rollbackTo(sp int) {
	for i := len(tx.undo) - 1; i >= sp; i-- {
		u := tx.undo[i]
		if u.prev == nil {
			tx.st.remove(u.id)
		} else {
			tx.st.set(u.prev)
		}
	}
	tx.undo = tx.undo[:sp]
	tx.st.dirty = true
}

func (tx *txn) get(id string) *record { return tx.st.records[id] }

func (tx *txn) put(r *record) {
	id := r.id()
	prev := tx.st.records[id]
	tx.undo = append(tx.undo, undoEntry{id: id, prev: prev})
	tx.st.set(r)
	tx.st.dirty = true
}

// purge removes the record with the ID for good: it leaves the Recycle
// Bin, queryAll and the next snapshot. Salesforce cannot undo a hard
// delete or an emptyRecycleBin(), so neither can a rollback: the undo log
// forgets the record.
func (tx *txn) purge(id string) {
	if tx.st.records[id] == nil {
		return
	}
	kept := tx.undo[:0]
	for _, u := range tx.undo {
		if u.id != id {
			kept = append(kept, u)
		}
	}
	tx.undo = kept
	tx.st.remove(id)
	tx.st.dirty = true
}

func (tx *txn) nextID(prefix string) (string, uint64) {
	tx.st.seq[prefix]++
	n := tx.st.seq[prefix]
	return newID(prefix, n), n
}

func (tx *txn) nextCaseNumber() string {
	tx.st.caseNo++
	return fmt.Sprintf("%08d", 1000+tx.st.caseNo)
}

// live returns the object's records that are not deleted, in creation order.
func (tx *txn) live(object string) []*record {
	ordered := tx.st.object(object).ordered()
	out := make([]*record, 0, len(ordered))
	for _, r := range ordered {
		if !r.deleted() {
			out = append(out, r)
		}
	}
	return out
}

// all returns the object's records including deleted ones.
func (tx *txn) all(object string) []*record {
	return append([]*record(nil), tx.st.object(object).ordered()...)
}

// findBy returns live records whose field equals value (text compared
// case-insensitively, as Salesforce matches external IDs), in creation
// order. It answers from the object's index on the field, which it builds
// on first use and the store maintains from then on, so a lookup costs the
// same however many records the org holds, as with Salesforce's indexed
// external ID and unique fields.
func (tx *txn) findBy(object string, f *fieldDef, value any) []*record {
	key, ok := indexKey(f, value)
	if !ok {
		return tx.scanBy(object, f, value)
	}
	bucket := tx.st.object(object).field(f).byKey[key]
	var out []*record
	for _, r := range bucket {
		if equalValues(f, r.Fields[f.Name], value) {
			out = append(out, r)
		}
	}
	sortBySeq(out)
	return out
}

// scanBy is findBy for values no index holds (nil).
func (tx *txn) scanBy(object string, f *fieldDef, value any) []*record {
	var out []*record
	for _, r := range tx.live(object) {
		if equalValues(f, r.Fields[f.Name], value) {
			out = append(out, r)
		}
	}
	return out
}

func equalValues(f *fieldDef, a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if isTextType(f.Type) {
		as, ok1 := a.(string)
		bs, ok2 := b.(string)
		return ok1 && ok2 && strings.EqualFold(as, bs)
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func (s *store) wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = map[string]*record{}
	s.objects = map[string]*objectIndex{}
	s.seq = map[string]uint64{}
	s.caseNo = 0
	s.dirty = true
}

func nowUTC() time.Time { return time.Now().UTC() }
