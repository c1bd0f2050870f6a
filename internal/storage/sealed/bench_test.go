package sealed_test

import (
	"bytes"
	"testing"

	"github.com/zoku/zoku/internal/storage/sealed"
)

// BenchmarkSealOpen seals and opens a P-256 key's PEM (about 240 bytes),
// what every certificate write and load adds with encryption on.
func BenchmarkSealOpen(b *testing.B) {
	k := testKey(b, 1)
	plain := bytes.Repeat([]byte("k"), 241)
	b.ReportAllocs()
	for b.Loop() {
		v, err := sealed.Seal(k, "certificates/a.example.key", plain)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sealed.Open(k, "certificates/a.example.key", v); err != nil {
			b.Fatal(err)
		}
	}
}
