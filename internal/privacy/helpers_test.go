package privacy

import (
	"path/filepath"
	"testing"
	"time"
)

// testKeys builds a Keyring over a fresh memory store and a generated master
// key file.
type testKeys struct {
	store *MemoryKeyStore
	mk    *MasterKeys
	kr    *Keyring
	path  string
}

func newTestKeys(t testing.TB, opts ...KeyringOption) *testKeys {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.keys")
	if err := GenerateMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
	mk, err := LoadMasterKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	store := NewMemoryKeyStore()
	return &testKeys{store: store, mk: mk, kr: NewKeyring(store, mk, nil, opts...), path: path}
}

// fakeClock is a manually advanced clock for cache TTL tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
