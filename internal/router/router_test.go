package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRouteMatching(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web: {address: "127.0.0.1:0"}
  admin: {address: "127.0.0.1:0"}
routes:
  exact:    {host: a.example.test, service: s}
  api:      {host: a.example.test, pathPrefix: /api, service: s}
  wild:     {host: "*.example.test", service: s}
  urgent:   {host: "*.example.test", pathPrefix: /urgent, priority: 10, service: s}
  adminonly: {host: b.example.test, service: s, entryPoints: [admin]}
services:
  s: {static: {body: x}}
`)
	// As the Kubernetes source writes an Exact path and a header match.
	cfg.Routes["onlyexact"] = &config.Route{Host: "e.example.test", PathPrefix: "/x", Path: "/x", Service: "s"}
	cfg.Routes["byheader"] = &config.Route{Host: "e.example.test", PathPrefix: "/x", Service: "s", Headers: map[string]string{"x-canary": "1"}}
	tab := &table{cfg: cfg, routes: compileRoutes(cfg)}
	canary := http.Header{"X-Canary": {"1"}}
	tests := []struct {
		ep, host, path, want string
		hdr                  http.Header
	}{
		{"web", "a.example.test", "/", "exact", nil},
		{"web", "A.Example.Test:8443", "/x", "exact", nil},
		{"web", "a.example.test", "/api/v1", "api", nil},
		{"web", "c.example.test", "/", "wild", nil},
		{"web", "a.example.test", "/urgent/x", "urgent", nil},
		{"web", "x.y.example.test", "/", "", nil}, // one label only
		{"web", "example.test", "/", "", nil},
		{"web", "b.example.test", "/", "wild", nil},
		{"admin", "b.example.test", "/", "adminonly", nil},
		{"web", "e.example.test", "/x", "onlyexact", nil},
		{"web", "e.example.test", "/x/y", "wild", nil}, // not the exact route: the wildcard
		{"web", "e.example.test", "/xy", "byheader", canary},
		{"web", "e.example.test", "/x", "onlyexact", canary}, // an exact path before header matches (Gateway API precedence)
	}
	for _, tc := range tests {
		t.Run(tc.ep+" "+tc.host+tc.path, func(t *testing.T) {
			got := ""
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			req.Header = tc.hdr
			if req.Header == nil {
				req.Header = http.Header{}
			}
			if rt := tab.matchHost(tc.ep, hostOnly(tc.host), tc.path, req); rt != nil {
				got = rt.name
			}
			if got != tc.want {
				t.Fatalf("match = %q, want %q", got, tc.want)
			}
		})
	}
}

// startRouter applies cfg and returns the router and the web entry point's URL.
func startRouter(t *testing.T, cfg *config.Config) (*Router, string) {
	t.Helper()
	r := New(Deps{})
	if err := r.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r, "http://" + r.Addr("web").String()
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	defer backend.Close()
	r, url := startRouter(t, parse(t, fmt.Sprintf(`
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  r: {host: slow.example.test, service: s}
services:
  s: {servers: [{url: %q}]}
`, backend.URL)))
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "slow.example.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{body: string(b)}
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- r.Shutdown(context.Background()) }()
	// New connections are refused once shutdown has begun; the request
	// in flight is still waiting for its backend.
	select {
	case <-shut:
		t.Fatal("shutdown returned while a request was in flight")
	default:
	}
	close(release)
	if res := <-done; res.err != nil || res.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", res.body, res.err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func TestApplyRefusesBusyPortAndKeepsServing(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  r: {host: a.example.test, service: s}
services:
  s: {static: {body: "old"}}
`)
	r, url := startRouter(t, cfg)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	next := parse(t, fmt.Sprintf(`
entryPoints:
  web: {address: "127.0.0.1:0"}
  other: {address: %q}
routes:
  r: {host: a.example.test, service: s}
services:
  s: {static: {body: "new"}}
`, busy.Addr().String()))
	// Keep web's address the same as the running one so only "other" is new.
	next.EntryPoints["web"].Address = cfg.EntryPoints["web"].Address
	err = r.Apply(context.Background(), next)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Apply = %v, want an address-in-use refusal", err)
	}
	if got := get(t, url, "a.example.test", nil); got != "old" {
		t.Fatalf("after a refused apply the router serves %q, want the old config", got)
	}
}

