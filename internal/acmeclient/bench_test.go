package acmeclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// BenchmarkIssue200 issues 200 certificates (HTTP-01, real validation by
// in-process Pebble against a loopback solver) through one account, one by
// one and with bounded concurrency. Run with -benchtime=1x; the figure that
// matters is certs/s. See docs/BENCHMARKS.md.
func BenchmarkIssue200(b *testing.B) {
	acmeclient.SetLegoLogger(slog.New(slog.DiscardHandler))
	for _, workers := range []int{1, 50, 200} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				issue(b, 200, workers)
			}
		})
	}
}

func issue(b *testing.B, n, workers int) {
	b.StopTimer()
	sol := http01.NewSolver()
	srv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ca := testenv.StartCA(b, embedca.Options{HTTPPort: srv.Port()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	c, err := acmeclient.New(ctx, acmeclient.Config{
		Server: ca.DirectoryURL(), HTTPClient: ca.HTTPClient(), Solvers: acmeclient.Solvers{HTTP01: sol},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, &acmeclient.Account{Email: "bench@example.test", Key: key})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Register(ctx, acmeclient.RegisterOptions{AcceptTOS: true}); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				_, err := c.Obtain(ctx, acmeclient.ObtainRequest{Domains: []string{fmt.Sprintf("host%d.bench.example.test", j)}})
				errs <- err
			}
		}()
	}
	for j := 0; j < n; j++ {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "certs/s")
}
