package privacy

import (
	"bytes"
	"context"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

// FuzzDecode feeds arbitrary payload metadata and data to both decoding paths
// (codec endpoint and data converter) and to the protobuf JSON the codec
// endpoint parses. Decoding may fail, but must never panic, and a payload
// that decodes under a live key must be what was encrypted.
func FuzzDecode(f *testing.F) {
	tk := newTestKeys(f)
	dc := NewDataConverter(tk.kr)
	ctx := context.Background()
	if _, err := tk.kr.DataKeyFor(ctx, "conv-gone", "subject-gone"); err != nil {
		f.Fatal(err)
	}
	good, err := dc.WithKeyID("conv-a").ToPayload(pii)
	if err != nil {
		f.Fatal(err)
	}
	gone, err := dc.WithKeyID("conv-gone").ToPayload(pii)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "subject-gone"); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(EncodingEncrypted), []byte("conv-a"), good.Data)
	f.Add([]byte(EncodingEncrypted), []byte("conv-gone"), gone.Data)
	f.Add([]byte(EncodingEncrypted), []byte("conv-a"), gone.Data)
	f.Add([]byte(EncodingEncrypted), []byte("conv-a"), []byte{cipherVersion})
	f.Add([]byte(EncodingEncrypted), []byte(""), []byte{})
	f.Add([]byte(EncodingEncrypted), []byte("../../etc/passwd"), good.Data)
	f.Add([]byte(converter.MetadataEncodingJSON), []byte(""), []byte(`{"a":1}`))
	f.Add([]byte("binary/null"), []byte("system"), []byte(nil))
	f.Add([]byte(EncodingEncrypted), []byte("system"), append([]byte{2}, good.Data[1:]...))

	codec := NewCodec(tk.kr)
	f.Fuzz(func(t *testing.T, encoding, keyID, data []byte) {
		p := &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: encoding, MetadataKeyID: keyID},
			Data:     data,
		}
		out, err := codec.Decode([]*commonpb.Payload{p})
		if err == nil && len(out) != 1 {
			t.Fatalf("decode returned %d payloads for 1", len(out))
		}
		var m message
		if err := dc.FromPayload(p, &m); err == nil && string(encoding) == EncodingEncrypted && m != pii {
			t.Fatalf("forged payload decoded to %+v", m)
		}
		// The codec endpoint parses request bodies as protobuf JSON.
		var ps commonpb.Payloads
		if protojson.Unmarshal(data, &ps) == nil {
			_, _ = codec.Decode(ps.Payloads)
		}
	})
}

// FuzzOpenSealed feeds arbitrary bytes to the sealed-data header parser and
// to Open, seeded with data sealed under a live generation, an erased one,
// the header-less legacy format and another key name. Opening may fail, but
// must never panic, and whatever opens must be what was sealed.
func FuzzOpenSealed(f *testing.F) {
	tk := newTestKeys(f)
	ctx := context.Background()
	plain := []byte(pii.Text)
	erased, err := tk.kr.Seal(ctx, "conv-a", plain)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := tk.kr.Destroy(ctx, "conv-a"); err != nil {
		f.Fatal(err)
	}
	live, err := tk.kr.Seal(ctx, "conv-a", plain)
	if err != nil {
		f.Fatal(err)
	}
	foreign, err := tk.kr.Seal(ctx, "conv-b", plain)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(live)
	f.Add(erased)
	f.Add(foreign)
	f.Add(sealLegacy(f, tk.kr, "conv-c", plain))
	f.Add(live[:len(live)-1])
	f.Add([]byte{sealedVersion, 200})
	f.Add([]byte{sealedVersion, 6, 'c', 'o', 'n', 'v', '-', 'a'})
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		if id, body, ok := parseSealed(data); ok {
			if !ValidKeyID(id) || len(body) < gcmNonceSize+gcmTagSize || 2+len(id)+len(body) != len(data) {
				t.Fatalf("parseSealed accepted a malformed header: id %q, body %d of %d bytes", id, len(body), len(data))
			}
		}
		for _, name := range []string{"conv-a", "conv-c"} {
			out, err := tk.kr.Open(ctx, name, data)
			if err == nil && !bytes.Equal(out, plain) {
				t.Fatalf("forged sealed data opened under %s to %q", name, out)
			}
		}
	})
}
