package router

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/zoku/zoku/internal/config"
)

// TestRedirectURL checks where a source's redirect route sends a request:
// what the redirect leaves empty is the request's own, a new scheme drops
// the request's port, a scheme's default port is left out.
func TestRedirectURL(t *testing.T) {
	tests := []struct {
		name   string
		rd     config.RouteRedirect
		target string
		tls    bool
		want   string
	}{
		{"to https", config.RouteRedirect{Scheme: "https"}, "http://a.test/x?q=1", false, "https://a.test/x?q=1"},
		{"to https, port dropped", config.RouteRedirect{Scheme: "https"}, "http://a.test:8080/x", false, "https://a.test/x"},
		{"to https, port set", config.RouteRedirect{Scheme: "https", Port: 8443}, "http://a.test:8080/x", false, "https://a.test:8443/x"},
		{"same scheme keeps port", config.RouteRedirect{Host: "b.test"}, "https://a.test:8443/x", true, "https://b.test:8443/x"},
		{"default port left out", config.RouteRedirect{Port: 443}, "https://a.test:8443/", true, "https://a.test/"},
		{"IPv6 host", config.RouteRedirect{Scheme: "https"}, "http://[::1]:8080/", false, "https://[::1]/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.target, nil)
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			if got := redirectURL(&tc.rd, req); got != tc.want {
				t.Errorf("redirectURL = %q, want %q", got, tc.want)
			}
		})
	}
	// The route answers with the status asked for (302 by default).
	for _, code := range []int{0, 308} {
		w := httptest.NewRecorder()
		redirectServe(&config.RouteRedirect{Scheme: "https", StatusCode: code})(w, httptest.NewRequest("GET", "http://a.test/", nil), nil)
		want := code
		if want == 0 {
			want = 302
		}
		if w.Code != want || w.Header().Get("Location") != "https://a.test/" {
			t.Errorf("status %d location %q, want %d https://a.test/", w.Code, w.Header().Get("Location"), want)
		}
	}
}
