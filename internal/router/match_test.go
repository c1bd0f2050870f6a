package router

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRouteConditionsAndPrecedence(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  base:     {host: a.test, service: s}
  exact:    {host: a.test, path: /login, service: s}
  exactlow: {host: a.test, pathPrefix: /login, service: s}
  regex:    {host: a.test, pathRegex: "^/v[0-9]+/", service: s}
  api:      {host: a.test, pathPrefix: /api, service: s}
  apipost:  {host: a.test, pathPrefix: /api, methods: [post, put], service: s}
  apibeta:  {host: a.test, pathPrefix: /api, headers: {X-Beta: "1"}, methods: [GET], service: s}
  ua:       {host: a.test, pathPrefix: /ua, headersRegex: {User-Agent: "^curl/"}, service: s}
  q:        {host: a.test, pathPrefix: /q, query: {debug: "1"}, service: s}
  qre:      {host: a.test, pathPrefix: /q, queryRegex: {"v id": "^[0-9]+$"}, service: s}
  ip:       {host: a.test, pathPrefix: /ip, clientIPs: [10.0.0.0/8, "2001:db8::1"], service: s}
  urgent:   {host: a.test, pathPrefix: /api, priority: 5, headers: {X-Urgent: "yes"}, service: s}
  anyhost:  {hostRegex: "^(www|m)\\.c\\.test$", service: s}
  anyapi:   {hostRegex: "\\.test$", pathPrefix: /api, service: s}
  wild:     {host: "*.c.test", pathPrefix: /w, service: s}
services:
  s: {static: {body: x}}
`)
	tab := newTable(cfg)
	if tab.err != nil {
		t.Fatal(tab.err)
	}
	for _, tc := range []struct {
		name, method, host, uri, remote string
		hdr                             []string
		want                            string
	}{
		{"no condition", "GET", "a.test", "/", "", nil, "base"},
		{"exact path beats a longer prefix", "GET", "a.test", "/login", "", nil, "exact"},
		{"exact path only exactly", "GET", "a.test", "/login/x", "", nil, "exactlow"},
		{"path regex", "GET", "a.test", "/v2/items", "", nil, "regex"},
		{"path regex does not match", "GET", "a.test", "/vx/items", "", nil, "base"},
		{"more conditions first", "POST", "a.test", "/api/x", "", nil, "apipost"},
		{"method not listed", "DELETE", "a.test", "/api/x", "", nil, "api"},
		{"header and method", "GET", "a.test", "/api/x", "", []string{"X-Beta", "1"}, "apibeta"},
		{"header value differs", "GET", "a.test", "/api/x", "", []string{"X-Beta", "2"}, "api"},
		{"priority first", "POST", "a.test", "/api/x", "", []string{"X-Urgent", "yes"}, "urgent"},
		{"header regex", "GET", "a.test", "/ua", "", []string{"User-Agent", "curl/8.5"}, "ua"},
		{"header regex does not match", "GET", "a.test", "/ua", "", []string{"User-Agent", "Mozilla/5"}, "base"},
		{"query", "GET", "a.test", "/q?a=b&debug=1", "", nil, "q"},
		{"query regex, escaped name", "GET", "a.test", "/q?v%20id=42", "", nil, "qre"},
		{"query absent", "GET", "a.test", "/q?debug=2", "", nil, "base"},
		{"client ip", "GET", "a.test", "/ip", "10.2.3.4:5000", nil, "ip"},
		{"client ip v6", "GET", "a.test", "/ip", "[2001:db8::1]:5000", nil, "ip"},
		{"client ip outside", "GET", "a.test", "/ip", "192.0.2.1:5000", nil, "base"},
		{"host regex", "GET", "www.c.test", "/", "", nil, "anyhost"},
		{"wildcard beats host regex", "GET", "www.c.test", "/w/1", "", nil, "wild"},
		{"host regex for a host of no route", "GET", "zzz.test", "/api/1", "", nil, "anyapi"},
		{"exact host beats host regex", "GET", "a.test", "/api/1", "", nil, "api"},
		{"host regex does not match", "GET", "x.c.test", "/", "", nil, ""},
		{"single label host, regex only", "GET", "localhost", "/api", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.uri, nil)
			req.Host = tc.host
			if tc.remote != "" {
				req.RemoteAddr = tc.remote
			}
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			got := ""
			if rt := tab.matchHost("web", hostOnly(tc.host), req.URL.Path, req); rt != nil {
				got = rt.name
			}
			if got != tc.want {
				t.Errorf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRoutesWithoutConditionsUnchanged: a route without conditions or
// middlewares gets no extra matcher and its service's own request path.
func TestRoutesWithoutConditionsUnchanged(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  plain: {host: a.test, service: s}
  mw:    {host: b.test, service: s, middlewares: [sec]}
services:
  s: {static: {body: x}}
middlewares:
  sec: {securityHeaders: {}}
`)
	r, _ := startRouter(t, cfg)
	tab := r.tab.Load()
	for _, rt := range tab.routes {
		if rt.extra != nil {
			t.Errorf("route %s has an extra matcher", rt.name)
		}
	}
	if len(tab.mws) != 1 || tab.mws["sec"] == nil {
		t.Errorf("built middlewares %v, want sec alone", tab.mws)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Host = "a.test"
	r.handler("web").ServeHTTP(rec, req)
	if rec.Header().Get("X-Frame-Options") != "" {
		t.Errorf("a route without middlewares got security headers")
	}
	req.Host = "b.test"
	rec = httptest.NewRecorder()
	r.handler("web").ServeHTTP(rec, req)
	if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Body.String() != "x" {
		t.Errorf("route with securityHeaders: %v %q", rec.Header(), rec.Body.String())
	}
}

func TestRouteInfoShowsConditionsAndMiddlewares(t *testing.T) {
	cfg := parse(t, `
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  r: {host: a.test, path: /x, methods: [GET], middlewares: [c], service: f}
services:
  a: {static: {body: a}}
  b: {static: {body: b}}
  f: {failover: {service: a, fallback: b}}
middlewares:
  c: {chain: [sec]}
  sec: {securityHeaders: {}}
`)
	r, _ := startRouter(t, cfg)
	routes, services := r.Snapshot()
	if len(routes) != 1 || len(routes[0].Matchers) != 2 || routes[0].Matchers[0] != "path /x" || routes[0].Middlewares[0] != "c" {
		t.Errorf("routes = %+v", routes)
	}
	var f *ServiceInfo
	for i := range services {
		if services[i].Name == "f" {
			f = &services[i]
		}
	}
	if f == nil || f.Kind != "failover" || len(f.Services) != 2 || !f.Up {
		t.Errorf("failover service = %+v", f)
	}
	_ = http.StatusOK
}
