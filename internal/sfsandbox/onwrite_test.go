package sfsandbox

import (
	"sync"
	"testing"
)

func TestOnWriteSeesCommittedRecordsOnly(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // id -> object
	e := newEnv(t, Options{OnWrite: func(object, id string, fields map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if fields["Id"] != id {
			t.Errorf("OnWrite got id %q but fields hold %v", id, fields["Id"])
		}
		seen[id] = object
	}})
	acc := e.create("Account", map[string]any{"Name": "Acme"})
	mu.Lock()
	if seen[acc] != "Account" {
		t.Fatalf("OnWrite did not report the created account: %v", seen)
	}
	mu.Unlock()

	// An allOrNone collection whose second record fails writes nothing, so
	// OnWrite must report nothing.
	before := len(seen)
	r := e.do("POST", v+"/composite/sobjects", map[string]any{"allOrNone": true, "records": []map[string]any{
		{"attributes": map[string]any{"type": "Account"}, "Name": "Good"},
		{"attributes": map[string]any{"type": "Account"}},
	}})
	e.expect(r, 200, "")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != before {
		t.Fatalf("OnWrite reported a rolled-back record: %v", seen)
	}
}
