package certmgr

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"
)

// BenchmarkOnDemandDeny refuses random names (outside the allowlist) after
// a scan of 10,000, 100,000 and 1,000,000 other names was refused: the cost
// of a refusal must not grow with the scan (the refusal cache is bounded
// and O(1)). See docs/BENCHMARKS.md.
func BenchmarkOnDemandDeny(b *testing.B) {
	for _, scanned := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("after=%d", scanned), func(b *testing.B) {
			m := New(Options{Store: nil, Cache: NewCache(), OnDemand: &OnDemand{Allow: []string{"*.allowed.test"}, DenyTTL: time.Hour}})
			for i := range scanned {
				_, _ = m.GetCertificate(&tls.ClientHelloInfo{ServerName: fmt.Sprintf("scan%d.example.test", i)})
			}
			// Every probe is a name never seen: a new refusal each time.
			names := make([]string, b.N)
			for i := range names {
				names[i] = fmt.Sprintf("probe%d.example.test", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: names[i]}); err == nil {
					b.Fatal("a name outside the allowlist got a certificate")
				}
			}
			b.StopTimer()
			if n := m.pol.Load().ondemand.denied.len(); n > 100_000 {
				b.Fatalf("refusal cache holds %d names, more than its bound", n)
			}
		})
	}
}
