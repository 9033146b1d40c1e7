package privacy

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Sealed data format. Seal writes
//
//	version (1 byte) | key ID length (1 byte) | key ID | nonce (12 bytes) | AES-256-GCM ciphertext
//
// where the key ID is the concrete ID of the generation it was sealed
// under, and the AAD binds the ciphertext to the format version and that key
// ID. Data sealed before generations existed has no header (nonce and
// ciphertext only, under the key name itself); Open still reads it.
const (
	sealedVersion byte = 1
	gcmNonceSize       = 12
	gcmTagSize         = 16
)

// sealedAAD binds sealed data to its format version and concrete key ID.
func sealedAAD(keyID string) []byte { return []byte("webcaresync/sealed/v1\x00" + keyID) }

// legacySealAAD is the AAD of header-less sealed data.
func legacySealAAD(keyID string) []byte { return []byte("webcaresync-seal:" + keyID) }

// parseSealed splits sealed data into the concrete key ID in its header and
// the nonce and ciphertext that follow. It reports false when the data has
// no well-formed header (it may then be header-less legacy data).
func parseSealed(sealed []byte) (keyID string, body []byte, ok bool) {
	if len(sealed) < 2 || sealed[0] != sealedVersion {
		return "", nil, false
	}
	n := int(sealed[1])
	if n == 0 || n > maxKeyIDLen || len(sealed) < 2+n+gcmNonceSize+gcmTagSize {
		return "", nil, false
	}
	keyID = string(sealed[2 : 2+n])
	if !ValidKeyID(keyID) {
		return "", nil, false
	}
	return keyID, sealed[2+n:], true
}

// Seal encrypts plaintext with AES-256-GCM under the live generation of the
// data key name (created on first use), for data webcaresync keeps outside
// Temporal: the store's identifiers, parked events, reviews and access
// exports. The sealed bytes name the generation's concrete key ID, so Open
// finds the right key after the name has moved on. Destroying the key
// makes the data unreadable like the Temporal payloads.
func (k *Keyring) Seal(ctx context.Context, name string, plaintext []byte) ([]byte, error) {
	keyID, e, err := k.live(ctx, name, "")
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 2+len(keyID)+gcmNonceSize, 2+len(keyID)+gcmNonceSize+len(plaintext)+gcmTagSize)
	buf[0], buf[1] = sealedVersion, byte(len(keyID))
	copy(buf[2:], keyID)
	nonce := buf[2+len(keyID):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return e.aead.Seal(buf, nonce, plaintext, sealedAAD(keyID)), nil
}

// Open decrypts data that Seal sealed under the key name, whichever
// generation it was sealed under. It returns an error wrapping ErrErased
// when that generation's key was destroyed, and a clear error when the data
// was sealed under another key name.
func (k *Keyring) Open(ctx context.Context, name string, sealed []byte) ([]byte, error) {
	if !ValidKeyName(name) {
		return nil, errInvalidKeyName
	}
	keyID, body, ok := parseSealed(sealed)
	if ok {
		if owner, _, valid := ParseKeyID(keyID); valid && owner == name {
			return k.open(ctx, keyID, body, sealedAAD(keyID))
		}
	}
	// Header-less data from before key generations: nonce and ciphertext
	// under the name itself (generation 1). Its random nonce may happen to
	// look like a header of another key, so try it before calling the data
	// foreign.
	out, err := k.open(ctx, name, sealed, legacySealAAD(name))
	if ok && err != nil {
		return nil, fmt.Errorf("sealed data belongs to data key %s, not to key name %s; open it with the key name it was sealed under", keyID, name)
	}
	return out, err
}

// open decrypts nonce||ciphertext under the concrete key keyID.
func (k *Keyring) open(ctx context.Context, keyID string, body, aad []byte) ([]byte, error) {
	aead, err := k.aead(ctx, keyID, "", false)
	if errors.Is(err, ErrKeyNotFound) {
		return nil, fmt.Errorf("data key %s: %w", keyID, ErrErased)
	}
	if err != nil {
		return nil, err
	}
	return openSealed(aead, body, aad)
}

func openSealed(aead cipher.AEAD, body, aad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(body) < n+aead.Overhead() {
		return nil, errors.New("sealed data is too short; it is not webcaresync ciphertext")
	}
	out, err := aead.Open(nil, body[:n], body[n:], aad)
	if err != nil {
		return nil, errors.New("sealed data does not decrypt under its key; it was altered or sealed under another key")
	}
	return out, nil
}
