package router

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zoku/zoku/internal/config"
)

// BenchmarkRouteRequestMiddlewares: the router's whole request path to a
// static service through no middleware, securityHeaders alone, and a
// typical chain (securityHeaders, a rate limit per client IP, compress,
// request headers).
func BenchmarkRouteRequestMiddlewares(b *testing.B) {
	for _, bc := range []struct{ name, mws string }{
		{"none", ""},
		{"securityHeaders", "[sec]"},
		{"typical", "[sec, limit, cmp, hdr]"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			route := "{host: a.test, service: s}"
			if bc.mws != "" {
				route = "{host: a.test, service: s, middlewares: " + bc.mws + "}"
			}
			cfg, err := parseB(`
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  r: ` + route + `
services:
  s: {static: {body: ok, contentType: text/plain}}
middlewares:
  sec: {securityHeaders: {}}
  limit: {rateLimit: {average: 1000000000, burst: 1000000000}}
  cmp: {compress: {}}
  hdr: {headers: {request: {set: {X-Env: prod}}}}
`)
			if err != nil {
				b.Fatal(err)
			}
			r := New(Deps{})
			if err := r.Apply(context.Background(), cfg); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
			h := r.handler("web")
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Host = "a.test"
			req.Header.Set("Accept-Encoding", "gzip, zstd")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

func parseB(src string) (*config.Config, error) {
	return config.Parse("bench.yaml", []byte(src), func(string) string { return "" })
}
