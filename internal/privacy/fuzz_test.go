package privacy

import (
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
