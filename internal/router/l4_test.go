package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/zoku/zoku/internal/proxy"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// tcpServer is a loopback TCP server for tests: each connection runs
// serve on its own goroutine; Close stops it and waits.
type tcpServer struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startTCP(t *testing.T, serve func(net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *tcpServer) Addr() string { return s.ln.Addr().String() }
func (s *tcpServer) Close()       { _ = s.ln.Close(); s.wg.Wait() }

// echo answers each line with prefix and the line.
func echo(prefix string) func(net.Conn) {
	return func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, prefix+line); err != nil {
				return
			}
		}
	}
}

// tlsEcho is echo behind a TLS handshake with crt (a passthrough server).
func tlsEcho(prefix string, crt *tls.Certificate) func(net.Conn) {
	return func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*crt}})
		defer tc.Close()
		echo(prefix)(tc)
	}
}

// proxyEcho reads the PROXY header the router sends and answers each
// line with the source address it names.
func proxyEcho(c net.Conn) {
	pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE))
	hdr := pc.ProxyHeader()
	if hdr == nil {
		return
	}
	echo(fmt.Sprintf("v%d %s ", hdr.Version, hdr.SourceAddr))(pc)
}

// say sends line on c and returns the answer line.
func say(t *testing.T, c net.Conn, br *bufio.Reader, line string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read answer to %q: %v", line, err)
	}
	return strings.TrimSuffix(got, "\n")
}

// startL4 applies yaml (with %s replaced by args) on a router with deps.
func startL4(t *testing.T, deps Deps, yaml string, args ...any) *Router {
	t.Helper()
	r := New(deps)
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(yaml, args...))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r
}

// dialTLS connects to addr with sni, trusting pool.
func dialTLS(t *testing.T, addr, sni string, pool any, extra ...func(*tls.Config)) (*tls.Conn, error) {
	t.Helper()
	tc := &tls.Config{ServerName: sni}
	switch p := pool.(type) {
	case *testCA:
		tc.RootCAs = p.pool
	}
	for _, f := range extra {
		f(tc)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, tc)
}

