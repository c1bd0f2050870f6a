package router

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// randomConfig makes n routes over a few domains: exact hosts, wildcards,
// path prefixes, priorities and entry point restrictions, so that routes
// overlap in every way the order rules decide.
func randomConfig(rng *rand.Rand, n int) *config.Config {
	cfg := &config.Config{
		EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}, "admin": {Address: "127.0.0.1:0"}},
		Routes:      map[string]*config.Route{},
	}
	prefixes := []string{"", "/", "/api", "/api/v1", "/static"}
	for i := range n {
		r := &config.Route{Service: "s", PathPrefix: prefixes[rng.IntN(len(prefixes))], Priority: rng.IntN(3)}
		d := rng.IntN(4)
		if rng.IntN(5) == 0 {
			r.Host = fmt.Sprintf("*.d%d.test", d)
		} else {
			r.Host = fmt.Sprintf("h%d.d%d.test", rng.IntN(n/2+1), d)
		}
		if rng.IntN(6) == 0 {
			r.EntryPoints = []string{"admin"}
		}
		cfg.Routes["r"+strconv.Itoa(i)] = r
	}
	return cfg
}

// TestIndexedMatchEqualsScan checks the host index against the plain
// scan of every route in match order, which is the definition.
func TestIndexedMatchEqualsScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/", "/api", "/api/v1/x", "/static/a", "/other"}
	for round := range 20 {
		cfg := randomConfig(rng, 1+rng.IntN(60))
		tab := newTable(cfg)
		for range 300 {
			host := fmt.Sprintf("h%d.d%d.test", rng.IntN(40), rng.IntN(5))
			switch rng.IntN(5) {
			case 0:
				host = fmt.Sprintf("x.h%d.d%d.test", rng.IntN(40), rng.IntN(5)) // two labels under a wildcard
			case 1:
				host = fmt.Sprintf("d%d.test", rng.IntN(5))
			}
			ep := []string{"web", "admin"}[rng.IntN(2)]
			path := paths[rng.IntN(len(paths))]
			got, want := tab.match(ep, host, path), matchList(tab.routes, ep, host, path, nil)
			if got != want {
				t.Fatalf("round %d: %s %s%s: index gives %v, scan gives %v", round, ep, host, path, name(got), name(want))
			}
		}
	}
}

func name(rt *route) string {
	if rt == nil {
		return "no route"
	}
	return rt.name + " (" + rt.host + rt.prefix + ")"
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"a.example.test":      "a.example.test",
		"A.Example.TEST:8443": "a.example.test",
		"a.example.test.":     "a.example.test",
		"[::1]:80":            "::1",
		"::1":                 "::1",
		"":                    "",
	} {
		if got := hostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

// hostsConfig routes n exact hosts (and one wildcard) to one service.
func hostsConfig(n int) *config.Config {
	cfg := &config.Config{
		EntryPoints: map[string]*config.EntryPoint{"web": {Address: "127.0.0.1:0"}},
		Routes:      make(map[string]*config.Route, n+1),
		Services:    map[string]*config.Service{"s": {Static: &config.Static{Body: "ok"}}},
	}
	for i := range n {
		cfg.Routes["r"+strconv.Itoa(i)] = &config.Route{Host: "host" + strconv.Itoa(i) + ".example.test", Service: "s"}
	}
	cfg.Routes["wild"] = &config.Route{Host: "*.wild.test", Service: "s"}
	return cfg
}

var hostCounts = []int{10, 1_000, 10_000, 100_000}

// BenchmarkRouteLookup: one lookup of a random known host, from 10 to
// 100,000 hosts; ns/op should stay flat.
func BenchmarkRouteLookup(b *testing.B) {
	for _, n := range hostCounts {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tab := newTable(hostsConfig(n))
			hosts := make([]string, 1024)
			for i := range hosts {
				hosts[i] = "host" + strconv.Itoa(rand.IntN(n)) + ".example.test"
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if tab.matchHost("web", hosts[i&1023], "/", nil) == nil {
					b.Fatal("no route")
				}
				i++
			}
		})
	}
}

// BenchmarkRouteLookupScan is BenchmarkRouteLookup over the plain scan of
// every route in match order (how lookups worked before the host index),
// for comparison; it stops at 10,000 hosts.
func BenchmarkRouteLookupScan(b *testing.B) {
	for _, n := range hostCounts[:3] {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			tab := newTable(hostsConfig(n))
			hosts := make([]string, 1024)
			for i := range hosts {
				hosts[i] = "host" + strconv.Itoa(rand.IntN(n)) + ".example.test"
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if matchList(tab.routes, "web", hosts[i&1023], "/", nil) == nil {
					b.Fatal("no route")
				}
				i++
			}
		})
	}
}

// BenchmarkRouteRequest: the router's whole request path to a static
// service (host normalising, lookup, plan, recorder), from 10 to 100,000
// hosts.
func BenchmarkRouteRequest(b *testing.B) {
	for _, n := range hostCounts {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			cfg := hostsConfig(n)
			r := New(Deps{})
			tab := newTable(cfg)
			svc, err := proxy.NewService("s", cfg.Services["s"], nil, proxy.Options{})
			if err != nil {
				b.Fatal(err)
			}
			tab.services = map[string]Service{"s": svc}
			if err := r.compile(tab); err != nil {
				b.Fatal(err)
			}
			r.tab.Store(tab)
			h := r.handler("web")
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req.Host = "host" + strconv.Itoa(i%n) + ".example.test:443"
				clear(w.h)
				h.ServeHTTP(w, req)
				i++
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkCompile100k: building the route table of 100,000 hosts, as
// Apply does (without services or listeners); table-MiB is the live heap
// the table holds.
func BenchmarkCompile100k(b *testing.B) {
	cfg := hostsConfig(100_000)
	r := New(Deps{})
	b.ReportAllocs()
	for b.Loop() {
		if err := r.compile(newTable(cfg)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(liveMiB(func() any {
		t := newTable(cfg)
		_ = r.compile(t)
		return t
	}), "table-MiB")
}

// BenchmarkApply100k: Apply of a config with 100,000 hosts, each routed to
// a service of its own with one server, on one entry point; live-MiB is
// the live heap of the running config (table and services).
func BenchmarkApply100k(b *testing.B) {
	const n = 100_000
	cfg := hostsConfig(n)
	cfg.Services = make(map[string]*config.Service, n)
	for name, rt := range cfg.Routes {
		rt.Service = "svc-" + name
		cfg.Services[rt.Service] = &config.Service{Servers: []config.Server{{URL: "http://127.0.0.1:" + strconv.Itoa(20000+len(cfg.Services)%20000)}}}
	}
	b.ReportAllocs()
	for b.Loop() {
		r := New(Deps{})
		if err := r.Apply(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
		_ = r.Shutdown(b.Context())
	}
	b.ReportMetric(liveMiB(func() any {
		r := New(Deps{})
		if err := r.Apply(b.Context(), cfg); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Shutdown(b.Context()) })
		return r
	}), "live-MiB")
}

// liveMiB returns the heap that what build returns keeps alive.
func liveMiB(build func() any) float64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(v)
	return float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / (1 << 20)
}
