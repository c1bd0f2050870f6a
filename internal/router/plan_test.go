package router

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestEntryPointPlan(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web:
    address: "127.0.0.1:0"
    trustedProxies: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
  websecure:
    address: "127.0.0.1:0"
    tls: {}
    hsts: {maxAge: 48h, includeSubdomains: true, preload: true}
routes:
  r: {host: a.example.test, service: s}
services:
  s: {static: {body: ok}}
`)
	web, err := compileEntryPoint(cfg, "web", cfg.EntryPoints["web"])
	if err != nil {
		t.Fatal(err)
	}
	for remote, want := range map[string]bool{
		"10.1.2.3:5000":          true,
		"[::ffff:10.1.2.3]:5000": true,
		"192.0.2.7:1":            true,
		"192.0.2.8:1":            false,
		"[2001:db8::1]:443":      true,
		"[2001:db8::1%eth0]:443": true,
		"[2001:db9::1]:443":      false,
		"not an address":         false,
		"203.0.113.1:80":         false,
	} {
		if got := web.trusts(remote); got != want {
			t.Errorf("trusts(%q) = %v, want %v", remote, got, want)
		}
	}
	if web.hsts != nil {
		t.Errorf("plain entry point has HSTS %q", web.hsts)
	}
	sec, err := compileEntryPoint(cfg, "websecure", cfg.EntryPoints["websecure"])
	if err != nil {
		t.Fatal(err)
	}
	want := "max-age=172800; includeSubDomains; preload"
	if len(sec.hsts) != 1 || sec.hsts[0] != want || cap(sec.hsts) != 1 {
		t.Errorf("hsts = %q (cap %d), want [%q] with no spare capacity", sec.hsts, cap(sec.hsts), want)
	}
	if sec.trusts("10.1.2.3:5000") {
		t.Error("an entry point without trustedProxies trusts a peer")
	}
}

// TestRouteRequestPathResolvedAtApply checks that Apply gives each route
// its service's request path and that a request reaches it.
func TestRouteRequestPathResolvedAtApply(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  r: {host: "*.example.test", service: s, responseHeaders: {X-Route: r}}
services:
  s: {static: {body: ok}}
`)
	r, _ := startRouter(t, cfg)
	tab := r.tab.Load()
	for _, rt := range tab.routes {
		if rt.serve == nil {
			t.Fatalf("route %s has no request path after Apply", rt.name)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "B.Example.Test:80"
	r.handler("web").ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "ok" || rec.Header().Get("X-Route") != "r" {
		t.Errorf("got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}
