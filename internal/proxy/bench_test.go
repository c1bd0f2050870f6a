package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zoku/zoku/internal/config"
)

// BenchmarkProxy measures a keep-alive GET through the proxy to a loopback
// backend, client and proxy in the same process.
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from the backend")
	}))
	defer backend.Close()
	svc, err := NewService("bench", &config.Service{Servers: servers(backend.URL)}, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	front := httptest.NewServer(svc)
	defer front.Close()
	client := front.Client()

	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(front.URL + "/")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status = %d, want 200", resp.StatusCode)
		}
	}
}

// BenchmarkServeHTTP measures the proxy's own work for a keep-alive GET:
// ServeHTTP called directly (no client, no front server), over the fast
// path and over httputil.ReverseProxy with http.Transport.
func BenchmarkServeHTTP(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer backend.Close()
	for _, fast := range []bool{true, false} {
		name := "fast"
		if !fast {
			name = "net-http"
		}
		b.Run(name, func(b *testing.B) {
			svc, err := NewService("bench", &config.Service{Servers: servers(backend.URL)}, nil, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close()
			svc.fast = fast
			req := httptest.NewRequest(http.MethodGet, "http://bench.test/", nil)
			req.Header.Set("User-Agent", "wrk")
			w := &sink{h: http.Header{}}
			st := &Stats{}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				svc.ServeWithStats(w, req, st)
				if w.code != http.StatusOK {
					b.Fatalf("status = %d, want 200", w.code)
				}
			}
		})
	}
}

// sink is a ResponseWriter that keeps only the status.
type sink struct {
	h    http.Header
	code int
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(p []byte) (int, error) { return len(p), nil }
func (s *sink) WriteHeader(code int)        { s.code = code }
