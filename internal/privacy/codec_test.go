package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

type message struct {
	Email string `json:"email"`
	Phone string `json:"phone"`
	Text  string `json:"text"`
}

var pii = message{Email: "jan.jansen@example.nl", Phone: "+31612345678", Text: "Mijn bestelling is kapot, bel me terug"}

func TestCodecRoundTrip(t *testing.T) {
	tk := newTestKeys(t)
	dc := NewDataConverter(tk.kr).WithKeyID("conv-a")
	p, err := dc.ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata[converter.MetadataEncoding]); got != EncodingEncrypted {
		t.Fatalf("encoding = %q, want %q", got, EncodingEncrypted)
	}
	if got := string(p.Metadata[MetadataKeyID]); got != "conv-a" {
		t.Fatalf("key id = %q, want conv-a", got)
	}
	var back message
	if err := dc.FromPayload(p, &back); err != nil {
		t.Fatal(err)
	}
	if back != pii {
		t.Fatalf("round trip = %+v, want %+v", back, pii)
	}
	// Any converter on the same keyring decodes it: the key ID is in the
	// metadata, not the context.
	var again message
	if err := NewDataConverter(tk.kr).FromPayload(p, &again); err != nil || again != pii {
		t.Fatalf("decode without key context = %+v, %v", again, err)
	}
}

func TestCiphertextNeverContainsPlaintext(t *testing.T) {
	tk := newTestKeys(t)
	dc := NewDataConverter(tk.kr).WithKeyID("conv-a")
	p, err := dc.ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{pii.Email, pii.Phone, pii.Text, "jan.jansen", "612345678", "json/plain"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("encoded payload contains %q", s)
		}
	}
	// The plain payload does contain them, so the check can fail.
	plain, _ := converter.GetDefaultDataConverter().ToPayload(pii)
	if !bytes.Contains(plain.Data, []byte(pii.Email)) {
		t.Fatal("control: default converter output should contain the email")
	}
}

func TestSamePayloadTwoSubjectsDifferentCiphertexts(t *testing.T) {
	tk := newTestKeys(t)
	dc := NewDataConverter(tk.kr)
	a, err := dc.WithKeyID("subject-a").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dc.WithKeyID("subject-b").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Data, b.Data) {
		t.Fatal("same payload under two subjects gave the same ciphertext")
	}
	ka, _ := tk.kr.DataKeyFor(context.Background(), "subject-a", "")
	kb, _ := tk.kr.DataKeyFor(context.Background(), "subject-b", "")
	if bytes.Equal(ka, kb) {
		t.Fatal("two subjects share a data key")
	}
	// Even under one key, nonces differ.
	a2, _ := dc.WithKeyID("subject-a").ToPayload(pii)
	if bytes.Equal(a.Data, a2.Data) {
		t.Fatal("two encryptions under one key gave the same ciphertext")
	}
}

func TestWrongKeyFails(t *testing.T) {
	tk := newTestKeys(t)
	dc := NewDataConverter(tk.kr)
	p, err := dc.WithKeyID("conv-a").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.DataKeyFor(context.Background(), "conv-b", ""); err != nil {
		t.Fatal(err)
	}

	// Relabel the payload with another existing key.
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{}, Data: p.Data}
	for k, v := range p.Metadata {
		relabelled.Metadata[k] = v
	}
	relabelled.Metadata[MetadataKeyID] = []byte("conv-b")
	var out message
	if err := dc.FromPayload(relabelled, &out); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("decode under the wrong key: err = %v, want authentication failure", err)
	}

	// Another installation (other master key, other data keys) cannot read it.
	other := newTestKeys(t)
	if _, err := other.kr.DataKeyFor(context.Background(), "conv-a", ""); err != nil {
		t.Fatal(err)
	}
	if err := NewDataConverter(other.kr).FromPayload(p, &out); err == nil {
		t.Fatal("decode with another installation's key succeeded")
	}

	// A flipped ciphertext bit is detected.
	tampered := &commonpb.Payload{Metadata: p.Metadata, Data: bytes.Clone(p.Data)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	if err := dc.FromPayload(tampered, &out); err == nil {
		t.Fatal("decode of a tampered payload succeeded")
	}

	// An unknown key is a clear error, not an erased marker.
	unknown := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte("conv-zzz")}, Data: p.Data}
	got, err := NewCodec(tk.kr).Decode([]*commonpb.Payload{unknown})
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("decode with unknown key: %v, %v; want ErrKeyNotFound", got, err)
	}
}

