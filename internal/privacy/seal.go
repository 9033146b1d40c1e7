package privacy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealAAD binds sealed data to its key id.
func sealAAD(keyID string) []byte { return []byte("webcaresync-seal:" + keyID) }

// Seal encrypts plaintext with AES-256-GCM under the data key keyID
// (created on first use), for data webcaresync keeps outside Temporal: the
// store's identifiers, parked events, reviews and access exports. Destroying
// the key makes it unreadable like the Temporal payloads.
func (k *Keyring) Seal(ctx context.Context, keyID string, plaintext []byte) ([]byte, error) {
	aead, err := k.aead(ctx, keyID, "", true)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, sealAAD(keyID)), nil
}

// Open decrypts data sealed by Seal. It returns an error wrapping ErrErased
// when the key was destroyed.
func (k *Keyring) Open(ctx context.Context, keyID string, sealed []byte) ([]byte, error) {
	aead, err := k.aead(ctx, keyID, "", false)
	if errors.Is(err, ErrKeyNotFound) {
		return nil, fmt.Errorf("data key %s: %w", keyID, ErrErased)
	}
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed data is too short; it is not webcaresync ciphertext")
	}
	n := aead.NonceSize()
	out, err := aead.Open(nil, sealed[:n], sealed[n:], sealAAD(keyID))
	if err != nil {
		return nil, errors.New("sealed data does not decrypt under its key; it was altered or sealed under another key")
	}
	return out, nil
}
