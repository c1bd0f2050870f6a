package middleware

import (
	"net/http"
	"regexp"

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