// TestTCPRoutesBySNI: on one TLS entry point, a passthrough route (the
// server's own certificate reaches the client), a terminate route (zoku's
// certificate, plaintext to the server), a wildcard route, and HTTP routes
// for every other name.
func TestTCPRoutesBySNI(t *testing.T) {
	zokuCA, backCA := newTestCA(t, "zoku CA"), newTestCA(t, "backend CA")
	pass := startTCP(t, tlsEcho("pass ", backCA.issue(false, "db.example.test")))
	wild := startTCP(t, tlsEcho("wild ", backCA.issue(false, "x.wild.example.test")))
	plain := startTCP(t, echo("plain "))
	r := startL4(t, Deps{Certs: staticCerts{zokuCA.issue(false, "term.example.test", "web.example.test")}}, `
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}}
routes:
  web: {host: web.example.test, service: s}
services:
  s: {static: {body: "http route"}}
tcpServices:
  pass: {servers: [{address: %q}]}
  wild: {servers: [{address: %q}]}
  plain: {servers: [{address: %q}]}
tcpRoutes:
  pass: {sni: db.example.test, tls: passthrough, service: pass, entryPoints: [websecure]}
  wild: {sni: "*.wild.example.test", tls: passthrough, service: wild, entryPoints: [websecure]}
  term: {sni: term.example.test, tls: terminate, service: plain, entryPoints: [websecure]}
`, pass.Addr(), wild.Addr(), plain.Addr())
	addr := r.Addr("websecure").String()

	for _, tc := range []struct {
		sni  string
		ca   *testCA
		want string
	}{
		{"db.example.test", backCA, "pass hi"},
		{"x.wild.example.test", backCA, "wild hi"},
		{"term.example.test", zokuCA, "plain hi"},
	} {
		t.Run(tc.sni, func(t *testing.T) {
			c, err := dialTLS(t, addr, tc.sni, tc.ca)
			if err != nil {
				t.Fatalf("handshake (the certificate must come from %s): %v", tc.ca.crt.Subject.CommonName, err)
			}
			defer c.Close()
			if got := say(t, c, bufio.NewReader(c), "hi"); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("http fallback", func(t *testing.T) {
		c, err := dialTLS(t, addr, "web.example.test", zokuCA, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example.test\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		if !strings.HasSuffix(string(b), "http route") {
			t.Fatalf("got %q, want the HTTP route's reply", b)
		}
	})
	t.Run("two labels under the wildcard", func(t *testing.T) {
		// *.wild covers one label: a.b.wild goes to the HTTP server,
		// which presents zoku's certificate (not valid for that name).
		_, err := dialTLS(t, addr, "a.b.wild.example.test", backCA)
		if err == nil {
			t.Fatal("handshake with the wildcard server for a name two labels down; want the HTTP server's")
		}
	})
}

// TestTCPCatchAll: the plain catch-all forwards every connection at once,
// so a server that speaks first (SMTP, MySQL) is heard before the client
// sends anything; the TLS catch-all takes TLS connections with any name.
func TestTCPCatchAll(t *testing.T) {
	banner := startTCP(t, func(c net.Conn) {
		io.WriteString(c, "220 banner\n")
		echo("smtp ")(c)
	})
	backCA := newTestCA(t, "backend CA")
	anyTLS := startTCP(t, tlsEcho("any ", backCA.issue(false, "whatever.example.test")))
	r := startL4(t, Deps{}, `
entryPoints:
  smtp: {address: "127.0.0.1:0"}
  tls: {address: "127.0.0.1:0"}
tcpServices:
  smtp: {servers: [{address: %q}]}
  anytls: {servers: [{address: %q}]}
tcpRoutes:
  smtp: {sni: "*", service: smtp, entryPoints: [smtp]}
  anytls: {sni: "*", tls: passthrough, service: anytls, entryPoints: [tls]}
`, banner.Addr(), anyTLS.Addr())
	c, err := net.DialTimeout("tcp", r.Addr("smtp").String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if got, err := br.ReadString('\n'); err != nil || got != "220 banner\n" {
		t.Fatalf("banner before the client spoke: %q, %v", got, err)
	}
	if got := say(t, c, br, "helo"); got != "smtp helo" {
		t.Fatalf("got %q", got)
	}

	tc, err := dialTLS(t, r.Addr("tls").String(), "whatever.example.test", backCA)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if got := say(t, tc, bufio.NewReader(tc), "x"); got != "any x" {
		t.Fatalf("got %q", got)
	}
}

// TestProxyProtocol: a trusted load balancer's PROXY v1 header names the
// client; the router sends a v2 header with that client to the TCP
// server, and the HTTP route's backend sees it in X-Forwarded-For. A
// trusted peer without a header is refused.
func TestProxyProtocol(t *testing.T) {
	pp := startTCP(t, proxyEcho)
	r := startL4(t, Deps{}, `
entryPoints:
  lb:
    address: "127.0.0.1:0"
    proxyProtocol: {trustedIPs: [127.0.0.0/8], headerTimeout: 2s}
tcpServices:
  pp: {servers: [{address: %q}], proxyProtocol: {version: 2}}
tcpRoutes:
  all: {sni: "*", service: pp, entryPoints: [lb]}
`, pp.Addr())
	addr := r.Addr("lb").String()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "PROXY TCP4 203.0.113.7 127.0.0.1 41000 443\r\n")
	if got := say(t, c, bufio.NewReader(c), "hi"); got != "v2 203.0.113.7:41000 hi" {
		t.Fatalf("server saw %q, want the client of the PROXY header in a v2 header", got)
	}

	t.Run("v1 out", func(t *testing.T) {
		r2 := startL4(t, Deps{}, `
entryPoints:
  tcp: {address: "127.0.0.1:0"}
tcpServices:
  pp: {servers: [{address: %q}], proxyProtocol: {version: 1}}
tcpRoutes:
  all: {sni: "*", service: pp, entryPoints: [tcp]}
`, pp.Addr())
		c, err := net.DialTimeout("tcp", r2.Addr("tcp").String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := say(t, c, bufio.NewReader(c), "hi")
		if want := "v1 " + c.LocalAddr().String() + " hi"; got != want {
			t.Fatalf("server saw %q, want %q (the real client, no header came in)", got, want)
		}
	})

	t.Run("trusted peer without a header", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "hi\n")
		if b, err := io.ReadAll(c); len(b) != 0 || err != nil {
			t.Fatalf("got %q, %v; want the connection closed unanswered", b, err)
		}
	})
}

// TestTCPBalanceAndHealth: connections alternate between two servers;
// when one stops, the health check takes it out and every connection
// goes to the other; a server that refuses is skipped for the next even
// before a check.
func TestTCPBalanceAndHealth(t *testing.T) {
	a := startTCP(t, echo("a "))
	b := startTCP(t, echo("b "))
	r := startL4(t, Deps{}, `
entryPoints:
  tcp: {address: "127.0.0.1:0"}
tcpServices:
  pool:
    servers: [{address: %q}, {address: %q}]
    healthCheck: {interval: 1h, timeout: 2s}
tcpRoutes:
  all: {sni: "*", service: pool, entryPoints: [tcp]}
`, a.Addr(), b.Addr())
	addr := r.Addr("tcp").String()
	ask := func() string {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "x\n")
		got, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSuffix(got, "\n")
	}
	seen := map[string]int{}
	for range 4 {
		seen[ask()]++
	}
	if seen["a x"] != 2 || seen["b x"] != 2 {
		t.Fatalf("round robin over 4 connections: %v, want 2 each", seen)
	}
	b.Close() // refuses from now on
	// Before any check: the refused attempt moves on to a.
	for range 3 {
		if got := ask(); got != "a x" {
			t.Fatalf("with b down got %q, want a", got)
		}
	}
	svc := r.tab.Load().l4.services["pool"]
	svc.CheckNow(context.Background())
	var up []bool
	for _, s := range svc.Servers() {
		up = append(up, s.Up)
	}
	if len(up) != 2 || !up[0] || up[1] {
		t.Fatalf("after a check: up = %v, want [true false]", up)
	}
	if got := ask(); got != "a x" {
		t.Fatalf("got %q, want a", got)
	}
}

// TestTCPReloadKeepsStreams: a reload that sends new connections to
// another server leaves the open stream on the old one, and a shutdown
// waits for it (until its timeout) before closing it.
func TestTCPReloadKeepsStreams(t *testing.T) {
	old := startTCP(t, echo("old "))
	next := startTCP(t, echo("new "))
	const conf = `
entryPoints:
  tcp: {address: %q}
tcpServices:
  s: {servers: [{address: %q}]}
tcpRoutes:
  all: {sni: "*", service: s, entryPoints: [tcp]}
`
	r := New(Deps{})
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(conf, "127.0.0.1:0", old.Addr()))); err != nil {
		t.Fatal(err)
	}
	addr := r.Addr("tcp").String()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if got := say(t, c, br, "1"); got != "old 1" {
		t.Fatalf("got %q", got)
	}
	// The same address as written keeps the listener.
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(conf, "127.0.0.1:0", next.Addr()))); err != nil {
		t.Fatal(err)
	}
	if got := say(t, c, br, "2"); got != "old 2" {
		t.Fatalf("the open stream after the reload: %q, want it still on the old server", got)
	}
	c2, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := say(t, c2, bufio.NewReader(c2), "3"); got != "new 3" {
		t.Fatalf("a new connection after the reload: %q, want the new server", got)
	}
	// Shutdown waits for the stream until ctx ends, then closes it.
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan struct{})
	go func() { _ = r.Shutdown(ctx); close(shut) }()
	if got := say(t, c, br, "4"); got != "old 4" {
		t.Fatalf("during shutdown the stream answered %q", got)
	}
	cancel()
	<-shut
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("the stream is still open after shutdown")
	}
}

