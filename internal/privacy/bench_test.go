package privacy

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"
)

// benchValue serialises to about 1 KiB of JSON.
var benchValue = message{Email: pii.Email, Phone: pii.Phone, Text: strings.Repeat("Mijn pakket is niet aangekomen. ", 30)}

func benchConverters(b *testing.B) map[string]converter.DataConverter {
	tk := newTestKeys(b)
	return map[string]converter.DataConverter{
		"default":   converter.GetDefaultDataConverter(),
		"encrypted": NewDataConverter(tk.kr).WithKeyID("conv-bench"),
	}
}

func benchEncode(dc converter.DataConverter, nsPerOp *float64) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dc.ToPayload(benchValue); err != nil {
				b.Fatal(err)
			}
		}
		*nsPerOp = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
}

func benchDecode(dc converter.DataConverter, nsPerOp *float64) func(*testing.B) {
	return func(b *testing.B) {
		p, err := dc.ToPayload(benchValue)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(p.Data)))
		b.ReportAllocs()
		var m message
		for b.Loop() {
			if err := dc.FromPayload(p, &m); err != nil {
				b.Fatal(err)
			}
		}
		*nsPerOp = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
}

// BenchmarkEncode compares encoding a 1 KiB value with the SDK's default
// converter (no encryption) and with DataConverter, and reports the ratio
// encrypted/default of ns/op as "x-default".
func BenchmarkEncode(b *testing.B) {
	benchPair(b, benchEncode)
}

// BenchmarkDecode is BenchmarkEncode for decoding.
func BenchmarkDecode(b *testing.B) {
	benchPair(b, benchDecode)
}

func benchPair(b *testing.B, bench func(converter.DataConverter, *float64) func(*testing.B)) {
	dcs := benchConverters(b)
	var ns [2]float64
	for i, name := range []string{"default", "encrypted"} {
		b.Run(name, bench(dcs[name], &ns[i]))
	}
	// Both sub-benchmarks ran in this process; report encrypted/default as
	// its own line.
	b.Run("ratio", func(b *testing.B) {
		for b.Loop() {
		}
		if ns[0] > 0 {
			b.ReportMetric(ns[1]/ns[0], "x-default")
		}
	})
}
