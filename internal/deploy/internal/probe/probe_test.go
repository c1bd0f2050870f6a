package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServerName(t *testing.T) {
	cases := []struct {
		in   []string
		want string
	}{
		{[]string{"www.example.test"}, "www.example.test"},
		{[]string{"*.example.test"}, "zoku-check.example.test"},
		{[]string{"192.0.2.1", "a.example.test"}, "a.example.test"},
		{[]string{"192.0.2.1"}, ""},
	}
	for _, tc := range cases {
		if got := ServerName(tc.in); got != tc.want {
			t.Errorf("ServerName(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The self-check names what it got, never the token or the answer.
func TestHTTP01(t *testing.T) {
	const token, keyAuth = "tok-EN_123", "tok-EN_123.thumbprint"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Host {
		case "ok.example.test":
			_, _ = w.Write([]byte(keyAuth))
		case "redirect.example.test":
			http.Redirect(w, r, "https://redirect.example.test/", http.StatusFound)
		case "wrong.example.test":
			_, _ = w.Write([]byte("something else"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		host, want string
	}{
		{"ok.example.test", ""},
		{"redirect.example.test", "302 redirect to https://redirect.example.test/"},
		{"wrong.example.test", "not the key authorization"},
		{"missing.example.test", "status 404"},
	}
	for _, tc := range cases {
		err := HTTP01(context.Background(), addr, tc.host, token, keyAuth)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.host, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.host, err, tc.want)
		case err != nil && strings.Contains(err.Error(), token):
			t.Errorf("%s: the token is in the error: %v", tc.host, err)
		}
	}
}
