package privacy

import (
	"container/list"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrErased is wrapped by every error caused by a destroyed data key.
var ErrErased = errors.New("data erased under GDPR request; nothing to do")

// SystemKeyID names the data key used for payloads that carry no key ID.
// It belongs to the subject of the same name and is never erased by a DSR.
const SystemKeyID = "system"

// Default cache settings of a Keyring.
const (
	DefaultCacheTTL  = 30 * time.Second
	DefaultCacheSize = 10000
	rotatePageSize   = 200
)

// maxKeyIDLen is the longest data key ID.
const maxKeyIDLen = 128

// ValidKeyID reports whether id is acceptable as a data key ID: 1-128
// characters of A-Z a-z 0-9 . _ : -. Key IDs are stored in clear in payload
// metadata, sealed values and headers, so they must never carry personal
// data; this alphabet at least keeps out spaces and "@".
func ValidKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// Keyring hands out unwrapped data keys. It creates keys on first use, caches
// unwrapped keys for a short TTL, merges keys into subjects and destroys them.
// It is safe for concurrent use.
//
// Seal, Open, Merge and the codec take key names, which resolve to the live
// generation of the name (see GenerationKeyID); DataKeyFor and payload
// metadata use concrete key IDs.
//
// Destroy clears this Keyring's cache immediately. Other processes keep a
// destroyed key in their cache until its entry expires, so they see the
// destruction at most one cache TTL later (default 30 seconds), and only
// then move the name on to a new generation.
type Keyring struct {
	ks  KeyStore
	mk  *MasterKeys
	log *zap.Logger

	ttl     time.Duration
	maxSize int
	now     func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recent first
	cache map[string]*list.Element
	gens  map[string]int // key name -> lowest generation that may be live, for names past generation 1
}

type cacheEntry struct {
	keyID     string
	subjectID string
	key       []byte
	aead      cipher.AEAD
	erased    bool
	expires   time.Time
}

// KeyringOption configures a Keyring.
type KeyringOption func(*Keyring)

// WithCacheTTL sets how long unwrapped keys (and the fact that a key was
// destroyed) are cached. Zero disables the cache. Default: 30 seconds.
func WithCacheTTL(d time.Duration) KeyringOption {
	return func(k *Keyring) { k.ttl = d }
}

// WithCacheSize sets the maximum number of cached keys. Default: 10000.
func WithCacheSize(n int) KeyringOption {
	return func(k *Keyring) {
		if n > 0 {
			k.maxSize = n
		}
	}
}

// withClock replaces the clock, for tests.
func withClock(now func() time.Time) KeyringOption {
	return func(k *Keyring) { k.now = now }
}

// NewKeyring returns a Keyring over a key store and master keys. A nil logger
// logs nothing.
func NewKeyring(ks KeyStore, mk *MasterKeys, log *zap.Logger, opts ...KeyringOption) *Keyring {
	if log == nil {
		log = zap.NewNop()
	}
	k := &Keyring{
		ks: ks, mk: mk, log: log,
		ttl: DefaultCacheTTL, maxSize: DefaultCacheSize, now: time.Now,
		lru: list.New(), cache: map[string]*list.Element{}, gens: map[string]int{},
	}
	for _, o := range opts {
		o(k)
	}
	return k
}

// DataKeyFor returns the 32-byte data key with the concrete ID keyID (no
// generation is resolved), creating it for subjectID on first use. An empty
// subjectID makes the key its own subject (subject ID = key ID); the codec
// creates keys that way when it meets a new key name, and Merge later moves
// them to the linked subject. An existing key keeps its subject. It returns
// an error wrapping ErrErased when the key was destroyed.
func (k *Keyring) DataKeyFor(ctx context.Context, keyID, subjectID string) ([]byte, error) {
	e, err := k.entry(ctx, keyID, subjectID, true)
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.key), nil
}

// aead returns the cipher for keyID. With create set, a missing key is created
// for subjectID; without it, a missing key is an error wrapping
// ErrKeyNotFound.
func (k *Keyring) aead(ctx context.Context, keyID, subjectID string, create bool) (cipher.AEAD, error) {
	e, err := k.entry(ctx, keyID, subjectID, create)
	if err != nil {
		return nil, err
	}
	return e.aead, nil
}

func (k *Keyring) entry(ctx context.Context, keyID, subjectID string, create bool) (*cacheEntry, error) {
	if !ValidKeyID(keyID) {
		return nil, fmt.Errorf("invalid data key id: use 1-128 characters of A-Z a-z 0-9 . _ : -")
	}
	if e := k.cached(keyID); e != nil {
		if e.erased {
			return nil, fmt.Errorf("data key %s: %w", keyID, ErrErased)
		}
		return e, nil
	}
	dk, err := k.ks.GetDataKey(ctx, keyID)
	if errors.Is(err, ErrKeyNotFound) && create {
		dk, err = k.create(ctx, keyID, subjectID)
	}
	if err != nil {
		return nil, err
	}
	if dk.DestroyedAt != nil || dk.Wrapped == nil {
		k.store(&cacheEntry{keyID: keyID, subjectID: dk.SubjectID, erased: true})
		return nil, fmt.Errorf("data key %s: %w", keyID, ErrErased)
	}
	raw, err := k.mk.unwrap(dk.ID, dk.MasterKeyID, dk.Wrapped)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	e := &cacheEntry{keyID: keyID, subjectID: dk.SubjectID, key: raw, aead: aead}
	k.store(e)
	return e, nil
}

