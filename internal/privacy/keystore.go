package privacy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// ErrKeyNotFound is returned (wrapped) by a KeyStore when a data key does not
// exist. Store implementations must return an error satisfying
// errors.Is(err, ErrKeyNotFound) for absent keys.
var ErrKeyNotFound = errors.New("data key not found")

// DataKey is one per-subject data key as the KeyStore holds it. Wrapped is the
// key encrypted under the master key MasterKeyID; it is nil once the key was
// destroyed, and DestroyedAt is then set.
type DataKey struct {
	ID          string
	SubjectID   string
	Wrapped     []byte
	MasterKeyID string
	CreatedAt   time.Time
	DestroyedAt *time.Time
}

// KeyStore persists wrapped data keys. The webcaresync store implements it in
// production; MemoryKeyStore implements it for tests.
type KeyStore interface {
	// PutDataKey stores a new key. It is idempotent on ID and never
	// overwrites an existing key.
	PutDataKey(ctx context.Context, k DataKey) error
	// GetDataKey returns a key, or an error satisfying
	// errors.Is(err, ErrKeyNotFound). Destroyed keys are returned with
	// Wrapped nil and DestroyedAt set.
	GetDataKey(ctx context.Context, id string) (DataKey, error)
	// DataKeysBySubject returns every key of a subject, destroyed or not.
	DataKeysBySubject(ctx context.Context, subjectID string) ([]DataKey, error)
	// AssignDataKeys moves keys to a subject (identity merge).
	AssignDataKeys(ctx context.Context, keyIDs []string, subjectID string) error
	// DestroyDataKeys deletes the wrapped key material of every key of a
	// subject, keeping a tombstone, and returns how many keys it destroyed.
	DestroyDataKeys(ctx context.Context, subjectID string) (int, error)
	// DataKeysByMaster returns up to limit live (not destroyed) keys wrapped
	// under the given master key.
	DataKeysByMaster(ctx context.Context, masterKeyID string, limit int) ([]DataKey, error)
	// RewrapDataKey replaces the wrapped key material of a live key.
	RewrapDataKey(ctx context.Context, id string, wrapped []byte, masterKeyID string) error
}

// MemoryKeyStore is an in-memory KeyStore for tests. It is safe for
// concurrent use.
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[string]DataKey
}

// NewMemoryKeyStore returns an empty MemoryKeyStore.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{keys: map[string]DataKey{}}
}

func cloneKey(k DataKey) DataKey {
	k.Wrapped = slices.Clone(k.Wrapped)
	if k.DestroyedAt != nil {
		t := *k.DestroyedAt
		k.DestroyedAt = &t
	}
	return k
}

// PutDataKey implements KeyStore.
func (s *MemoryKeyStore) PutDataKey(_ context.Context, k DataKey) error {
	if k.ID == "" {
		return errors.New("data key id is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return nil
	}
	s.keys[k.ID] = cloneKey(k)
	return nil
}

// GetDataKey implements KeyStore.
func (s *MemoryKeyStore) GetDataKey(_ context.Context, id string) (DataKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return DataKey{}, fmt.Errorf("data key %s: %w", id, ErrKeyNotFound)
	}
	return cloneKey(k), nil
}

// DataKeysBySubject implements KeyStore.
func (s *MemoryKeyStore) DataKeysBySubject(_ context.Context, subjectID string) ([]DataKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DataKey
	for _, k := range s.keys {
		if k.SubjectID == subjectID {
			out = append(out, cloneKey(k))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// AssignDataKeys implements KeyStore.
func (s *MemoryKeyStore) AssignDataKeys(_ context.Context, keyIDs []string, subjectID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range keyIDs {
		k, ok := s.keys[id]
		if !ok {
			return fmt.Errorf("data key %s: %w", id, ErrKeyNotFound)
		}
		k.SubjectID = subjectID
		s.keys[id] = k
	}
	return nil
}

// DestroyDataKeys implements KeyStore.
func (s *MemoryKeyStore) DestroyDataKeys(_ context.Context, subjectID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	n := 0
	for id, k := range s.keys {
		if k.SubjectID != subjectID || k.DestroyedAt != nil {
			continue
		}
		k.Wrapped = nil
		k.DestroyedAt = &now
		s.keys[id] = k
		n++
	}
	return n, nil
}

// DataKeysByMaster implements KeyStore.
func (s *MemoryKeyStore) DataKeysByMaster(_ context.Context, masterKeyID string, limit int) ([]DataKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DataKey
	for _, k := range s.keys {
		if k.MasterKeyID == masterKeyID && k.DestroyedAt == nil {
			out = append(out, cloneKey(k))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// RewrapDataKey implements KeyStore.
func (s *MemoryKeyStore) RewrapDataKey(_ context.Context, id string, wrapped []byte, masterKeyID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return fmt.Errorf("data key %s: %w", id, ErrKeyNotFound)
	}
	if k.DestroyedAt != nil {
		return fmt.Errorf("data key %s was destroyed: %w", id, ErrErased)
	}
	k.Wrapped = slices.Clone(wrapped)
	k.MasterKeyID = masterKeyID
	s.keys[id] = k
	return nil
}

// Len returns the number of keys held, destroyed ones included.
func (s *MemoryKeyStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

var _ KeyStore = (*MemoryKeyStore)(nil)
