package privacy

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// keySize is the size in bytes of master keys and data keys (AES-256).
const keySize = 32

// masterKeyIDPattern limits master key IDs to a safe, printable alphabet.
var masterKeyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// MasterKeys is an ordered set of master keys. The first key is the active
// one: new data keys are wrapped under it. Older keys stay usable for
// unwrapping until Keyring.RotateMaster has rewrapped every data key.
type MasterKeys struct {
	keys []masterKey
	byID map[string]cipher.AEAD
}

type masterKey struct {
	id   string
	aead cipher.AEAD
}

// ParseMasterKeys parses a master key file: one key per line, newest first,
// as "<id> <key>" or "<id>:<key>", where the key is 32 bytes in hex (64
// characters) or standard or URL-safe base64. Blank lines and lines starting
// with # are ignored. Errors name the line but never echo its content.
func ParseMasterKeys(data []byte) (*MasterKeys, error) {
	mk := &MasterKeys{byID: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		id, encoded, ok := splitKeyLine(text)
		if !ok {
			return nil, fmt.Errorf("master key file line %d: want \"<id> <key>\"", line)
		}
		if !masterKeyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("master key file line %d: key id must be 1-64 characters of A-Z a-z 0-9 . _ -", line)
		}
		if _, dup := mk.byID[id]; dup {
			return nil, fmt.Errorf("master key file line %d: duplicate key id %q", line, id)
		}
		raw, err := ParseSecret(encoded)
		if err != nil || len(raw) != keySize {
			return nil, fmt.Errorf("master key file line %d: key must be 32 bytes in hex or base64", line)
		}
		aead, err := newGCM(raw)
		if err != nil {
			return nil, fmt.Errorf("master key file line %d: %w", line, err)
		}
		mk.keys = append(mk.keys, masterKey{id: id, aead: aead})
		mk.byID[id] = aead
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	if len(mk.keys) == 0 {
		return nil, errors.New("master key file holds no key: generate one with GenerateMasterKeyFile or set WEBCARESYNC_MASTER_KEY_FILE")
	}
	return mk, nil
}

func splitKeyLine(text string) (id, key string, ok bool) {
	if i := strings.IndexAny(text, " \t:"); i > 0 {
		return text[:i], strings.TrimSpace(text[i+1:]), strings.TrimSpace(text[i+1:]) != ""
	}
	return "", "", false
}

// LoadMasterKeys reads a master key file (see ParseMasterKeys).
func LoadMasterKeys(path string) (*MasterKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	mk, err := ParseMasterKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mk, nil
}

// GenerateMasterKeyFile writes a new master key file with one fresh random
// key at path, with mode 0600, creating the parent directory (mode 0700) if
// needed. It refuses to overwrite an existing file, because losing a master
// key loses every data key wrapped under it. It is meant for dev; production
// keys come from the operator's secret store.
func GenerateMasterKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create master key directory: %w", err)
	}
	line, err := newMasterKeyLine()
	if err != nil {
		return err
	}
	content := masterKeyFileHeader + line
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("master key file %s already exists: refusing to overwrite it", path)
		}
		return fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write master key file: %w", err)
	}
	return f.Close()
}

// LoadOrCreateMasterKeyFile loads the master key file at path, generating it
// first when it does not exist. It is meant for dev.
func LoadOrCreateMasterKeyFile(path string) (*MasterKeys, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := GenerateMasterKeyFile(path); err != nil {
			return nil, err
		}
	}
	return LoadMasterKeys(path)
}

// AddMasterKey puts a new random key at the top of the master key file at
// path, making it the active key for new data keys, and returns its ID. Run
// Keyring.RotateMaster afterwards, and remove the old key from the file only
// once that has finished.
func AddMasterKey(path string) (string, error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read master key file: %w", err)
	}
	if _, err := ParseMasterKeys(old); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	line, err := newMasterKeyLine()
	if err != nil {
		return "", err
	}
	body := string(old)
	if strings.HasPrefix(body, masterKeyFileHeader) {
		body = strings.TrimPrefix(body, masterKeyFileHeader)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(masterKeyFileHeader+line+body), 0o600); err != nil {
		return "", fmt.Errorf("write master key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("replace master key file: %w", err)
	}
	id, _, _ := splitKeyLine(strings.TrimSpace(line))
	return id, nil
}

const masterKeyFileHeader = "# webcaresync master keys, newest first: the first key wraps new data keys.\n" +
	"# Keep older keys until `RotateMaster` has rewrapped every data key.\n"

func newMasterKeyLine() (string, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate master key: %w", err)
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("generate master key id: %w", err)
	}
	id := "mk-" + time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(suffix)
	return id + " " + hex.EncodeToString(key) + "\n", nil
}

// ActiveID returns the ID of the active (newest) master key.
func (m *MasterKeys) ActiveID() string { return m.keys[0].id }

// IDs returns the master key IDs, newest first.
func (m *MasterKeys) IDs() []string {
	ids := make([]string, len(m.keys))
	for i, k := range m.keys {
		ids[i] = k.id
	}
	return ids
}

// wrap encrypts a data key under the active master key. The data key ID is
// bound as associated data, so a wrapped key cannot be moved to another row.
func (m *MasterKeys) wrap(dataKeyID string, key []byte) (wrapped []byte, masterID string, err error) {
	active := m.keys[0]
	nonce := make([]byte, active.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("generate nonce: %w", err)
	}
	return active.aead.Seal(nonce, nonce, key, wrapAAD(active.id, dataKeyID)), active.id, nil
}

// unwrap decrypts a data key wrapped under the named master key.
func (m *MasterKeys) unwrap(dataKeyID, masterID string, wrapped []byte) ([]byte, error) {
	aead, ok := m.byID[masterID]
	if !ok {
		return nil, fmt.Errorf("data key %s is wrapped under master key %q, which is not in the master key file: add it back", dataKeyID, masterID)
	}
	ns := aead.NonceSize()
	if len(wrapped) < ns+aead.Overhead() {
		return nil, fmt.Errorf("data key %s: wrapped key is truncated", dataKeyID)
	}
	key, err := aead.Open(nil, wrapped[:ns], wrapped[ns:], wrapAAD(masterID, dataKeyID))
	if err != nil {
		return nil, fmt.Errorf("data key %s: cannot unwrap under master key %q (wrong master key or corrupted row)", dataKeyID, masterID)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("data key %s: unwrapped key has the wrong size", dataKeyID)
	}
	return key, nil
}

func wrapAAD(masterID, dataKeyID string) []byte {
	return []byte("webcaresync/datakey/v1\x00" + masterID + "\x00" + dataKeyID)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("create AES cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// ParseSecret decodes a secret written as hex or as standard or URL-safe
// base64 (with or without padding). Errors never echo the input.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("secret is empty")
	}
	if len(s)%2 == 0 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("secret is neither hex nor base64")
}