// create makes a new data key and stores it. When another process created
// the same key concurrently, PutDataKey keeps theirs, so the stored key is
// read back and used.
func (k *Keyring) create(ctx context.Context, keyID, subjectID string) (DataKey, error) {
	if subjectID == "" {
		subjectID = keyID
	}
	raw := make([]byte, keySize)
	if _, err := rand.Read(raw); err != nil {
		return DataKey{}, fmt.Errorf("generate data key: %w", err)
	}
	wrapped, masterID, err := k.mk.wrap(keyID, raw)
	if err != nil {
		return DataKey{}, err
	}
	dk := DataKey{ID: keyID, SubjectID: subjectID, Wrapped: wrapped, MasterKeyID: masterID, CreatedAt: k.now().UTC()}
	if err := k.ks.PutDataKey(ctx, dk); err != nil {
		return DataKey{}, fmt.Errorf("store data key %s: %w", keyID, err)
	}
	return k.ks.GetDataKey(ctx, keyID)
}

// Destroy destroys every data key of a subject (crypto-shredding) and returns
// how many keys were destroyed. This process forgets the keys at once; other
// processes forget them within one cache TTL.
func (k *Keyring) Destroy(ctx context.Context, subjectID string) (int, error) {
	keys, err := k.ks.DataKeysBySubject(ctx, subjectID)
	if err != nil {
		return 0, fmt.Errorf("list data keys of subject: %w", err)
	}
	n, err := k.ks.DestroyDataKeys(ctx, subjectID)
	// Forget the keys even when the store failed half-way: the next use
	// reads the store again and sees what really happened.
	k.mu.Lock()
	for _, dk := range keys {
		k.removeLocked(dk.ID)
	}
	for el := k.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*cacheEntry); e.subjectID == subjectID {
			k.removeLocked(e.keyID)
		}
		el = next
	}
	k.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("destroy data keys of subject: %w", err)
	}
	return n, nil
}

// Merge assigns the live generation of each key name to subjectID, creating
// it for that subject when missing, so that destroying the subject destroys
// them too. Generations destroyed earlier stay destroyed. Call it when
// identities are linked.
func (k *Keyring) Merge(ctx context.Context, names []string, subjectID string) error {
	if subjectID == "" {
		return errors.New("merge data keys: subject id is empty")
	}
	keyIDs := make([]string, 0, len(names))
	for _, name := range names {
		id, _, err := k.live(ctx, name, subjectID)
		if err != nil {
			return fmt.Errorf("merge data keys: %w", err)
		}
		keyIDs = append(keyIDs, id)
	}
	if err := k.ks.AssignDataKeys(ctx, keyIDs, subjectID); err != nil {
		return fmt.Errorf("merge data keys: %w", err)
	}
	k.mu.Lock()
	for _, id := range keyIDs {
		if el, ok := k.cache[id]; ok {
			el.Value.(*cacheEntry).subjectID = subjectID
		}
	}
	k.mu.Unlock()
	return nil
}

// RotateMaster rewraps every live data key that is wrapped under an older
// master key to the active master key, a page at a time, and returns how many
// keys it rewrapped. It is safe to run again after an interruption.
func (k *Keyring) RotateMaster(ctx context.Context) (int, error) {
	active := k.mk.ActiveID()
	total := 0
	for _, old := range k.mk.IDs()[1:] {
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			page, err := k.ks.DataKeysByMaster(ctx, old, rotatePageSize)
			if err != nil {
				return total, fmt.Errorf("list data keys under master key %q: %w", old, err)
			}
			if len(page) == 0 {
				break
			}
			done := 0
			for _, dk := range page {
				if dk.DestroyedAt != nil || dk.Wrapped == nil {
					continue
				}
				raw, err := k.mk.unwrap(dk.ID, dk.MasterKeyID, dk.Wrapped)
				if err != nil {
					return total, err
				}
				wrapped, masterID, err := k.mk.wrap(dk.ID, raw)
				if err != nil {
					return total, err
				}
				if err := k.ks.RewrapDataKey(ctx, dk.ID, wrapped, masterID); err != nil {
					return total, fmt.Errorf("rewrap data key %s: %w", dk.ID, err)
				}
				done++
			}
			total += done
			if done == 0 {
				return total, fmt.Errorf("rotate master key %q: the store keeps returning %d keys that cannot be rewrapped (destroyed keys must not be listed)", old, len(page))
			}
			k.log.Info("rewrapped data keys", zap.String("from_master_key", old), zap.String("to_master_key", active), zap.Int("keys", done), zap.Int("total", total))
		}
	}
	return total, nil
}

// cached returns a live cache entry or nil.
func (k *Keyring) cached(keyID string) *cacheEntry {
	if k.ttl <= 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.cache[keyID]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !k.now().Before(e.expires) {
		k.removeLocked(keyID)
		return nil
	}
	k.lru.MoveToFront(el)
	return e
}

func (k *Keyring) store(e *cacheEntry) {
	if k.ttl <= 0 {
		return
	}
	e.expires = k.now().Add(k.ttl)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.removeLocked(e.keyID)
	k.cache[e.keyID] = k.lru.PushFront(e)
	for k.lru.Len() > k.maxSize {
		k.removeLocked(k.lru.Back().Value.(*cacheEntry).keyID)
	}
}

func (k *Keyring) removeLocked(keyID string) {
	if el, ok := k.cache[keyID]; ok {
		k.lru.Remove(el)
		delete(k.cache, keyID)
	}
}
