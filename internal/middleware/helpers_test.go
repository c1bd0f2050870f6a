package middleware

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// parse loads a config whose middlewares section is mws (YAML, indented
// under "middlewares:"), with a route r using middleware m and services
// s and pages.
func parse(t *testing.T, mws string, getenv func(string) string) *config.Config {
	t.Helper()
	src := "entryPoints:\n  web: {address: \"127.0.0.1:0\"}\nroutes:\n  r: {host: a.test, service: s, middlewares: [m]}\n" +
		"services:\n  s: {static: {body: ok}}\n  pages: {static: {body: page}}\nmiddlewares:\n" + mws
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c, err := config.Parse("test.yaml", []byte(src), getenv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// build builds middleware m of mws.
func build(t *testing.T, mws string, env Env) Middleware {
	t.Helper()
	c := parse(t, mws, nil)
	m, err := Build("m", c.Middlewares["m"], env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Close(m) })
	return m
}

// seen is what the terminal handler saw of a request.
type seen struct {
	mu     sync.Mutex
	n      int
	path   string
	raw    string
	header http.Header
	body   string
}

func (s *seen) get() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{n: s.n, path: s.path, raw: s.raw, header: s.header, body: s.body}
}

// terminal is the end of a request path that records the request and
// answers with h (nil: 200 "ok").
func terminal(s *seen, h http.HandlerFunc) Next {
	return func(w http.ResponseWriter, r *http.Request, _ *proxy.Stats) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.n++
		s.path, s.raw, s.header, s.body = r.URL.Path, r.URL.EscapedPath(), r.Header.Clone(), string(b)
		s.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}
}

// do runs req through next and returns the recorded answer.
func do(next Next, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	var st proxy.Stats
	next(rec, req, &st)
	return rec
}

func get(target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// clock is a settable clock for limits and breakers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// withTimeout gives req a context ended by the test's end.
func withTimeout(t *testing.T, req *http.Request) *http.Request {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return req.WithContext(ctx)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// parseErr loads src and returns its error.
func parseErr(src string) (*config.Config, error) {
	return config.Parse("test.yaml", []byte(src), func(string) string { return "" })
}

// parseB is parse for benchmarks.
func parseB(b *testing.B, mws string, getenv func(string) string) *config.Config {
	b.Helper()
	src := "entryPoints:\n  web: {address: \"127.0.0.1:0\"}\nroutes:\n  r: {host: a.test, service: s, middlewares: [m]}\n" +
		"services:\n  s: {static: {body: ok}}\n  pages: {static: {body: page}}\nmiddlewares:\n" + mws
	c, err := config.Parse("bench.yaml", []byte(src), getenv)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
