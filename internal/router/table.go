package router

import (
	"crypto/tls"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/zoku/zoku/internal/config"
)

// route is one compiled config.Route.
type route struct {
	name        string
	host        string // exact, or "*.domain"
	wildcard    bool
	prefix      string
	priority    int
	service     string
	entryPoints map[string]bool // nil = every entry point without a redirect
	headers     http.Header
	// exact, when set, is the only path matched (config.RouteMatch).
	exact string
	// match are request headers that must have these values.
	match    map[string]string
	redirect *config.RouteRedirect
}

// table is an immutable snapshot of routes and services; a reload builds a
// new one and swaps it in atomically.
type table struct {
	cfg      *config.Config
	routes   []*route // in match order
	services map[string]Service
	// tls and alpn are each TLS entry point's handshake configs, built
	// once per config: alpn answers TLS-ALPN-01 handshakes only.
	tls, alpn map[string]*tls.Config
}

// compileRoutes orders routes: higher priority, then exact host before
// wildcard, then longer path prefix, then name (so the order is stable).
func compileRoutes(cfg *config.Config) []*route {
	out := make([]*route, 0, len(cfg.Routes))
	for name, r := range cfg.Routes {
		rt := &route{
			name: name, host: strings.ToLower(r.Host), prefix: r.PathPrefix, priority: r.Priority, service: r.Service,
		}
		if rt.prefix == "" {
			rt.prefix = "/"
		}
		rt.wildcard = strings.HasPrefix(rt.host, "*.")
		if len(r.EntryPoints) > 0 {
			rt.entryPoints = map[string]bool{}
			for _, ep := range r.EntryPoints {
				rt.entryPoints[ep] = true
			}
		}
		if m := r.Match; m != nil {
			if m.Path != "" {
				rt.exact, rt.prefix = m.Path, m.Path
			}
			if len(m.Headers) > 0 {
				rt.match = make(map[string]string, len(m.Headers))
				for k, v := range m.Headers {
					rt.match[http.CanonicalHeaderKey(k)] = v
				}
			}
		}
		rt.redirect = r.Redirect
		if len(r.ResponseHeaders) > 0 {
			rt.headers = http.Header{}
			for k, v := range r.ResponseHeaders {
				rt.headers.Set(k, v)
			}
		}
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		if a.wildcard != b.wildcard {
			return !a.wildcard
		}
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
		// An exact path before a prefix of the same length, then more
		// header matches first (Gateway API's precedence).
		if (a.exact != "") != (b.exact != "") {
			return a.exact != ""
		}
		if len(a.match) != len(b.match) {
			return len(a.match) > len(b.match)
		}
		return a.name < b.name
	})
	return out
}

// match returns the first route for the request's host and path (and,
// for routes that match headers, hdr) on entry point ep.
func (t *table) match(ep string, host, path string, hdr http.Header) *route {
	host = hostOnly(host)
	for _, rt := range t.routes {
		if rt.entryPoints != nil && !rt.entryPoints[ep] {
			continue
		}
		if !hostMatches(rt, host) || !strings.HasPrefix(path, rt.prefix) {
			continue
		}
		if rt.exact != "" && path != rt.exact {
			continue
		}
		if !headersMatch(rt.match, hdr) {
			continue
		}
		return rt
	}
	return nil
}

// headersMatch reports whether hdr has every header of want with its
// value.
func headersMatch(want map[string]string, hdr http.Header) bool {
	for k, v := range want {
		if hdr.Get(k) != v {
			return false
		}
	}
	return true
}

func hostMatches(rt *route, host string) bool {
	if !rt.wildcard {
		return host == rt.host
	}
	// "*.example.com" matches exactly one more label.
	suffix := rt.host[1:]
	if !strings.HasSuffix(host, suffix) {
		return false
	}
	label := host[:len(host)-len(suffix)]
	return label != "" && !strings.Contains(label, ".")
}

// hostOnly strips a port and a trailing dot and lowercases.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}
