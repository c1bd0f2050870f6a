package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy/health"
)

// testWait bounds every wait on a channel in these tests.
const testWait = 10 * time.Second

// backend is a named loopback server. By default it answers 200 with its
// name as the body, and counts hits (requests other than health probes,
// which the checker sends on its own schedule).
type backend struct {
	name    string
	addr    string
	handler http.Handler
	hits    atomic.Int64

	mu  sync.Mutex
	srv *httptest.Server
}

func startBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, name)
		}
	}
	b.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			b.hits.Add(1)
		}
		h(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *backend) serve(ln net.Listener) {
	srv := httptest.NewUnstartedServer(b.handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
}

func (b *backend) url() string { return "http://" + b.addr }

// kill closes the listener and every connection.
func (b *backend) kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart serves again on the same port.
func (b *backend) restart(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("restart %s on %s: %v", b.name, b.addr, err)
	}
	b.serve(ln)
}

// refusedURL is a loopback URL with no listener behind it.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// clock is an injected time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newService(t *testing.T, cfg *config.Service, reg *health.Registry, opts Options) *Service {
	t.Helper()
	svc, err := NewService("app", cfg, reg, opts)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

func servers(urls ...string) []config.Server {
	out := make([]config.Server, len(urls))
	for i, u := range urls {
		out[i] = config.Server{URL: u}
	}
	return out
}

func intp(n int) *int { return &n }

// front serves svc on loopback and reports each request's Stats.
type front struct {
	*httptest.Server
	stats chan Stats
}

func startFront(t *testing.T, svc http.Handler) *front {
	t.Helper()
	f := &front{stats: make(chan Stats, 64)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, st := WithStats(r.Context())
		svc.ServeHTTP(w, r.WithContext(ctx))
		f.stats <- *st
	}))
	t.Cleanup(f.Close)
	return f
}

// nextStats returns the Stats of the next finished request.
func (f *front) nextStats(t *testing.T) Stats {
	t.Helper()
	select {
	case st := <-f.stats:
		return st
	case <-time.After(testWait):
		t.Fatal("no request finished within the test wait")
		return Stats{}
	}
}

// do sends a request through f and returns status and body.
func (f *front) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = stringsReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// stringsReader hides the length, so the request body goes out chunked.
func stringsReader(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }
