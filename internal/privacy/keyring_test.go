package privacy

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/webcaresync/webcaresync/internal/logging"
)

func TestDataKeyForCreatesOnce(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	k1, err := tk.kr.DataKeyFor(ctx, "conv-a", "subject-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("data key has %d bytes, want 32", len(k1))
	}
	// A second keyring (another process) reads the same key, not a new one.
	k2, err := NewKeyring(tk.store, tk.mk, nil).DataKeyFor(ctx, "conv-a", "subject-2")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second DataKeyFor created a different key")
	}
	if tk.store.Len() != 1 {
		t.Fatalf("store holds %d keys, want 1", tk.store.Len())
	}
	dk, _ := tk.store.GetDataKey(ctx, "conv-a")
	if dk.SubjectID != "subject-1" || dk.MasterKeyID != tk.mk.ActiveID() || bytes.Contains(dk.Wrapped, k1) {
		t.Fatalf("stored key = subject %q master %q (raw key visible: %v)", dk.SubjectID, dk.MasterKeyID, bytes.Contains(dk.Wrapped, k1))
	}
	// Callers get copies: scribbling on one does not change the key.
	k1[0] ^= 0xff
	k3, _ := tk.kr.DataKeyFor(ctx, "conv-a", "")
	if bytes.Equal(k1, k3) {
		t.Fatal("DataKeyFor returned the cached slice itself")
	}
}

func TestMergeThenDestroy(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	for _, id := range []string{"conv-a", "conv-b", "conv-c"} {
		if _, err := tk.kr.DataKeyFor(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := tk.kr.Merge(ctx, []string{"conv-a", "conv-b"}, "subject-1"); err != nil {
		t.Fatal(err)
	}
	n, err := tk.kr.Destroy(ctx, "subject-1")
	if err != nil || n != 2 {
		t.Fatalf("Destroy = %d, %v; want 2", n, err)
	}
	for _, id := range []string{"conv-a", "conv-b"} {
		if _, err := tk.kr.DataKeyFor(ctx, id, ""); !errors.Is(err, ErrErased) {
			t.Errorf("%s after destroy: %v, want ErrErased", id, err)
		}
	}
	if _, err := tk.kr.DataKeyFor(ctx, "conv-c", ""); err != nil {
		t.Fatalf("unrelated key after destroy: %v", err)
	}
}

func TestDestroyReachesOtherProcessesAfterCacheTTL(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	tk := newTestKeys(t)
	ctx := context.Background()
	other := NewKeyring(tk.store, tk.mk, nil, WithCacheTTL(30*time.Second), withClock(clock.now))
	if _, err := tk.kr.DataKeyFor(ctx, "conv-a", "subject-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.DataKeyFor(ctx, "conv-a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "subject-1"); err != nil {
		t.Fatal(err)
	}
	// The destroying process forgets at once.
	if _, err := tk.kr.DataKeyFor(ctx, "conv-a", ""); !errors.Is(err, ErrErased) {
		t.Fatalf("destroying keyring: %v, want ErrErased", err)
	}
	// Another process still has it cached within the TTL (documented)...
	clock.advance(29 * time.Second)
	if _, err := other.DataKeyFor(ctx, "conv-a", ""); err != nil {
		t.Fatalf("other keyring within TTL: %v", err)
	}
	// ...and sees the destruction once the entry expired.
	clock.advance(2 * time.Second)
	if _, err := other.DataKeyFor(ctx, "conv-a", ""); !errors.Is(err, ErrErased) {
		t.Fatalf("other keyring after TTL: %v, want ErrErased", err)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	tk := newTestKeys(t, WithCacheSize(2))
	ctx := context.Background()
	for _, id := range []string{"k1", "k2", "k3"} {
		if _, err := tk.kr.DataKeyFor(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	if tk.kr.cached("k1") != nil || tk.kr.cached("k3") == nil {
		t.Fatal("cache did not evict the least recently used key")
	}
}

func TestRotateMasterKeepsEverythingDecodable(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	dc := NewDataConverter(tk.kr)
	var payloads []*commonpb.Payload
	for _, id := range []string{"conv-a", "conv-b", "conv-c"} {
		p, err := dc.WithKeyID(id).ToPayload(pii)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	if _, err := tk.kr.DataKeyFor(ctx, "conv-gone", "subject-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "subject-x"); err != nil {
		t.Fatal(err)
	}
	oldID := tk.mk.ActiveID()

	newID, err := AddMasterKey(tk.path)
	if err != nil {
		t.Fatal(err)
	}
	mk2, err := LoadMasterKeys(tk.path)
	if err != nil {
		t.Fatal(err)
	}
	if mk2.ActiveID() != newID || len(mk2.IDs()) != 2 || mk2.IDs()[1] != oldID {
		t.Fatalf("key file after AddMasterKey: %v (active %s)", mk2.IDs(), mk2.ActiveID())
	}
	n, err := NewKeyring(tk.store, mk2, nil).RotateMaster(ctx)
	if err != nil || n != 3 {
		t.Fatalf("RotateMaster = %d, %v; want 3", n, err)
	}
	if left, _ := tk.store.DataKeysByMaster(ctx, oldID, 10); len(left) != 0 {
		t.Fatalf("%d keys still under the old master key", len(left))
	}
	// Drop the old master key entirely: everything still decodes.
	data, _ := os.ReadFile(tk.path)
	var kept []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, oldID) {
			kept = append(kept, l)
		}
	}
	mkNew, err := ParseMasterKeys([]byte(strings.Join(kept, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	fresh := NewDataConverter(NewKeyring(tk.store, mkNew, nil))
	for i, p := range payloads {
		var m message
		if err := fresh.FromPayload(p, &m); err != nil || m != pii {
			t.Fatalf("payload %d after rotation: %+v, %v", i, m, err)
		}
	}
	// Without rotation, losing the old master key would have made them
	// unreadable: the check above can fail.
	unrotated := newTestKeys(t)
	p, _ := NewDataConverter(unrotated.kr).WithKeyID("conv-a").ToPayload(pii)
	var m message
	if err := NewDataConverter(NewKeyring(unrotated.store, mkNew, nil)).FromPayload(p, &m); err == nil {
		t.Fatal("control: decode under a foreign master key succeeded")
	}
	// Running it again is a no-op.
	if n, err := NewKeyring(tk.store, mk2, nil).RotateMaster(ctx); err != nil || n != 0 {
		t.Fatalf("second RotateMaster = %d, %v; want 0", n, err)
	}
}

func TestMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.keys")
	if err := GenerateMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file mode = %v, want 0600", st.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	if err := GenerateMasterKeyFile(path); err == nil {
		t.Fatal("GenerateMasterKeyFile overwrote an existing file")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("existing master key file changed")
	}
	if _, err := LoadOrCreateMasterKeyFile(path); err != nil {
		t.Fatal(err)
	}
}

func TestParseMasterKeys(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	b64Key := "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="
	mk, err := ParseMasterKeys([]byte("# comment\n\nnew " + hexKey + "\nold:" + b64Key + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if mk.ActiveID() != "new" || strings.Join(mk.IDs(), ",") != "new,old" {
		t.Fatalf("ids = %v", mk.IDs())
	}
	secret := "deadbeefdeadbeefdeadbeefdeadbeef"
	for name, in := range map[string]string{
		"empty":     "# nothing\n",
		"short key": "k1 " + secret,
		"no key":    "k1",
		"bad id":    "k@1 " + hexKey,
		"duplicate": "k1 " + hexKey + "\nk1 " + hexKey,
		"not hex":   "k1 " + strings.Repeat("zz", 32) + secret,
	} {
		_, err := ParseMasterKeys([]byte(in))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error echoes key material: %v", name, err)
		}
	}
}

func TestNoKeyMaterialInLogsOrErrors(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	log, logs := logging.NewCapture()
	dc := NewDataConverter(NewKeyring(tk.store, tk.mk, log))
	p, err := dc.WithKeyID("conv-a").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	dataKey, _ := tk.kr.DataKeyFor(ctx, "conv-a", "")
	masterFile, _ := os.ReadFile(tk.path)
	secrets := []string{hex.EncodeToString(dataKey), strings.Fields(strings.Split(string(masterFile), "\n")[2])[1], pii.Email, pii.Phone, pii.Text}

	if _, err := AddMasterKey(tk.path); err != nil {
		t.Fatal(err)
	}
	mk2, _ := LoadMasterKeys(tk.path)
	if _, err := NewKeyring(tk.store, mk2, log).RotateMaster(ctx); err != nil {
		t.Fatal(err)
	}
	var errs []string
	tampered := &commonpb.Payload{Metadata: p.Metadata, Data: bytes.Clone(p.Data)}
	tampered.Data[20] ^= 1
	var m message
	if err := dc.FromPayload(tampered, &m); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := ParseMasterKeys([]byte("k " + secrets[1][:40])); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) != 2 || !logs.Contains("rewrapped data keys") {
		t.Fatalf("control: expected two errors and a rotation log line, got %q and %s", errs, logs)
	}
	if leaks := logs.Leaks(secrets...); len(leaks) > 0 {
		t.Fatalf("logs leak secrets: %d values", len(leaks))
	}
	for _, e := range errs {
		for _, s := range secrets {
			if strings.Contains(e, s) || strings.Contains(e, s[:min(len(s), 16)]) {
				t.Fatalf("error %q leaks a secret", e)
			}
		}
	}
}
