package privacy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var secretText = []byte("Sanne, Dorpsstraat 12, 06-12345678")

func TestKeyNamesAndGenerationIDs(t *testing.T) {
	for _, tc := range []struct {
		id   string
		name string
		gen  int
		ok   bool
	}{
		{"conv-a", "conv-a", 1, true},
		{"conv-a.gen2", "conv-a", 2, true},
		{"conv-a.gen1000", "conv-a", 1000, true},
		{"system", "system", 1, true},
		{"conv-a.gen1", "", 0, false},    // generation 1 is the name itself
		{"conv-a.gen02", "", 0, false},   // not canonical
		{"conv-a.gen1001", "", 0, false}, // past the cap
		{"conv-a.gen", "", 0, false},
		{"conv-a.genx", "", 0, false},
		{"conv.gen2.gen3", "", 0, false}, // the name itself holds ".gen"
		{".gen2", "", 0, false},
		{"has space", "", 0, false},
	} {
		name, gen, ok := ParseKeyID(tc.id)
		if ok != tc.ok || (ok && (name != tc.name || gen != tc.gen)) {
			t.Errorf("ParseKeyID(%q) = %q, %d, %v; want %q, %d, %v", tc.id, name, gen, ok, tc.name, tc.gen, tc.ok)
		}
		if ok && GenerationKeyID(name, gen) != tc.id {
			t.Errorf("GenerationKeyID(%q, %d) = %q, want %q", name, gen, GenerationKeyID(name, gen), tc.id)
		}
	}
	for _, bad := range []string{"", "conv.general", "a.gen2", strings.Repeat("a", 121), "x@y"} {
		if ValidKeyName(bad) {
			t.Errorf("ValidKeyName(%q) = true", bad)
		}
	}
	long := strings.Repeat("a", 120)
	if !ValidKeyName(long) || !ValidKeyID(GenerationKeyID(long, MaxGenerations)) {
		t.Error("the longest key name's last generation is not a valid key id")
	}
	tk := newTestKeys(t)
	if _, err := tk.kr.Seal(context.Background(), "conv-a.gen2", secretText); err == nil {
		t.Error("Seal accepted a concrete generation id as a key name")
	}
	if _, err := NewDataConverter(tk.kr).WithKeyID("conv.general").ToPayload(pii); err == nil {
		t.Error("the codec accepted a key name holding .gen")
	}
}

