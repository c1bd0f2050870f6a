package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/router"
)

// BenchmarkLoadAndApply100kRoutes is what a start or a reload with
// 100,000 routes costs: Load, then the router's Apply (services built,
// routes compiled, listener bound on loopback). load-ms and apply-ms split
// the time; peak-RSS-MiB is the process's peak. Goal: 3 s and 500 MiB
// on 2 cores.
//
//	go test -run '^$' -bench LoadAndApply100kRoutes -benchmem -benchtime 3x ./internal/config/
func BenchmarkLoadAndApply100kRoutes(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nroutes:\n")
	for i := range 100_000 {
		fmt.Fprintf(&doc, "  r%d:\n    host: h%d.example.test\n    pathPrefix: /p%d\n    service: s%d\n", i, i, i, i%100)
	}
	doc.WriteString("services:\n")
	for i := range 100 {
		fmt.Fprintf(&doc, "  s%d:\n    servers:\n      - url: http://127.0.0.1:%d\n", i, 8000+i)
	}
	path := filepath.Join(b.TempDir(), "zoku.yaml")
	if err := os.WriteFile(path, []byte(doc.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	doc.Reset()
	var load, apply time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		c, err := config.Load(path, func(string) string { return "" })
		if err != nil {
			b.Fatal(err)
		}
		loaded := time.Now()
		r := router.New(router.Deps{})
		if err := r.Apply(context.Background(), c); err != nil {
			b.Fatal(err)
		}
		load, apply = load+loaded.Sub(start), apply+time.Since(loaded)
		b.StopTimer()
		if err := r.Shutdown(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(load.Milliseconds())/float64(b.N), "load-ms")
	b.ReportMetric(float64(apply.Milliseconds())/float64(b.N), "apply-ms")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}