// TestALPNChallengeOnTCPEntryPoint: a TLS-ALPN-01 validation for a name
// that zoku is answering gets zoku's challenge certificate even though a
// passthrough route claims the name; one zoku is not answering goes to
// the route's server.
func TestALPNChallengeOnTCPEntryPoint(t *testing.T) {
	zokuCA, backCA := newTestCA(t, "zoku CA"), newTestCA(t, "backend CA")
	challengeCrt := zokuCA.issue(false, "mine.example.test")
	backend := startTCP(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*backCA.issue(false, "theirs.example.test", "mine.example.test")},
			NextProtos: []string{"acme-tls/1"}})
		_ = tc.Handshake()
		tc.Close()
	})
	isALPN := func(h *tls.ClientHelloInfo) bool {
		return len(h.SupportedProtos) == 1 && h.SupportedProtos[0] == "acme-tls/1"
	}
	r := startL4(t, Deps{
		Certs:           staticCerts{zokuCA.issue(false, "web.example.test")},
		IsALPNChallenge: isALPN,
		ALPN: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if h.ServerName == "mine.example.test" {
				return challengeCrt, nil
			}
			return nil, fmt.Errorf("no challenge for %s", h.ServerName)
		},
	}, `
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}}
tcpServices:
  back: {servers: [{address: %q}]}
tcpRoutes:
  mine: {sni: mine.example.test, tls: passthrough, service: back, entryPoints: [websecure]}
  theirs: {sni: theirs.example.test, tls: passthrough, service: back, entryPoints: [websecure]}
`, backend.Addr())
	for _, tc := range []struct {
		sni string
		ca  *testCA
	}{{"mine.example.test", zokuCA}, {"theirs.example.test", backCA}} {
		c, err := dialTLS(t, r.Addr("websecure").String(), tc.sni, tc.ca, func(c *tls.Config) { c.NextProtos = []string{"acme-tls/1"} })
		if err != nil {
			t.Fatalf("%s: challenge handshake (want the certificate from %s): %v", tc.sni, tc.ca.crt.Subject.CommonName, err)
		}
		c.Close()
	}
}