func get(t *testing.T, url, host string, hdr http.Header) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	for k, v := range hdr {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestForwardedHeadersTrust(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"))
	}))
	defer backend.Close()
	for _, tc := range []struct {
		name, trusted, want string
	}{
		{"untrusted peer: client values dropped", "[]", "127.0.0.1|a.example.test"},
		{"trusted peer: client values kept and extended", "[127.0.0.0/8]", "203.0.113.9, 127.0.0.1|evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startRouter(t, parse(t, fmt.Sprintf(`
entryPoints:
  web: {address: "127.0.0.1:0", trustedProxies: %s}
routes:
  r: {host: a.example.test, service: s}
services:
  s: {servers: [{url: %q}]}
`, tc.trusted, backend.URL)))
			got := get(t, url, "a.example.test", http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Host": {"evil.example"}})
			if got != tc.want {
				t.Fatalf("backend saw %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRedirectAndLimits(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web:
    address: "127.0.0.1:0"
    redirect: {entryPoint: websecure}
  websecure: {address: "127.0.0.1:9443", tls: {}}
  api: {address: "127.0.0.1:0", maxBodyBytes: 10}
routes:
  r: {host: a.example.test, service: s, responseHeaders: {X-Frame-Options: DENY}}
services:
  s: {static: {body: ok}}
`)
	svc, err := proxyServices(nil)("s", cfg.Services["s"])
	if err != nil {
		t.Fatal(err)
	}
	r := New(Deps{})
	r.tab.Store(&table{cfg: cfg, routes: compileRoutes(cfg), services: map[string]Service{"s": svc}})
	for _, tc := range []struct{ host, uri, want string }{
		{"a.example.test", "/p?q=1", "https://a.example.test:9443/p?q=1"},
		{"a.example.test:80", "/", "https://a.example.test:9443/"},
		{"[::1]:80", "/x", "https://[::1]:9443/x"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", tc.uri, nil)
		req.Host = tc.host
		r.handler("web").ServeHTTP(rec, req)
		if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != tc.want {
			t.Errorf("%s%s: %d %q, want 308 %q", tc.host, tc.uri, rec.Code, rec.Header().Get("Location"), tc.want)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Host = "a.example.test"
	r.handler("api").ServeHTTP(rec, req)
	if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Body.String() != "ok" {
		t.Errorf("response headers of the route not set: %v %q", rec.Header(), rec.Body.String())
	}
	// A body whose length is over maxBodyBytes is refused before the
	// service sees it (one of unknown length meets the limit as it is
	// read: internal/proxy's TestClientBodyFaultIsNotAFailure).
	for _, tc := range []struct {
		body string
		want int
	}{{"0123456789", 200}, {"0123456789a", 413}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		req.Host = "a.example.test"
		r.handler("api").ServeHTTP(rec, req)
		if rec.Code != tc.want || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("POST of %d bytes over a limit of 10: %d %v, want %d with the route's headers", len(tc.body), rec.Code, rec.Header(), tc.want)
		}
	}
	// Behind net/http's server, a client that asks Expect: 100-continue
	// and waits gets the answer of a handler that does not read its body
	// without sending it: the limit must not hide the body's kind from
	// the server, which would then read it to make way for the next
	// request, and wait for it for ever.
	srv := httptest.NewServer(r.handler("api"))
	defer srv.Close()
	for _, tc := range []struct {
		length int
		want   string
	}{{5, "HTTP/1.1 200 "}, {11, "HTTP/1.1 413 "}} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a hang guard
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: a.example.test\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", tc.length)
		line := make([]byte, len(tc.want))
		_, err = io.ReadFull(c, line)
		c.Close()
		if err != nil || string(line) != tc.want {
			t.Errorf("Expect: 100-continue with %d bytes: read %q, %v; want %q before the body is sent", tc.length, line, err, tc.want)
		}
	}
}