func TestDestroyedKeyMarkerAndErrErased(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	if _, err := tk.kr.DataKeyFor(ctx, "conv-a", "subject-1"); err != nil {
		t.Fatal(err)
	}
	dc := NewDataConverter(tk.kr)
	erased, err := dc.WithKeyID("conv-a").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	live, err := dc.WithKeyID("conv-b").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	n, err := tk.kr.Destroy(ctx, "subject-1")
	if err != nil || n != 1 {
		t.Fatalf("Destroy = %d, %v; want 1, nil", n, err)
	}

	// Codec endpoint path: a marker, no error, other payloads still decode.
	out, err := NewCodec(tk.kr).Decode([]*commonpb.Payload{erased, live})
	if err != nil {
		t.Fatalf("codec decode of erased payload: %v", err)
	}
	if got := string(out[0].Metadata[converter.MetadataEncoding]); got != converter.MetadataEncodingJSON {
		t.Fatalf("marker encoding = %q", got)
	}
	var m ErasedMarker
	if err := json.Unmarshal(out[0].Data, &m); err != nil || !m.Erased || m.KeyID != "conv-a" {
		t.Fatalf("marker = %s (%v)", out[0].Data, err)
	}
	var liveMsg message
	if err := converter.GetDefaultDataConverter().FromPayload(out[1], &liveMsg); err != nil || liveMsg != pii {
		t.Fatalf("live payload next to an erased one = %+v, %v", liveMsg, err)
	}

	// Workflow path: an error wrapping ErrErased, never a zero value.
	var msg message
	err = dc.FromPayload(erased, &msg)
	if !errors.Is(err, ErrErased) || !IsErased(err) {
		t.Fatalf("workflow decode of erased payload: err = %v, want ErrErased", err)
	}
	if !strings.Contains(err.Error(), "data erased under GDPR request") {
		t.Fatalf("error %q does not say the data was erased", err)
	}
	// Even the master key cannot bring it back: the wrapped key is gone.
	dk, err := tk.store.GetDataKey(ctx, "conv-a")
	if err != nil || dk.Wrapped != nil || dk.DestroyedAt == nil {
		t.Fatalf("store still holds key material: %+v, %v", dk, err)
	}
}

// TestEncodeAfterErasureStartsANewGeneration is the returning customer: new
// data under an erased key name is encrypted under a fresh generation, while
// what was written before the erasure stays erased, for this keyring and for
// a fresh one holding the master key.
func TestEncodeAfterErasureStartsANewGeneration(t *testing.T) {
	tk := newTestKeys(t)
	ctx := context.Background()
	dc := NewDataConverter(tk.kr)
	before, err := dc.WithKeyID("conv-a").ToPayload(pii)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.kr.Merge(ctx, []string{"conv-a"}, "subject-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "subject-1"); err != nil {
		t.Fatal(err)
	}
	after, err := dc.WithKeyID("conv-a").ToPayload(pii)
	if err != nil {
		t.Fatalf("encode under an erased key name: %v, want a new generation", err)
	}
	if got := string(after.Metadata[MetadataKeyID]); got != "conv-a.gen2" {
		t.Fatalf("new payload's key id = %q, want conv-a.gen2", got)
	}
	var m message
	if err := dc.FromPayload(after, &m); err != nil || m != pii {
		t.Fatalf("new payload = %+v, %v", m, err)
	}
	// The new generation is its own subject, untouched by the erasure
	// that came before it.
	dk, err := tk.store.GetDataKey(ctx, "conv-a.gen2")
	if err != nil || dk.SubjectID != "conv-a.gen2" || dk.DestroyedAt != nil {
		t.Fatalf("new generation's key = %+v, %v", dk, err)
	}
	for name, kr := range map[string]*Keyring{"same keyring": tk.kr, "fresh keyring with the master key": NewKeyring(tk.store, tk.mk, nil)} {
		dc := NewDataConverter(kr)
		if err := dc.FromPayload(before, &m); !errors.Is(err, ErrErased) {
			t.Errorf("%s: old payload decoded: %v, want ErrErased", name, err)
		}
		out, err := NewCodec(kr).Decode([]*commonpb.Payload{before, after})
		if err != nil {
			t.Fatalf("%s: codec decode: %v", name, err)
		}
		var marker ErasedMarker
		if err := json.Unmarshal(out[0].Data, &marker); err != nil || !marker.Erased || marker.KeyID != "conv-a" {
			t.Errorf("%s: old payload decoded to %s, want the erased marker", name, out[0].Data)
		}
		if err := converter.GetDefaultDataConverter().FromPayload(out[1], &m); err != nil || m != pii {
			t.Errorf("%s: new payload through the codec = %+v, %v", name, m, err)
		}
	}
	// A second erasure moves the name on again.
	if _, err := tk.kr.Destroy(ctx, "conv-a.gen2"); err != nil {
		t.Fatal(err)
	}
	third, err := dc.WithKeyID("conv-a").ToPayload(pii)
	if err != nil || string(third.Metadata[MetadataKeyID]) != "conv-a.gen3" {
		t.Fatalf("third generation: %v, %v", third.GetMetadata(), err)
	}
	if err := dc.FromPayload(after, &m); !errors.Is(err, ErrErased) {
		t.Fatalf("second generation's payload after its erasure: %v, want ErrErased", err)
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	tk := newTestKeys(t)
	plain, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	out, err := NewCodec(tk.kr).Decode([]*commonpb.Payload{plain})
	if err != nil || out[0] != plain {
		t.Fatalf("plain payload decode = %v, %v", out, err)
	}
	// Encode does not double-encrypt.
	enc, err := NewCodec(tk.kr).Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewCodec(tk.kr).Encode(enc)
	if err != nil || again[0] != enc[0] {
		t.Fatalf("re-encode = %v, %v", again, err)
	}
}

func TestDataConverterUsesContextKey(t *testing.T) {
	tk := newTestKeys(t)
	dc := NewDataConverter(tk.kr)
	p, err := dc.WithContext(WithKeyID(context.Background(), "dsr-1")).ToPayload("x")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata[MetadataKeyID]); got != "dsr-1" {
		t.Fatalf("key id = %q, want dsr-1", got)
	}
	p, err = dc.WithContext(context.Background()).ToPayload("x")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata[MetadataKeyID]); got != SystemKeyID {
		t.Fatalf("key id without context = %q, want %q", got, SystemKeyID)
	}
	if _, err := dc.WithKeyID("has space").ToPayload("x"); err == nil {
		t.Fatal("invalid key id accepted")
	}
}
