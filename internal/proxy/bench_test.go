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
