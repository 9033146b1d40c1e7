package store_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/webcaresync/webcaresync/internal/store"
	"github.com/webcaresync/webcaresync/internal/store/storetest"
)

// filesContain reports whether any file in dir holds needle, byte for byte.
func filesContain(t *testing.T, dir string, needle []byte) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		if bytes.Contains(data, needle) {
			return true
		}
	}
	return false
}

func randomMarker(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 48)
	_, err := rand.Read(b)
	must(t, err)
	return b
}

// TestSQLiteErasureLeavesNoBytes checks that destroyed wrapped keys and
// purged ciphertext are gone from the SQLite database file and its WAL,
// not only from query results.
func TestSQLiteErasureLeavesNoBytes(t *testing.T) {
	b := storetest.SQLite(t)
	s := b.Open(t, store.Options{})
	wrapped, cipher, other := randomMarker(t), randomMarker(t), randomMarker(t)
	_, err := s.CreateSubject(ctx, store.Subject{ID: "s1"})
	must(t, err)
	must(t, s.PutDataKey(ctx, store.DataKey{ID: "k1", SubjectID: "s1", Wrapped: wrapped, MasterKeyID: "m"}))
	must(t, s.PutDataKey(ctx, store.DataKey{ID: "k2", SubjectID: "s2", Wrapped: other, MasterKeyID: "m"}))
	_, err = s.AddIdentifiers(ctx, []store.Identifier{{SubjectID: "s1", Kind: store.KindEmail, Hash: "h", Ciphertext: cipher}})
	must(t, err)
	if !filesContain(t, b.DataDir, wrapped) || !filesContain(t, b.DataDir, cipher) {
		t.Fatal("the markers are not in the data dir before erasure; the scan cannot work")
	}

	n, err := s.DestroyDataKeys(ctx, "s1")
	must(t, err)
	if n != 1 {
		t.Fatalf("destroyed %d keys", n)
	}
	if filesContain(t, b.DataDir, wrapped) {
		t.Fatal("the destroyed wrapped key is still in the SQLite files")
	}
	_, err = s.PurgeSubject(ctx, "s1")
	must(t, err)
	if filesContain(t, b.DataDir, cipher) {
		t.Fatal("the purged identifier ciphertext is still in the SQLite files")
	}
	if !filesContain(t, b.DataDir, other) {
		t.Fatal("another subject's key vanished from the files")
	}
}
