package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkTCPRoute measures connections through TCP routes on loopback:
// one round trip per connection through the plain catch-all (forwarded at
// once) and through a passthrough route by SNI (the ClientHello read
// first; the backend terminates TLS), and an HTTPS request per connection
// on an entry point that also has a passthrough route (the cost of the
// look at the ClientHello for connections that end at the HTTP routes;
// compare with BenchmarkEntryPoint/tls-conn-per-request).
func BenchmarkTCPRoute(b *testing.B) {
	crt, pool, _ := selfSigned(b, "bench.example.test", "db.example.test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer tlsLn.Close()
	serve := func(ln net.Listener, wrap func(net.Conn) net.Conn) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c = wrap(c)
				defer c.Close()
				buf := make([]byte, 64)
				n, err := c.Read(buf)
				if err == nil {
					c.Write(buf[:n])
				}
			}()
		}
	}
	go serve(ln, func(c net.Conn) net.Conn { return c })
	go serve(tlsLn, func(c net.Conn) net.Conn {
		return tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*crt}})
	})
	r := New(Deps{Certs: staticCerts{crt}})
	cfg := parseTB(b, fmt.Sprintf(`
entryPoints:
  tcp: {address: "127.0.0.1:0"}
  websecure: {address: "127.0.0.1:0", tls: {}}
routes:
  r: {host: bench.example.test, service: s, entryPoints: [websecure]}
services:
  s: {static: {body: hello}}
tcpServices:
  echo: {servers: [{address: %q}]}
  tlsecho: {servers: [{address: %q}]}
tcpRoutes:
  all: {sni: "*", service: echo, entryPoints: [tcp]}
  db: {sni: db.example.test, tls: passthrough, service: tlsecho, entryPoints: [websecure]}
`, ln.Addr(), tlsLn.Addr()))
	if err := r.Apply(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	ping := func(b *testing.B, c net.Conn) {
		if _, err := c.Write([]byte("ping")); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("catch-all-conn", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := net.Dial("tcp", r.Addr("tcp").String())
			if err != nil {
				b.Fatal(err)
			}
			ping(b, c)
			c.Close()
		}
	})
	b.Run("passthrough-tls-conn", func(b *testing.B) {
		tc := &tls.Config{RootCAs: pool, ServerName: "db.example.test"}
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp", r.Addr("websecure").String(), tc)
			if err != nil {
				b.Fatal(err)
			}
			ping(b, c)
			c.Close()
		}
	})
	b.Run("https-conn-beside-tcp-routes", func(b *testing.B) {
		tc := &tls.Config{RootCAs: pool, ServerName: "bench.example.test", NextProtos: []string{"http/1.1"}}
		req := []byte("GET / HTTP/1.1\r\nHost: bench.example.test\r\nConnection: close\r\n\r\n")
		b.ReportAllocs()
		for b.Loop() {
			c, err := tls.Dial("tcp", r.Addr("websecure").String(), tc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.Close()
		}
	})
}

// BenchmarkEdgeHandler is the router's whole request path to a static
// reply (as BenchmarkRouteRequest) with and without the edge check that
// every entry point now runs first (Alt-Svc, client certificates) on an
// entry point that has neither: its cost on a plain route.
func BenchmarkEdgeHandler(b *testing.B) {
	cfg := hostsConfig(10)
	r := New(Deps{})
	if err := r.Apply(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"without", r.handler("web")}, {"with", r.edgeHandler("web", r.handler("web"))}} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Host = "host1.example.test"
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}
