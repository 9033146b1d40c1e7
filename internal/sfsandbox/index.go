package sfsandbox

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// objectIndex holds one object's records in creation order and, for each
// field that findBy has been asked about (external IDs, unique fields,
// references), its live records by value. The store keeps both up to date
// on every write and rollback, under its lock.
type objectIndex struct {
	byID map[string]*record
	// order lists the records by Seq; stale means it must be rebuilt
	// from byID (after a removal or an out-of-order insert).
	order []*record
	pos   map[string]int // ID → index in order, while not stale
	stale bool
	// fields maps a field name to its index.
	fields map[string]*fieldIndex
}

// fieldIndex maps a value key (indexKey) to the live records, by ID, whose
// field has that value.
type fieldIndex struct {
	def   *fieldDef
	byKey map[string]map[string]*record
}

// object returns the index of the named object, creating it empty.
func (s *store) object(name string) *objectIndex {
	ix := s.objects[name]
	if ix == nil {
		ix = &objectIndex{byID: map[string]*record{}, pos: map[string]int{}, fields: map[string]*fieldIndex{}}
		s.objects[name] = ix
	}
	return ix
}

// set stores r, replacing the record with its ID, and updates the indexes.
func (s *store) set(r *record) {
	id := r.id()
	if prev := s.records[id]; prev != nil && prev.Object != r.Object {
		s.remove(id)
	}
	prev := s.records[id]
	s.records[id] = r
	ix := s.object(r.Object)
	ix.byID[id] = r
	ix.unindexFields(prev)
	ix.indexFields(r)
	switch i, ok := ix.pos[id]; {
	case ix.stale:
	case ok:
		ix.order[i] = r
	case len(ix.order) > 0 && less(r, ix.order[len(ix.order)-1]):
		ix.stale = true
	default:
		ix.pos[id] = len(ix.order)
		ix.order = append(ix.order, r)
	}
}

// remove deletes the record with the ID from the store and its indexes.
func (s *store) remove(id string) {
	prev := s.records[id]
	if prev == nil {
		return
	}
	delete(s.records, id)
	ix := s.object(prev.Object)
	delete(ix.byID, id)
	ix.unindexFields(prev)
	if i, ok := ix.pos[id]; ok && !ix.stale && i == len(ix.order)-1 {
		// The usual rollback: the newest record goes away.
		ix.order = ix.order[:i]
		delete(ix.pos, id)
		return
	}
	ix.stale = true
}

// ordered returns the object's records (deleted ones too) by Seq. The
// slice belongs to the index: callers must not change it.
func (ix *objectIndex) ordered() []*record {
	if !ix.stale {
		return ix.order
	}
	ix.order = make([]*record, 0, len(ix.byID))
	for _, r := range ix.byID {
		ix.order = append(ix.order, r)
	}
	sortBySeq(ix.order)
	ix.pos = make(map[string]int, len(ix.order))
	for i, r := range ix.order {
		ix.pos[r.id()] = i
	}
	ix.stale = false
	return ix.order
}

// field returns the index of field f, building it on first use.
func (ix *objectIndex) field(f *fieldDef) *fieldIndex {
	if fi, ok := ix.fields[f.Name]; ok {
		return fi
	}
	fi := &fieldIndex{def: f, byKey: map[string]map[string]*record{}}
	ix.fields[f.Name] = fi
	for _, r := range ix.byID {
		fi.add(r)
	}
	return fi
}

func (ix *objectIndex) indexFields(r *record) {
	if r == nil {
		return
	}
	for _, fi := range ix.fields {
		fi.add(r)
	}
}

func (ix *objectIndex) unindexFields(r *record) {
	if r == nil {
		return
	}
	for _, fi := range ix.fields {
		fi.drop(r)
	}
}

// add indexes r when it is live and its value is indexable.
func (fi *fieldIndex) add(r *record) {
	if r.deleted() {
		return
	}
	key, ok := indexKey(fi.def, r.Fields[fi.def.Name])
	if !ok {
		return
	}
	b := fi.byKey[key]
	if b == nil {
		b = map[string]*record{}
		fi.byKey[key] = b
	}
	b[r.id()] = r
}

// drop removes r from the index.
func (fi *fieldIndex) drop(r *record) {
	if r.deleted() {
		return
	}
	key, ok := indexKey(fi.def, r.Fields[fi.def.Name])
	if !ok {
		return
	}
	if b := fi.byKey[key]; b != nil {
		delete(b, r.id())
		if len(b) == 0 {
			delete(fi.byKey, key)
		}
	}
}

// indexKey returns the key under which value is indexed for field f, or
// false when no index holds it (nil, or a non-text value in a text field,
// which equalValues never matches anyway). Two values that equalValues
// finds equal always have the same key.
func indexKey(f *fieldDef, value any) (string, bool) {
	if value == nil {
		return "", false
	}
	if isTextType(f.Type) {
		s, ok := value.(string)
		if !ok {
			return "", false
		}
		return foldKey(s), true
	}
	return fmt.Sprint(value), true
}

// foldKey maps s to one representative of the strings strings.EqualFold
// finds equal to it: each rune becomes the smallest rune of its case-fold
// orbit.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func foldRune(r rune) rune {
	if r < 0x80 {
		// The orbit of an ASCII letter is its two cases, plus K (U+212A
		// Kelvin) for k and ſ (U+017F) for s: upper case is the least.
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// less orders records by creation (Seq), then ID for a stable order.
func less(a, b *record) bool {
	if a.Seq != b.Seq {
		return a.Seq < b.Seq
	}
	return a.id() < b.id()
}

func sortBySeq(rs []*record) {
	sort.Slice(rs, func(i, j int) bool { return less(rs[i], rs[j]) })
}
