package config

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkLoad100kRoutes loads (reads, parses, decodes, validates) a file
// of 100,000 routes and 100 services, in YAML (8 MB) and in TOML. Goal,
// with the router's Apply: 3 s and 500 MiB on 2 cores. peak-RSS-MiB is
// the whole test process's peak, so run one sub-benchmark at a time:
//
//	go test -run '^$' -bench 'Load100kRoutes/yaml' -benchmem -benchtime 3x ./internal/config/
func BenchmarkLoad100kRoutes(b *testing.B) {
	for _, format := range []string{"yaml", "toml"} {
		b.Run(format, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "zoku."+format)
			if err := os.WriteFile(path, []byte(routesDoc(100_000, format == "toml")), 0o600); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c, err := Load(path, env())
				if err != nil {
					b.Fatal(err)
				}
				if len(c.Routes) != 100_000 {
					b.Fatalf("%d routes", len(c.Routes))
				}
			}
			b.ReportMetric(peakRSS(), "peak-RSS-MiB")
		})
	}
}

// peakRSS is this process's peak resident set size in MiB.
func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}
