package privacy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Key generations.
//
// Callers name data keys by key name: a conversation ID, a DSR ID, "system".
// A name maps to a sequence of generations. Generation 1 is the data key
// whose ID is the name itself; generation N ≥ 2 is the data key
// name+".genN". The live generation of a name is the first one whose key
// was not destroyed; it is created when missing. Erasure destroys keys, so
// a name that comes back after an erasure (the same customer writing in the
// same conversation) gets a fresh key, while everything encrypted under the
// destroyed generations stays unreadable.
const (
	// MaxGenerations caps how many times one key name can be erased and used
	// again.
	MaxGenerations = 1000
	// generationSep separates a key name from its generation number in a
	// concrete key ID. Key names must not contain it.
	generationSep = ".gen"
	// maxKeyNameLen leaves room in a 128-character key ID for the longest
	// generation suffix.
	maxKeyNameLen = maxKeyIDLen - len(generationSep) - 4
)

// ErrGenerationsExhausted is wrapped by the error returned when every
// generation of a key name was destroyed.
var ErrGenerationsExhausted = errors.New("every generation of the data key name was erased")

// errInvalidKeyName is returned for a key name that ValidKeyName rejects.
var errInvalidKeyName = fmt.Errorf("invalid data key name: use 1-%d characters of A-Z a-z 0-9 . _ : - without %q", maxKeyNameLen, generationSep)

// ValidKeyName reports whether name is acceptable as a data key name: a
// valid key ID of at most 120 characters that does not contain ".gen", so
// that every generation's key ID is valid and parses back to its name.
func ValidKeyName(name string) bool {
	return len(name) <= maxKeyNameLen && ValidKeyID(name) && !strings.Contains(name, generationSep)
}

// GenerationKeyID returns the ID of the data key of generation gen of a key
// name: the name itself for generation 1 (so data written before
// generations existed stays readable), name+".genN" from generation 2 on.
func GenerationKeyID(name string, gen int) string {
	if gen <= 1 {
		return name
	}
	return name + generationSep + strconv.Itoa(gen)
}

// ParseKeyID splits a concrete data key ID into its key name and
// generation. It reports false when id is not the ID of any generation of a
// valid key name.
func ParseKeyID(id string) (name string, gen int, ok bool) {
	i := strings.LastIndex(id, generationSep)
	if i < 0 {
		return id, 1, ValidKeyName(id)
	}
	name, digits := id[:i], id[i+len(generationSep):]
	n, err := strconv.Atoi(digits)
	if err != nil || n < 2 || n > MaxGenerations || strconv.Itoa(n) != digits || !ValidKeyName(name) {
		return "", 0, false
	}
	return name, n, true
}

// live returns the concrete key ID and cache entry of the live generation
// of a key name, creating its key for subjectID when missing (an empty
// subjectID makes the key its own subject). It starts at the lowest
// generation that may still be live (generations never come back once
// destroyed, so this hint is always safe) and moves past every destroyed
// one. A key this process still has cached as live may have been destroyed
// by another process; that is seen when the cache entry expires and the
// key is read again, and the name then resolves to the next generation.
func (k *Keyring) live(ctx context.Context, name, subjectID string) (string, *cacheEntry, error) {
	if !ValidKeyName(name) {
		return "", nil, errInvalidKeyName
	}
	for gen := k.generationHint(name); gen <= MaxGenerations; gen++ {
		id := GenerationKeyID(name, gen)
		e, err := k.entry(ctx, id, subjectID, true)
		if errors.Is(err, ErrErased) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		k.noteGeneration(name, gen)
		return id, e, nil
	}
	k.noteGeneration(name, MaxGenerations)
	return "", nil, fmt.Errorf("data key name %s: all %d generations were erased; the data must be written under another key name: %w", name, MaxGenerations, ErrGenerationsExhausted)
}

// generationHint returns the lowest generation of name that may be live.
func (k *Keyring) generationHint(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if g, ok := k.gens[name]; ok {
		return g
	}
	return 1
}

// noteGeneration remembers that the generations of name below gen were
// destroyed. Only names past generation 1 are remembered; when the map is
// full an arbitrary hint is dropped, which only costs a few store reads.
func (k *Keyring) noteGeneration(name string, gen int) {
	if gen <= 1 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if gen <= k.gens[name] {
		return
	}
	if _, ok := k.gens[name]; !ok && len(k.gens) >= k.maxSize {
		for n := range k.gens {
			delete(k.gens, n)
			break
		}
	}
	k.gens[name] = gen
}
