package middleware

import (
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// redirectCode is the status of a redirect: 301/302 for GET and HEAD (as
// Traefik answers), 308/307 for other methods, which must keep their
// method and body.
func redirectCode(method string, permanent bool) int {
	safe := method == http.MethodGet || method == http.MethodHead
	switch {
	case permanent && safe:
		return http.StatusMovedPermanently
	case permanent:
		return http.StatusPermanentRedirect
	case safe:
		return http.StatusFound
	}
	return http.StatusTemporaryRedirect
}

// scheme is the scheme the client used: X-Forwarded-Proto when a trusted
// proxy sent it (the router drops it from others), else https on TLS.
func scheme(r *http.Request) string {
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		return p
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// redirectRegex redirects requests whose whole URL matches.
type redirectRegex struct {
	re          *regexp.Regexp
	replacement string
	permanent   bool
}

func newRedirectRegex(c *config.RedirectRegex) (*redirectRegex, error) {
	re, err := regexp.Compile(c.Regex)
	if err != nil {
		return nil, err
	}
	return &redirectRegex{re: re, replacement: c.Replacement, permanent: c.Permanent}, nil
}

func (m *redirectRegex) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		u := scheme(r) + "://" + r.Host + r.URL.RequestURI()
		if !m.re.MatchString(u) {
			next(w, r, st)
			return
		}
		http.Redirect(w, r, m.re.ReplaceAllString(u, m.replacement), redirectCode(r.Method, m.permanent))
	}
}

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
			host, port = h, ":"+p
		}
		if scheme(r) == m.scheme && (m.port == "" || m.port == port) {
			next(w, r, st)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		http.Redirect(w, r, m.scheme+"://"+host+m.port+r.URL.RequestURI(), redirectCode(r.Method, m.permanent))
	}
}
