package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/zoku/zoku/internal/proxy"
)

// BenchmarkMiddleware: the per-request cost of each middleware alone, in
// front of a service that answers "ok" (a 1 KiB text for compress).
func BenchmarkMiddleware(b *testing.B) {
	users := filepath.Join(b.TempDir(), "users")
	if err := os.WriteFile(users, []byte("demo:$2y$05$Cpxsq0StSsHkivJI020pvuJKAy2RsS9v8aFsTrW/nZT1ED9NfEOLK\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	text := make([]byte, 4096)
	for i := range text {
		text[i] = "zoku compresses text "[i%21]
	}
	for _, bc := range []struct{ name, mw string }{
		{"headers", "headers: {request: {set: {X-Env: prod}}, response: {set: {Cache-Control: no-store}}}"},
		{"securityHeaders", "securityHeaders: {}"},
		{"stripPrefix", "stripPrefix: {prefixes: [/api]}"},
		{"redirectScheme-pass", "redirectScheme: {scheme: http}"},
		{"basicAuth-remembered", "basicAuth: {usersFile: \"${F}\"}"},
		{"ipAllowList", "ipAllowList: {sourceRange: [192.0.2.0/24, 10.0.0.0/8]}"},
		{"rateLimit", "rateLimit: {average: 1000000000, burst: 1000000000}"},
		{"inFlightReq", "inFlightReq: {amount: 1000}"},
		{"compress-small", "compress: {}"},
		{"compress-gzip-4KiB", "compress: {encodings: [gzip]}"},
		{"compress-zstd-4KiB", "compress: {encodings: [zstd]}"},
		{"circuitBreaker", "circuitBreaker: {errorRatio: 0.5}"},
		{"errors-pass", "errors: {status: [\"500-599\"], service: pages}"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := parseB(b, "  m: {"+bc.mw+"}\n", func(string) string { return users })
			m, err := Build("m", c.Middlewares["m"], Env{Service: func(string) Next { return func(http.ResponseWriter, *http.Request, *proxy.Stats) {} }})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte("ok")
			if bc.name[:min(len(bc.name), 13)] == "compress-gzip" || bc.name[:min(len(bc.name), 13)] == "compress-zstd" {
				body = text
			}
			next := m.Wrap(func(w http.ResponseWriter, _ *http.Request, _ *proxy.Stats) {
				w.Header()["Content-Type"] = []string{"text/plain"}
				_, _ = w.Write(body)
			})
			req := httptest.NewRequest("GET", "/api/x", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			req.Header.Set("Accept-Encoding", "gzip, zstd")
			req.SetBasicAuth("demo", "demo")
			w := &sink{h: http.Header{}}
			var st proxy.Stats
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				req.URL.Path = "/api/x"
				next(w, req, &st)
			}
		})
	}
}

// sink is a ResponseWriter that keeps nothing.
type sink struct{ h http.Header }

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(p []byte) (int, error) { return len(p), nil }
func (s *sink) WriteHeader(int)             {}
func (s *sink) Flush()                      {}

var _ io.Writer = (*sink)(nil)
