package middleware

import (
	"net/http"
	"testing"
)

func TestHeaders(t *testing.T) {
	m := build(t, `  m:
    headers:
      request:
        set: {X-Env: prod}
        add: {X-Tag: b}
        remove: [X-Drop]
      response:
        set: {Cache-Control: no-store}
        add: {X-Served: zoku}
        remove: [X-Internal]
`, Env{})
	var s seen
	next := m.Wrap(terminal(&s, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600") // replaced
		w.Header().Set("X-Internal", "10.0.0.7")       // removed
		w.Header().Set("X-Served", "app")              // kept, one more added
		_, _ = w.Write([]byte("ok"))
	}))
	rec := do(next, get("/", "X-Env", "dev", "X-Tag", "a", "X-Drop", "1"))
	got := s.get().header
	if got.Get("X-Env") != "prod" || len(got["X-Tag"]) != 2 || got.Get("X-Drop") != "" {
		t.Errorf("service saw %v, want X-Env prod, X-Tag [a b], no X-Drop", got)
	}
	h := rec.Header()
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Internal") != "" || len(h["X-Served"]) != 2 || h["X-Served"][1] != "zoku" {
		t.Errorf("client got %v, want Cache-Control no-store, no X-Internal, X-Served [app zoku]", h)
	}
}

func TestSecurityHeaders(t *testing.T) {
	backend := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Server", "Apache/2.4.1")
		w.Header().Set("X-Powered-By", "PHP/5")
		w.Header().Set("X-Frame-Options", "ALLOWALL")
		w.WriteHeader(http.StatusTeapot)
	}
	t.Run("defaults", func(t *testing.T) {
		m := build(t, "  m: {securityHeaders: {}}\n", Env{})
		rec := do(m.Wrap(terminal(&seen{}, backend)), get("/"))
		want := map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "strict-origin-when-cross-origin", "X-Xss-Protection": "0",
			"Server": "", "X-Powered-By": "", "Content-Security-Policy": "",
		}
		for k, v := range want {
			if got := rec.Header().Values(k); v == "" && len(got) > 0 || v != "" && (len(got) != 1 || got[0] != v) {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if rec.Code != http.StatusTeapot {
			t.Errorf("status %d, want the service's 418", rec.Code)
		}
	})
	t.Run("tuned", func(t *testing.T) {
		m := build(t, `  m:
    securityHeaders:
      frameOptions: ""
      hideServer: false
      contentSecurityPolicy: "default-src 'self'"
`, Env{})
		rec := do(m.Wrap(terminal(&seen{}, backend)), get("/"))
		if rec.Header().Get("X-Frame-Options") != "ALLOWALL" || rec.Header().Get("Server") == "" ||
			rec.Header().Get("Content-Security-Policy") != "default-src 'self'" {
			t.Errorf("got %v", rec.Header())
		}
	})
}
