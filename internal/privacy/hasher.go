package privacy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// minPepperSize is the smallest pepper a Hasher accepts.
const minPepperSize = 16

// opaqueEncoding is Crockford's lowercase base32 alphabet without padding:
// no i, l, o or u, so IDs are easy to read aloud and never spell words.
var opaqueEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// Hasher computes keyed hashes (HMAC-SHA256 with a secret pepper) of personal
// identifiers, so the store can look them up and workflows can be named
// without ever keeping the identifier itself. Without the pepper the hashes
// cannot be reversed by trying every phone number. It is safe for concurrent
// use.
type Hasher struct {
	pepper []byte
}

// NewHasher returns a Hasher with the given pepper (at least 16 bytes; 32
// recommended).
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) < minPepperSize {
		return nil, fmt.Errorf("hash pepper must be at least %d bytes: generate one with GeneratePepperFile", minPepperSize)
	}
	return &Hasher{pepper: append([]byte(nil), pepper...)}, nil
}

// mac returns HMAC-SHA256 over length-prefixed parts, so that no two
// different (domain, kind, value) tuples share an input.
func (h *Hasher) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, h.pepper)
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// Hash returns the hex HMAC-SHA256 of value, separated by kind (for example
// "email" or "phone"), so equal strings of different kinds hash differently.
// The caller normalises value first (lowercase email, E.164 phone).
func (h *Hasher) Hash(kind, value string) string {
	return hex.EncodeToString(h.mac("webcaresync/hash/v1", kind, value))
}

// OpaqueID returns a stable ID such as "conv-7b0m3q…" (prefix, a dash and 26
// base32 characters, 128 bits) derived from value. It is safe for workflow
// IDs, search attributes and logs: it reveals nothing about value to anyone
// without the pepper.
func (h *Hasher) OpaqueID(prefix, value string) string {
	sum := h.mac("webcaresync/opaque/v1", prefix, value)
	return prefix + "-" + opaqueEncoding.EncodeToString(sum[:16])
}

// Subkey derives an independent 32-byte key for another purpose (for example
// the log fingerprint key) from the pepper.
func (h *Hasher) Subkey(purpose string) []byte {
	return h.mac("webcaresync/subkey/v1", purpose)
}

// LoadPepper reads a pepper file holding one secret in hex or base64.
func LoadPepper(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pepper file: %w", err)
	}
	var line string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			line = l
			break
		}
	}
	p, err := ParseSecret(line)
	if err != nil {
		return nil, fmt.Errorf("pepper file %s: %w", path, err)
	}
	if len(p) < minPepperSize {
		return nil, fmt.Errorf("pepper file %s: pepper must be at least %d bytes", path, minPepperSize)
	}
	return p, nil
}

// GeneratePepperFile writes a new random 32-byte pepper (hex) to path with
// mode 0600. It refuses to overwrite an existing file: a new pepper changes
// every hash and ID derived from it.
func GeneratePepperFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create pepper directory: %w", err)
	}
	p := make([]byte, keySize)
	if _, err := rand.Read(p); err != nil {
		return fmt.Errorf("generate pepper: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pepper file %s already exists: refusing to overwrite it", path)
		}
		return fmt.Errorf("create pepper file: %w", err)
	}
	if _, err := f.WriteString("# webcaresync hash pepper: changing it changes every keyed hash and opaque ID\n" + hex.EncodeToString(p) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write pepper file: %w", err)
	}
	return f.Close()
}

// LoadOrCreatePepperFile loads the pepper at path, generating it first when
// the file does not exist. It is meant for dev.
func LoadOrCreatePepperFile(path string) ([]byte, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := GeneratePepperFile(path); err != nil {
			return nil, err
		}
	}
	return LoadPepper(path)
}