// TestProxyProtocolHTTP: on an entry point that accepts the PROXY
// protocol, an HTTP route's backend sees the client the header names in
// X-Forwarded-For, over plain HTTP and over TLS.
func TestProxyProtocolHTTP(t *testing.T) {
	ca := newTestCA(t, "zoku CA")
	backend := startTCP(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body := req.Header.Get("X-Forwarded-For")
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	})
	r := startL4(t, Deps{Certs: staticCerts{ca.issue(false, "web.example.test")}}, `
entryPoints:
  web: {address: "127.0.0.1:0", proxyProtocol: {trustedIPs: ["127.0.0.1"]}}
  websecure: {address: "127.0.0.1:0", tls: {}, proxyProtocol: {trustedIPs: ["127.0.0.1"]}}
routes:
  web: {host: web.example.test, service: s}
services:
  s: {servers: [{url: "http://%s"}]}
`, backend.Addr())
	for _, ep := range []string{"web", "websecure"} {
		t.Run(ep, func(t *testing.T) {
			raw, err := net.DialTimeout("tcp", r.Addr(ep).String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
			src := &net.TCPAddr{IP: net.ParseIP("198.51.100.23"), Port: 4000}
			if _, err := proxyproto.HeaderProxyFromAddrs(1, src, raw.RemoteAddr()).WriteTo(raw); err != nil {
				t.Fatal(err)
			}
			var c net.Conn = raw
			if ep == "websecure" {
				tc := tls.Client(raw, &tls.Config{RootCAs: ca.pool, ServerName: "web.example.test"})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				c = tc
			}
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example.test\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "198.51.100.23" {
				t.Fatalf("X-Forwarded-For = %q, want the PROXY header's client", b)
			}
		})
	}
}

// TestHealthAfterListen: a service whose server is one of the router's
// own entry points is up after Apply, for TCP and HTTP services alike.
// The first health check round runs once the entry points listen; run
// before, it finds the server refusing and keeps it down for a whole
// interval (an hour here).
func TestHealthAfterListen(t *testing.T) {
	inner := testenv.FreePort(t)
	r := startL4(t, Deps{}, `
entryPoints:
  inner: {address: "127.0.0.1:%d"}
  tcp: {address: "127.0.0.1:0"}
tcpServices:
  self:
    servers: [{address: "127.0.0.1:%d"}]
    healthCheck: {interval: 1h, timeout: 2s}
tcpRoutes:
  all: {sni: "*", service: self, entryPoints: [tcp]}
routes:
  r: {host: a.test, service: s, entryPoints: [inner]}
  loop: {host: b.test, service: http-self, entryPoints: [inner]}
services:
  s: {static: {body: ok}}
  http-self:
    servers: [{url: "http://127.0.0.1:%d/"}]
    healthCheck: {path: /, interval: 1h, timeout: 2s, expectedStatus: 404}
`, inner, inner, inner)
	tab := r.tab.Load()
	firstCheck(t, "tcp service", func() (time.Time, bool, string) {
		s := tab.l4.services["self"].Servers()[0]
		return s.LastCheck, s.Up, s.LastError
	})
	firstCheck(t, "http service", func() (time.Time, bool, string) {
		s := tab.services["http-self"].(interface{ Servers() []proxy.ServerStatus }).Servers()[0]
		return s.LastCheck, s.Up, s.LastError
	})
}

// firstCheck waits (up to 30 s) for the first health check of a server,
// read by status, and fails the test unless it found the server up.
func firstCheck(t *testing.T, what string, status func() (last time.Time, up bool, lastErr string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		last, up, lastErr := status()
		if !last.IsZero() {
			if !up {
				t.Errorf("%s: the first health check found the router's own entry point down: %s", what, lastErr)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no health check within 30 s of Apply", what)
		}
		time.Sleep(10 * time.Millisecond) // polling for the first round's result
	}
}
