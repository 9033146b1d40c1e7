package privacy

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Payload metadata written by the codec.
const (
	// EncodingEncrypted is the "encoding" metadata of an encrypted payload.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID is the payload metadata key holding the concrete ID of
	// the data key (generation) a payload was encrypted under.
	MetadataKeyID = KeyIDHeader
)

// cipherVersion is the first byte of every ciphertext, so the format can
// change later without guessing.
const cipherVersion byte = 1

// DefaultCodecTimeout bounds the key store calls of one Encode or Decode.
const DefaultCodecTimeout = 10 * time.Second

// maxPayloadSize rejects absurd payloads before decrypting them. Temporal
// itself refuses payloads larger than a few MiB.
const maxPayloadSize = 64 << 20

// ErasedMarker is the JSON body Codec.Decode puts in place of a payload whose
// data key was destroyed.
type ErasedMarker struct {
	Erased bool   `json:"erased"`
	KeyID  string `json:"key_id"`
}

// Codec is a converter.PayloadCodec that encrypts each payload with
// AES-256-GCM under a per-subject data key. Encode uses the live generation
// of the key name set by WithKeyID (or of the system key) and writes that
// generation's concrete key ID into the payload metadata; Decode finds the
// key by that concrete ID, so a payload written under a generation that
// was destroyed stays erased after its name moved on to a new generation.
//
// Codec.Decode is the operator path (codec HTTP endpoint for the Temporal UI
// and CLI): a payload whose key was destroyed decodes to an ErasedMarker
// instead of failing. Workflows and activities decode through DataConverter,
// which returns an error wrapping ErrErased instead.
type Codec struct {
	kr      *Keyring
	keyID   string
	timeout time.Duration
}

// NewCodec returns a Codec over a Keyring, encoding under the system key.
func NewCodec(kr *Keyring) *Codec {
	return &Codec{kr: kr, keyID: SystemKeyID, timeout: DefaultCodecTimeout}
}

// WithKeyID returns a copy of the codec that encodes under the data key name
// id (a conversation ID, a DSR ID; see ValidKeyName). An empty id selects the
// system key.
func (c *Codec) WithKeyID(id string) *Codec {
	if id == "" {
		id = SystemKeyID
	}
	cp := *c
	cp.keyID = id
	return &cp
}

// KeyID returns the key name the codec encodes under.
func (c *Codec) KeyID() string { return c.keyID }

// Encode implements converter.PayloadCodec. Payloads that are already
// encrypted are passed through unchanged.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var (
		aead  cipher.AEAD
		keyID string
	)
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if isEncrypted(p) {
			out[i] = p
			continue
		}
		if aead == nil {
			id, e, err := c.kr.live(ctx, c.keyID, "")
			if err != nil {
				return nil, fmt.Errorf("encrypt payload: %w", err)
			}
			aead, keyID = e.aead, id
		}
		enc, err := seal(aead, keyID, p)
		if err != nil {
			return nil, err
		}
		out[i] = enc
	}
	return out, nil
}

// Decode implements converter.PayloadCodec. A payload whose data key was
// destroyed decodes to a json/plain ErasedMarker. Payloads that are not
// encrypted are passed through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return c.decode(payloads, true)
}

func (c *Codec) decode(payloads []*commonpb.Payload, markErased bool) ([]*commonpb.Payload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !isEncrypted(p) {
			out[i] = p
			continue
		}
		keyID := string(p.GetMetadata()[MetadataKeyID])
		if !ValidKeyID(keyID) {
			return nil, errors.New("decrypt payload: encrypted payload has no valid key id in its metadata")
		}
		aead, err := c.kr.aead(ctx, keyID, "", false)
		if errors.Is(err, ErrErased) && markErased {
			out[i] = erasedMarker(keyID)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("decrypt payload: %w", err)
		}
		dec, err := open(aead, keyID, p.GetData())
		if err != nil {
			return nil, err
		}
		out[i] = dec
	}
	return out, nil
}

func isEncrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == EncodingEncrypted
}

func payloadAAD(keyID string) []byte {
	return []byte("webcaresync/payload/v1\x00" + keyID)
}

// seal encrypts the whole payload (metadata and data) so nothing but the key
// ID stays readable.
func seal(aead cipher.AEAD, keyID string, p *commonpb.Payload) (*commonpb.Payload, error) {
	plain, err := proto.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encrypt payload: marshal: %w", err)
	}
	ns := aead.NonceSize()
	buf := make([]byte, 1+ns, 1+ns+len(plain)+aead.Overhead())
	buf[0] = cipherVersion
	if _, err := rand.Read(buf[1:]); err != nil {
		return nil, fmt.Errorf("encrypt payload: nonce: %w", err)
	}
	buf = aead.Seal(buf, buf[1:1+ns], plain, payloadAAD(keyID))
	return &commonpb.Payload{
		Metadata: map[string][]byte{
			converter.MetadataEncoding: []byte(EncodingEncrypted),
			MetadataKeyID:              []byte(keyID),
		},
		Data: buf,
	}, nil
}

func open(aead cipher.AEAD, keyID string, data []byte) (*commonpb.Payload, error) {
	ns := aead.NonceSize()
	if len(data) < 1+ns+aead.Overhead() || len(data) > maxPayloadSize {
		return nil, errors.New("decrypt payload: ciphertext has an invalid length")
	}
	if data[0] != cipherVersion {
		return nil, fmt.Errorf("decrypt payload: unknown ciphertext version %d", data[0])
	}
	plain, err := aead.Open(nil, data[1:1+ns], data[1+ns:], payloadAAD(keyID))
	if err != nil {
		return nil, fmt.Errorf("decrypt payload under key %s: authentication failed (wrong key or tampered payload)", keyID)
	}
	var p commonpb.Payload
	if err := proto.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("decrypt payload: decrypted bytes are not a payload: %w", err)
	}
	return &p, nil
}

func erasedMarker(keyID string) *commonpb.Payload {
	data, _ := json.Marshal(ErasedMarker{Erased: true, KeyID: keyID})
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data:     data,
	}
}

// strictCodec is the workflow-side view of a Codec: destroyed keys are errors
// wrapping ErrErased, never markers, so a workflow cannot mistake erased data
// for empty data.
type strictCodec struct{ c *Codec }

// Encode implements converter.PayloadCodec.
func (s strictCodec) Encode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return s.c.Encode(p) }

// Decode implements converter.PayloadCodec.
func (s strictCodec) Decode(p []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return s.c.decode(p, false)
}

var (
	_ converter.PayloadCodec = (*Codec)(nil)
	_ converter.PayloadCodec = strictCodec{}
)
