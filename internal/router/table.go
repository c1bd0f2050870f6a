package router

import (
	"crypto/tls"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/zoku/zoku/internal/config"
)

// route is one compiled config.Route: everything the request path needs,
// resolved once when the config is applied.
type route struct {
	name        string
	host        string // exact, or "*.domain"
	wildcard    bool
	prefix      string
	priority    int
	service     string
	entryPoints map[string]bool // nil = every entry point without a redirect
	headers     http.Header
	// order is the route's position in match order; host lists keep it.
	order int
	// extra holds matchers beyond host and path prefix (method, header,
	// query, client IP...): nil for routes that have none, so those pay
	// nothing for them.
	extra func(*http.Request) bool
	// serve is the route's request path: the service, or a middleware
	// chain ending in it. Set at Apply; nil in tables built without
	// services.
	serve serveFunc
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
	// hosts indexes routes by host for constant-time lookup: "a.b.c" for
	// exact hosts (its list also holds the wildcard routes that cover it,
	// merged in match order), ".b.c" for the wildcard routes "*.b.c".
	hosts map[string][]*route
	// eps are the entry points' compiled plans, indexed by the router's
	// entry point index; nil for entry points not in this config.
	eps []*epPlan
	// l4 is the layer-4 and TLS state (l4.go): TCP routes and services,
	// PROXY protocol, HTTP/3 and client certificate checks; nil in tables
	// built without Apply.
	l4 *l4State
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
		return a.name < b.name
	})
	for i, rt := range out {
		rt.order = i
	}
	return out
}

// newTable compiles cfg's routes and indexes them by host.
func newTable(cfg *config.Config) *table {
	t := &table{cfg: cfg, routes: compileRoutes(cfg)}
	t.hosts = indexHosts(t.routes)
	return t
}

// indexHosts builds the host index of routes (given in match order). Each
// exact host's list also carries the wildcard routes covering it, so a
// lookup reads one list; a host without exact routes falls back to its
// wildcard list.
func indexHosts(routes []*route) map[string][]*route {
	hosts := make(map[string][]*route, len(routes))
	for _, rt := range routes { // in match order, so every list is too
		k := indexKey(rt)
		hosts[k] = append(hosts[k], rt)
	}
	for h, list := range hosts {
		if strings.HasPrefix(h, ".") {
			continue
		}
		if wild := hosts[parentOf(h)]; len(wild) > 0 {
			hosts[h] = mergeOrdered(list, wild)
		}
	}
	return hosts
}

// indexKey is rt's key in the host index: its host, or for "*.b.c" the
// suffix ".b.c" that every host it covers ends with.
func indexKey(rt *route) string {
	if rt.wildcard {
		return rt.host[1:]
	}
	return rt.host
}

// parentOf returns the index key of the wildcard routes that may cover
// host (".b.c" for "a.b.c"), or "" when host has a single label.
func parentOf(host string) string {
	i := strings.IndexByte(host, '.')
	if i <= 0 {
		return ""
	}
	return host[i:]
}

// mergeOrdered merges two lists sorted by match order.
func mergeOrdered(a, b []*route) []*route {
	out := make([]*route, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].order < b[0].order {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// match returns the first route for the request's host and path on entry
// point ep.
func (t *table) match(ep string, host, path string) *route {
	return t.matchHost(ep, hostOnly(host), path, nil)
}

// matchHost is match for a host already normalised by hostOnly; req, if
// not nil, is handed to routes with extra matchers.
func (t *table) matchHost(ep string, host, path string, req *http.Request) *route {
	if t.hosts == nil {
		// A table built by hand, without an index: scan every route.
		return matchList(t.routes, ep, host, path, req)
	}
	list, ok := t.hosts[host]
	if !ok {
		w := parentOf(host)
		if w == "" {
			return nil
		}
		list = t.hosts[w]
	}
	return matchList(list, ep, host, path, req)
}

// matchList returns the first route of list (in match order) that takes
// the request.
func matchList(list []*route, ep string, host, path string, req *http.Request) *route {
	for _, rt := range list {
		if rt.entryPoints != nil && !rt.entryPoints[ep] {
			continue
		}
		if !strings.HasPrefix(path, rt.prefix) {
			continue
		}
		if !hostMatches(rt, host) {
			continue
		}
		if rt.extra != nil && (req == nil || !rt.extra(req)) {
			continue
		}
		return rt
	}
	return nil
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

// hostOnly strips a port and a trailing dot and lowercases. It does not
// allocate for a host that is already lower case and has no port.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
