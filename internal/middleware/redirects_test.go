package middleware

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRedirectRegex(t *testing.T) {
	m := build(t, `  m:
    redirectRegex:
      regex: "^http://old\\.test/(.*)"
      replacement: "https://new.test/$${1}"
      permanent: true
`, Env{})
	var s seen
	next := m.Wrap(terminal(&s, nil))
	for _, tc := range []struct {
		name, host, method, uri string
		code                    int
		loc                     string
	}{
		{"match", "old.test", "GET", "/a/b?q=1", 301, "https://new.test/a/b?q=1"},
		{"match POST keeps the method", "old.test", "POST", "/x", 308, "https://new.test/x"},
		{"regex does not match: passes", "other.test", "GET", "/a", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.uri, nil)
			req.Host = tc.host
			rec := do(next, req)
			if rec.Code != tc.code || rec.Header().Get("Location") != tc.loc {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tc.code, tc.loc)
			}
		})
	}
	if s.get().n != 1 {
		t.Errorf("the service got %d requests, want 1 (the one that did not match)", s.get().n)
	}
}

func TestRedirectScheme(t *testing.T) {
	m := build(t, "  m: {redirectScheme: {scheme: https, port: 8443}}\n", Env{})
	next := m.Wrap(terminal(&seen{}, nil))
	req := get("/p?x=1")
	req.Host = "a.test:8080"
	rec := do(next, req)
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://a.test:8443/p?x=1" {
		t.Errorf("plain: got %d %q", rec.Code, rec.Header().Get("Location"))
	}
	req = get("/p")
	req.Host, req.TLS = "a.test:8443", &tls.ConnectionState{}
	if rec := do(next, req); rec.Code != 200 {
		t.Errorf("already https on 8443: got %d, want 200", rec.Code)
	}
	req = get("/p", "X-Forwarded-Proto", "https") // from a trusted proxy (the router drops it from others)
	req.Host = "a.test:8443"
	if rec := do(next, req); rec.Code != 200 {
		t.Errorf("https per X-Forwarded-Proto: got %d, want 200", rec.Code)
	}
}
