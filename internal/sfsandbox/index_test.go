package sfsandbox

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// TestIndexMatchesScan drives random writes, deletes, rollbacks and
// lookups, and checks every indexed findBy and live against a full scan.
func TestIndexMatchesScan(t *testing.T) {
	st, err := newStore("", false)
	if err != nil {
		t.Fatal(err)
	}
	ext := &fieldDef{Name: "Ext__c", Type: "string"}
	num := &fieldDef{Name: "Num__c", Type: "double"}
	values := []any{"abc", "ABC", "k", "\u212a", "s", "\u017f", "x", nil, 1.0, 2.0}
	rng := rand.New(rand.NewSource(1))
	var ids []string
	scan := func(tx *txn, f *fieldDef, v any) []string {
		var out []string
		for _, r := range st.records {
			if r.Object == "Thing__c" && !r.deleted() && equalValues(f, r.Fields[f.Name], v) {
				out = append(out, r.id())
			}
		}
		return out
	}
	for round := 0; round < 300; round++ {
		tx, _, done := st.begin(context.Background())
		sp := tx.savepoint()
		for op := 0; op < 5; op++ {
			switch k := rng.Intn(4); {
			case k == 0 || len(ids) == 0:
				id, seq := tx.nextID("a00")
				tx.put(&record{Object: "Thing__c", Seq: seq, Fields: map[string]any{"Id": id, "IsDeleted": false,
					"Ext__c": values[rng.Intn(len(values))], "Num__c": values[rng.Intn(len(values))]}})
				ids = append(ids, id)
			case k == 1:
				if r := tx.get(ids[rng.Intn(len(ids))]); r != nil {
					n := r.clone()
					n.Fields["Ext__c"] = values[rng.Intn(len(values))]
					tx.put(n)
				}
			case k == 2:
				if r := tx.get(ids[rng.Intn(len(ids))]); r != nil {
					n := r.clone()
					n.Fields["IsDeleted"] = !r.deleted()
					tx.put(n)
				}
			default:
				for _, f := range []*fieldDef{ext, num} {
					v := values[rng.Intn(len(values))]
					got := tx.findBy("Thing__c", f, v)
					want := scan(tx, f, v)
					if len(got) != len(want) {
						t.Fatalf("round %d: findBy(%s, %v) = %d records, scan finds %d", round, f.Name, v, len(got), len(want))
					}
					for i := 1; i < len(got); i++ {
						if got[i-1].Seq >= got[i].Seq {
							t.Fatalf("round %d: findBy(%s, %v) is not in creation order", round, f.Name, v)
						}
					}
				}
			}
		}
		if rng.Intn(3) == 0 {
			tx.rollbackTo(sp)
		}
		live := tx.live("Thing__c")
		n := 0
		for _, r := range st.records {
			if r.Object == "Thing__c" && !r.deleted() {
				n++
			}
		}
		if len(live) != n {
			t.Fatalf("round %d: live = %d records, store holds %d", round, len(live), n)
		}
		for i := 1; i < len(live); i++ {
			if live[i-1].Seq >= live[i].Seq {
				t.Fatalf("round %d: live is not in creation order", round)
			}
		}
		done()
	}
}

func TestFoldKeyAgreesWithEqualFold(t *testing.T) {
	words := []string{"k", "K", "\u212a", "s", "S", "\u017f", "Straße", "STRASSE", "σ", "Σ", "ς", "\xff", "\xfe", "\ufffd", "ǅ", "ǆ", "Ǆ", "ABC-123"}
	for _, a := range words {
		for _, b := range words {
			if (foldKey(a) == foldKey(b)) != strings.EqualFold(a, b) {
				t.Errorf("foldKey(%q) == foldKey(%q) is %v, EqualFold says %v", a, b, foldKey(a) == foldKey(b), strings.EqualFold(a, b))
			}
		}
	}
}

func BenchmarkUpsertLookup(b *testing.B) {
	st, _ := newStore("", false)
	ext := &fieldDef{Name: "Ext__c", Type: "string"}
	tx, _, done := st.begin(context.Background())
	defer done()
	for i := 0; i < 100_000; i++ {
		id, seq := tx.nextID("a00")
		tx.st.set(&record{Object: "Thing__c", Seq: seq, Fields: map[string]any{"Id": id, "IsDeleted": false, "Ext__c": fmt.Sprint("ext-", i)}})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(tx.findBy("Thing__c", ext, fmt.Sprint("EXT-", i%100_000))) != 1 {
			b.Fatal("lookup missed")
		}
	}
}
