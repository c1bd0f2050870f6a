package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/zoku/zoku/internal/config"
)

// staticCerts serves one self-signed certificate for every name.
type staticCerts struct{ crt *tls.Certificate }

func (s staticCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.crt, nil
}

// parseTB is parse for benchmarks.
func parseTB(tb testing.TB, yaml string) *config.Config {
	tb.Helper()
	c, err := config.Parse("test.yaml", []byte(yaml), func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkEntryPoint measures whole requests through a real entry point
// (listener, accept, net/http, routing, a static reply) on loopback:
// keep-alive HTTP/1.1, one connection per request, and one TLS
// connection (full handshake) per request. It is the figure that must
// not move for an entry point without TCP routes or HTTP/3.
func BenchmarkEntryPoint(b *testing.B) {
	crt, pool, _ := selfSigned(b, "bench.example.test")
	r := New(Deps{Certs: staticCerts{crt}})
	cfg := parseTB(b, `
entryPoints:
  web: {address: "127.0.0.1:0"}
  websecure: {address: "127.0.0.1:0", tls: {}}
routes:
  r: {host: bench.example.test, service: s}
services:
  s: {static: {body: hello}}
`)
	if err := r.Apply(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	plain := r.Addr("web").String()
	secure := r.Addr("websecure").String()
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example.test\r\n\r\n")
	reqClose := []byte("GET / HTTP/1.1\r\nHost: bench.example.test\r\nConnection: close\r\n\r\n")

	roundTrip := func(b *testing.B, c net.Conn, br *bufio.Reader, req []byte) {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.Run("keep-alive", func(b *testing.B) {
		c, err := net.Dial("tcp", plain)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		b.ReportAllocs()
		for b.Loop() {
			roundTrip(b, c, br, req)
		}
	})
	b.Run("conn-per-request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := net.Dial("tcp", plain)
			if err != nil {
				b.Fatal(err)
			}
			roundTrip(b, c, bufio.NewReader(c), reqClose)
			c.Close()
		}
	})
	b.Run("tls-conn-per-request", func(b *testing.B) {
		tc := &tls.Config{RootCAs: pool, ServerName: "bench.example.test", ClientSessionCache: nil, NextProtos: []string{"http/1.1"}}
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp", secure, tc)
			if err != nil {
				b.Fatal(fmt.Errorf("dial: %w", err))
			}
			roundTrip(b, c, bufio.NewReader(c), reqClose)
			c.Close()
		}
	})
}
