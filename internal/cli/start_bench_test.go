package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// BenchmarkStartWithCertificates measures `zoku run` from start to
// serving when storage already holds n certificates for n routed hosts:
// config load, router start, every certificate loaded into the SNI cache,
// and one TLS handshake for the last host. Goals: 10,000 in under 1 s,
// 100,000 in under 3 s. See docs/BENCHMARKS.md. With
// ZOKU_BENCH_HEAPPROFILE=FILE it writes the heap profile once every
// certificate is loaded (go tool pprof -sample_index=inuse_space), with
// ZOKU_BENCH_IDLEPROFILE=FILE the CPU profile of the process at rest
// after that (run it without -cpuprofile).
func BenchmarkStartWithCertificates(b *testing.B) {
	for _, n := range []int{1000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchStart(b, n) })
	}
}

func benchStart(b *testing.B, n int) {
	dir := b.TempDir()
	store := filepath.Join(dir, "store")
	writeStore(b, store, n)
	port := testenv.FreePort(b)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "admin:\n  disabled: true\nentryPoints:\n  tls:\n    address: 127.0.0.1:%d\n    tls: {}\ncertificates:\n  onHostRule: true\n  acme:\n    server: https://127.0.0.1:1/dir\n    acceptTOS: true\n    storage: %s\n    challenges:\n      tlsAlpn:\n        entryPoint: tls\nroutes:\n", port, store)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&cfg, "  r%d:\n    host: h%d.example.test\n    service: s\n", i, i)
	}
	cfg.WriteString("services:\n  s:\n    static:\n      body: ok\n")
	path := filepath.Join(dir, "zoku.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	last := fmt.Sprintf("h%d.example.test", n-1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, err := config.Load(path, os.Getenv)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-config-loaded")
		srv, err := startServer(context.Background(), Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}, path, c, slog.New(slog.DiscardHandler), engineOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-started")
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: last, InsecureSkipVerify: true})
		if err != nil {
			b.Fatalf("handshake for %s: %v", last, err)
		}
		conn.Close()
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-to-serving")
		if rss := residentMiB(); rss > 0 {
			// The whole process while serving: the benchmark's own set-up
			// (the config text, the fixture writes) is garbage by then.
			b.ReportMetric(rss, "MiB-RSS")
		}
		// The rest load behind the serving: until every certificate is.
		for srv.eng.mgr.Loading() > 0 {
			time.Sleep(100 * time.Millisecond) // a benchmark's poll, not a test's synchronisation
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-all-loaded")
		debug.FreeOSMemory()
		if rss := residentMiB(); rss > 0 {
			b.ReportMetric(rss, "MiB-RSS-all-loaded")
		}
		// Then the process at rest: what its background work (renewal
		// looks, ARI polls coming due, the storage watch, the fleet)
		// costs with every certificate loaded, as a share of one core.
		cpu0, wall0 := cpuTime(), time.Now()
		var prof *os.File
		if p := os.Getenv("ZOKU_BENCH_IDLEPROFILE"); p != "" {
			if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
				prof = f
			}
		}
		time.Sleep(10 * time.Second) // a benchmark's measuring window
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
		b.ReportMetric(100*(cpuTime()-cpu0).Seconds()/time.Since(wall0).Seconds(), "idle-CPU-%")
		if p := os.Getenv("ZOKU_BENCH_HEAPPROFILE"); p != "" {
			if f, err := os.Create(p); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		b.StopTimer()
		srv.close()
		b.StartTimer()
	}
}

// writeStore writes n certificates in lego's layout, as a long-running
// zoku would have left them (written directly, without fsync, to keep the
// set-up short).
func writeStore(b testing.TB, root string, n int) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certs := filepath.Join(root, "certificates")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("h%d.example.test", i)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(89 * 24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			b.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		meta, _ := json.Marshal(map[string]any{"id": name, "domains": []string{name}, "keyType": "EC256"})
		for ext, data := range map[string][]byte{
			".crt": append(leaf, caPEM...), ".issuer.crt": caPEM, ".json": meta,
			".key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		} {
			if err := os.WriteFile(filepath.Join(certs, name+ext), data, 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// residentMiB is this process's resident set (VmRSS) in MiB, or 0 where
// /proc is not there.
// cpuTime is the CPU time this process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func residentMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err == nil {
				return float64(kb) / 1024
			}
		}
	}
	return 0
}
