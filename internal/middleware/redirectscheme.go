package middleware

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// redirectScheme sends clients to the same host and path on another
// scheme (and port).
type redirectScheme struct {
	scheme    string
	port      string // ":8443", or "" for the scheme's default
	permanent bool
}

func newRedirectScheme(c *config.RedirectScheme) *redirectScheme {
	m := &redirectScheme{scheme: c.Scheme, permanent: c.Permanent}
	if c.Port != 0 && !(c.Scheme == "https" && c.Port == 443) && !(c.Scheme == "http" && c.Port == 80) {
		m.port = ":" + strconv.Itoa(c.Port)
	}
	return m
}

func (m *redirectScheme) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		host, port := r.Host, ""
		if h, p, err := net.SplitHostPort(r.Host); err == nil {
			host, port = h, p
		}
		if scheme(r) == m.scheme && (m.port == "" || m.port[1:] == port) {
			next(w, r, st)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		http.Redirect(w, r, m.scheme+"://"+host+m.port+r.URL.RequestURI(), redirectCode(r.Method, m.permanent))
	}
}
