package privacy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func testHasher(t *testing.T, pepper string) *Hasher {
	t.Helper()
	h, err := NewHasher([]byte(pepper))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHash(t *testing.T) {
	h := testHasher(t, "0123456789abcdef0123456789abcdef")
	a := h.Hash("email", "jan@example.nl")
	if a != h.Hash("email", "jan@example.nl") {
		t.Fatal("hash is not deterministic")
	}
	if len(a) != 64 || strings.Contains(a, "jan") {
		t.Fatalf("hash %q: want 64 hex characters", a)
	}
	if a == h.Hash("phone", "jan@example.nl") {
		t.Fatal("kinds are not domain separated")
	}
	// Length prefixes: shifting bytes between kind and value changes the hash.
	if h.Hash("ab", "c") == h.Hash("a", "bc") {
		t.Fatal("kind and value boundaries are ambiguous")
	}
	if a == testHasher(t, "another pepper, another hash!!!!").Hash("email", "jan@example.nl") {
		t.Fatal("pepper does not change the hash")
	}
	if _, err := NewHasher([]byte("short")); err == nil {
		t.Fatal("short pepper accepted")
	}
}

func TestOpaqueID(t *testing.T) {
	h := testHasher(t, "0123456789abcdef0123456789abcdef")
	id := h.OpaqueID("conv", "x:1234567890")
	if !regexp.MustCompile(`^conv-[0-9a-hjkmnp-tv-z]{26}$`).MatchString(id) {
		t.Fatalf("opaque id %q has the wrong shape", id)
	}
	if id != h.OpaqueID("conv", "x:1234567890") {
		t.Fatal("opaque id is not stable")
	}
	if id == h.OpaqueID("conv", "x:1234567891") || strings.TrimPrefix(id, "conv-") == strings.TrimPrefix(h.OpaqueID("dsr", "x:1234567890"), "dsr-") {
		t.Fatal("opaque ids collide across values or prefixes")
	}
	if strings.Contains(id, "1234567890") || !ValidKeyID(id) {
		t.Fatalf("opaque id %q leaks its value or is not a valid key id", id)
	}
	if bytes.Equal(h.Subkey("log"), h.Subkey("other")) {
		t.Fatal("subkeys are not separated by purpose")
	}
}

func TestPepperFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pepper")
	p1, err := LoadOrCreatePepperFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1) != 32 {
		t.Fatalf("pepper has %d bytes", len(p1))
	}
	p2, err := LoadOrCreatePepperFile(path)
	if err != nil || !bytes.Equal(p1, p2) {
		t.Fatalf("second load gave another pepper (%v)", err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file mode %v", st.Mode().Perm())
	}
	if err := GeneratePepperFile(path); err == nil {
		t.Fatal("GeneratePepperFile overwrote a pepper")
	}
}
