package middleware

import (
	"io"
	"net/http"
	"testing"

	"github.com/zoku/zoku/internal/proxy"
)

func TestErrorPages(t *testing.T) {
	var asked string
	pages := func(w http.ResponseWriter, r *http.Request, _ *proxy.Stats) {
		asked = r.Method + " " + r.URL.RequestURI()
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "<h1>sorry</h1>")
	}
	env := Env{Service: func(name string) Next {
		if name == "pages" {
			return pages
		}
		return nil
	}}
	m := build(t, "  m: {errors: {status: [\"404\", \"500-599\"], service: pages, query: \"/err/{status}.html?lang=en\"}}\n", env)
	code := 502
	next := m.Wrap(terminal(&seen{}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Backend", "secret-detail")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "stack trace")
	}))
	req := get("/x")
	req.Method = http.MethodPost
	rec := do(next, req)
	if rec.Code != 502 || rec.Body.String() != "<h1>sorry</h1>" || rec.Header().Get("X-Backend") != "" || rec.Header().Get("Content-Type") != "text/html" {
		t.Errorf("got %d %q %v; want 502 with the page and its headers only", rec.Code, rec.Body.String(), rec.Header())
	}
	if asked != "GET /err/502.html?lang=en" {
		t.Errorf("page service asked %q", asked)
	}
	code = 403 // not listed
	rec = do(next, get("/x"))
	if rec.Code != 403 || rec.Body.String() != "stack trace" || rec.Header().Get("X-Backend") != "secret-detail" {
		t.Errorf("unlisted status: got %d %q, want the service's answer", rec.Code, rec.Body.String())
	}
}