func TestSealOpenAcrossGenerations(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	old, err := tk.kr.Seal(ctx, "conv-a", secretText)
	if err != nil {
		t.Fatal(err)
	}
	if id, _, ok := parseSealed(old); !ok || id != "conv-a" {
		t.Fatalf("sealed header names %q (ok %v), want conv-a", id, ok)
	}
	if bytes.Contains(old, secretText) {
		t.Fatal("sealed data holds the plaintext")
	}
	if err := tk.kr.Merge(ctx, []string{"conv-a"}, "subject-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "subject-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Open(ctx, "conv-a", old); !errors.Is(err, ErrErased) {
		t.Fatalf("open under a destroyed generation: %v, want ErrErased", err)
	}
	fresh, err := tk.kr.Seal(ctx, "conv-a", secretText)
	if err != nil {
		t.Fatalf("seal after erasure: %v, want a new generation", err)
	}
	if id, _, ok := parseSealed(fresh); !ok || id != "conv-a.gen2" {
		t.Fatalf("sealed header after erasure names %q, want conv-a.gen2", id)
	}
	for name, kr := range map[string]*Keyring{"same keyring": tk.kr, "another process": NewKeyring(tk.store, tk.mk, nil)} {
		if got, err := kr.Open(ctx, "conv-a", fresh); err != nil || !bytes.Equal(got, secretText) {
			t.Errorf("%s: open the new generation: %q, %v", name, got, err)
		}
		if _, err := kr.Open(ctx, "conv-a", old); !errors.Is(err, ErrErased) {
			t.Errorf("%s: open the erased generation: %v, want ErrErased", name, err)
		}
	}
	// Data of one name cannot be opened under another, and says so.
	if _, err := tk.kr.Open(ctx, "conv-b", fresh); err == nil || !strings.Contains(err.Error(), "belongs to data key conv-a.gen2") {
		t.Fatalf("open under another key name: %v, want a clear error", err)
	}
	// The header is authenticated: relabelling to another existing key fails.
	other, err := tk.kr.Seal(ctx, "conv-bb", secretText)
	if err != nil {
		t.Fatal(err)
	}
	relabelled := append([]byte{sealedVersion, byte(len("conv-bb"))}, "conv-bb"...)
	relabelled = append(relabelled, fresh[2+len("conv-a.gen2"):]...)
	if _, err := tk.kr.Open(ctx, "conv-bb", relabelled); err == nil {
		t.Fatal("relabelled sealed data opened")
	}
	if got, err := tk.kr.Open(ctx, "conv-bb", other); err != nil || !bytes.Equal(got, secretText) {
		t.Fatalf("control: conv-bb's own data = %q, %v", got, err)
	}
}

// sealLegacy seals the way webcaresync did before key generations: nonce and
// ciphertext, no header, under the key name itself.
func sealLegacy(t testing.TB, kr *Keyring, keyID string, plaintext []byte) []byte {
	t.Helper()
	aead, err := kr.aead(context.Background(), keyID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	return aead.Seal(nonce, nonce, plaintext, legacySealAAD(keyID))
}

func TestOpenReadsHeaderlessLegacyData(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	legacy := sealLegacy(t, tk.kr, "conv-a", secretText)
	if got, err := tk.kr.Open(ctx, "conv-a", legacy); err != nil || !bytes.Equal(got, secretText) {
		t.Fatalf("open legacy data: %q, %v", got, err)
	}
	if _, err := tk.kr.Open(ctx, "conv-b", legacy); err == nil {
		t.Fatal("legacy data opened under another key name")
	}
	if _, err := tk.kr.Destroy(ctx, "conv-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Open(ctx, "conv-a", legacy); !errors.Is(err, ErrErased) {
		t.Fatalf("legacy data after erasure: %v, want ErrErased", err)
	}
}

func TestMergeAssignsTheLiveGeneration(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	// A name never used before: Merge creates its key for the subject.
	if err := tk.kr.Merge(ctx, []string{"conv-new"}, "subject-1"); err != nil {
		t.Fatal(err)
	}
	if dk, err := tk.store.GetDataKey(ctx, "conv-new"); err != nil || dk.SubjectID != "subject-1" {
		t.Fatalf("merged new name = %+v, %v", dk, err)
	}
	if _, err := tk.kr.Seal(ctx, "conv-a", secretText); err != nil {
		t.Fatal(err)
	}
	if err := tk.kr.Merge(ctx, []string{"conv-a"}, "subject-1"); err != nil {
		t.Fatal(err)
	}
	if n, err := tk.kr.Destroy(ctx, "subject-1"); err != nil || n != 2 {
		t.Fatalf("Destroy = %d, %v; want 2", n, err)
	}
	// After the erasure the name comes back: Merge gives its new generation
	// to the new subject and leaves the destroyed one alone.
	if err := tk.kr.Merge(ctx, []string{"conv-a"}, "subject-2"); err != nil {
		t.Fatal(err)
	}
	if dk, err := tk.store.GetDataKey(ctx, "conv-a.gen2"); err != nil || dk.SubjectID != "subject-2" || dk.DestroyedAt != nil {
		t.Fatalf("new generation after merge = %+v, %v", dk, err)
	}
	if dk, _ := tk.store.GetDataKey(ctx, "conv-a"); dk.SubjectID != "subject-1" || dk.DestroyedAt == nil {
		t.Fatalf("erased generation after merge = %+v", dk)
	}
	sealed, err := tk.kr.Seal(ctx, "conv-a", secretText)
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := parseSealed(sealed); id != "conv-a.gen2" {
		t.Fatalf("seal after merge used %q, want conv-a.gen2", id)
	}
	if n, err := tk.kr.Destroy(ctx, "subject-2"); err != nil || n != 1 {
		t.Fatalf("Destroy subject-2 = %d, %v; want 1", n, err)
	}
	if _, err := tk.kr.Open(ctx, "conv-a", sealed); !errors.Is(err, ErrErased) {
		t.Fatalf("second generation after its subject's erasure: %v, want ErrErased", err)
	}
	if err := tk.kr.Merge(ctx, []string{"bad.gen2"}, "subject-3"); err == nil {
		t.Fatal("Merge accepted an invalid key name")
	}
}

// rendezvousStore holds PutDataKey until n callers are inside it, so that
// concurrent creators really race.
type rendezvousStore struct {
	*MemoryKeyStore
	n       int
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (s *rendezvousStore) PutDataKey(ctx context.Context, k DataKey) error {
	s.mu.Lock()
	s.waiting++
	if s.waiting == s.n {
		close(s.release)
	}
	s.mu.Unlock()
	select {
	case <-s.release:
	case <-time.After(5 * time.Second): // a broken test must not hang
	}
	return s.MemoryKeyStore.PutDataKey(ctx, k)
}

func TestConcurrentCreatorsConvergeOnOneGeneration(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	old, err := tk.kr.Seal(ctx, "conv-a", secretText)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "conv-a"); err != nil {
		t.Fatal(err)
	}
	// Two processes, each unaware of the other, both create generation 2.
	rs := &rendezvousStore{MemoryKeyStore: tk.store, n: 2, release: make(chan struct{})}
	a, b := NewKeyring(rs, tk.mk, nil), NewKeyring(rs, tk.mk, nil)
	var (
		wg     sync.WaitGroup
		sealed [2][]byte
		errs   [2]error
	)
	for i, kr := range []*Keyring{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sealed[i], errs[i] = kr.Seal(ctx, "conv-a", secretText)
		}()
	}
	wg.Wait()
	if rs.waiting != 2 {
		t.Fatalf("%d creators reached the store, want 2 (the race did not happen)", rs.waiting)
	}
	for i := range sealed {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if id, _, _ := parseSealed(sealed[i]); id != "conv-a.gen2" {
			t.Fatalf("creator %d sealed under %q, want conv-a.gen2", i, id)
		}
		for j, kr := range []*Keyring{a, b} {
			if got, err := kr.Open(ctx, "conv-a", sealed[i]); err != nil || !bytes.Equal(got, secretText) {
				t.Fatalf("keyring %d cannot open creator %d's data: %q, %v", j, i, got, err)
			}
		}
	}
	ka, _ := a.DataKeyFor(ctx, "conv-a.gen2", "")
	kb, _ := b.DataKeyFor(ctx, "conv-a.gen2", "")
	if !bytes.Equal(ka, kb) {
		t.Fatal("the two creators use different keys for generation 2")
	}
	if tk.store.Len() != 2 {
		t.Fatalf("store holds %d keys, want 2 (the erased generation 1 and generation 2)", tk.store.Len())
	}
	if _, err := a.Open(ctx, "conv-a", old); !errors.Is(err, ErrErased) {
		t.Fatalf("generation 1 data: %v, want ErrErased", err)
	}
}

func TestCachedLiveGenerationMovesOnAfterTTL(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	tk := newTestKeys(t)
	ctx := context.Background()
	other := NewKeyring(tk.store, tk.mk, nil, WithCacheTTL(30*time.Second), withClock(clock.now))
	if _, err := other.Seal(ctx, "conv-a", secretText); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "conv-a"); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the other process still uses its cached key (the
	// documented window)...
	clock.advance(29 * time.Second)
	within, err := other.Seal(ctx, "conv-a", secretText)
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := parseSealed(within); id != "conv-a" {
		t.Fatalf("within the TTL sealed under %q, want the cached conv-a", id)
	}
	// ...and once the entry expires it reads the key again, finds it
	// destroyed and resolves the name to the next generation.
	clock.advance(2 * time.Second)
	after, err := other.Seal(ctx, "conv-a", secretText)
	if err != nil {
		t.Fatalf("seal after the TTL: %v", err)
	}
	if id, _, _ := parseSealed(after); id != "conv-a.gen2" {
		t.Fatalf("after the TTL sealed under %q, want conv-a.gen2", id)
	}
	if got, err := tk.kr.Open(ctx, "conv-a", after); err != nil || !bytes.Equal(got, secretText) {
		t.Fatalf("the destroying process opens the new generation: %q, %v", got, err)
	}
	// Later resolutions start at the remembered generation.
	if g := other.generationHint("conv-a"); g != 2 {
		t.Fatalf("generation hint = %d, want 2", g)
	}
}

func TestGenerationsAreCapped(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	gone := time.Now()
	for g := 1; g <= MaxGenerations; g++ {
		if err := tk.store.PutDataKey(ctx, DataKey{ID: GenerationKeyID("conv-a", g), SubjectID: "s", DestroyedAt: &gone}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := tk.kr.Seal(ctx, "conv-a", secretText)
	if !errors.Is(err, ErrGenerationsExhausted) || errors.Is(err, ErrErased) {
		t.Fatalf("seal with every generation erased: %v, want ErrGenerationsExhausted", err)
	}
	if tk.store.Len() != MaxGenerations {
		t.Fatalf("store holds %d keys, want %d (no key past the cap)", tk.store.Len(), MaxGenerations)
	}
}
