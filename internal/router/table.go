package router

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/middleware"
)

// route is one compiled config.Route: everything the request path needs,
// resolved once when the config is applied.
type route struct {
	name        string
	host        string // exact, or "*.domain"; "" with hostRe
	wildcard    bool
	hostRe      *regexp.Regexp // hostRegex; nil for host routes
	pathKind    int            // pathExact, pathRegex or pathPrefix, for precedence
	nconds      int            // conditions in extra, for precedence
	matchers    []string       // the conditions beyond host and prefix, as shown
	middlewares []string       // names, as the config lists them
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
	// redirect, when set, answers the route's requests with a redirect
	// (a source's route, such as a Gateway API RequestRedirect filter).
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
	// hosts indexes routes by host for constant-time lookup: "a.b.c" for
	// exact hosts (its list also holds the wildcard routes that cover it,
	// merged in match order), ".b.c" for the wildcard routes "*.b.c".
	hosts map[string][]*route
	// eps are the entry points' compiled plans, indexed by the router's
	// entry point index; nil for entry points not in this config.
	eps []*epPlan
	// anyHost are the routes whose host is a regex, in match order;
	// every list of hosts also holds them, merged in (see indexHosts).
	anyHost []*route
	// mws are the middlewares the routes' request paths run, by name;
	// closed when the table is swapped out.
	mws map[string]middleware.Middleware
	// err is the first route that did not compile (a regex; Validate
	// catches it first in a loaded config).
	err error
	// l4 is the layer-4 and TLS state (l4.go): TCP routes and services,
	// PROXY protocol, HTTP/3 and client certificate checks; nil in tables
	// built without Apply.
	l4 *l4State
}

// Kinds of path condition, in order of precedence.
const (
	pathExact = iota
	pathRegex
	pathPrefix
)

// hostRank orders host kinds: exact, wildcard, regex.
func (rt *route) hostRank() int {
	switch {
	case rt.hostRe != nil:
		return 2
	case rt.wildcard:
		return 1
	}
	return 0
}

// compileRoutes orders routes: higher priority, then exact host before
// wildcard before host regex, then exact path before path regex before
// prefix, then longer path prefix, then more conditions, then name (so
// the order is stable). A route whose conditions do not compile never
// matches; compileRoutesErr reports it.
func compileRoutes(cfg *config.Config) []*route {
	out, _ := compileRoutesErr(cfg)
	return out
}

// never is the extra matcher of a route whose conditions did not compile.
func never(*http.Request) bool { return false }

func compileRoutesErr(cfg *config.Config) ([]*route, error) {
	var firstErr error
	out := make([]*route, 0, len(cfg.Routes))
	for name, r := range cfg.Routes {
		rt := &route{
			name: name, host: strings.ToLower(r.Host), prefix: r.PathPrefix, priority: r.Priority, service: r.Service,
			pathKind: pathPrefix, middlewares: r.Middlewares,
		}
		if rt.prefix == "" {
			rt.prefix = "/"
		}
		rt.wildcard = strings.HasPrefix(rt.host, "*.")
		if r.Host == "" && r.HostRegex != "" {
			re, err := regexp.Compile(r.HostRegex)
			if err != nil {
				re = regexp.MustCompile(`^\b$`) // matches no host
				if firstErr == nil {
					firstErr = fmt.Errorf("router: route %q: hostRegex: %w", name, err)
				}
			}
			rt.hostRe = re
		}
		switch {
		case r.Path != "":
			rt.pathKind, rt.prefix = pathExact, r.Path
		case r.PathRegex != "":
			rt.pathKind = pathRegex
		}
		extra, n, shown, err := compileMatchers(r)
		if err != nil {
			extra = never
			if firstErr == nil {
				firstErr = fmt.Errorf("router: route %q: %w", name, err)
			}
		}
		rt.extra, rt.nconds, rt.matchers = extra, n, shown
		if len(r.EntryPoints) > 0 {
			rt.entryPoints = map[string]bool{}
			for _, ep := range r.EntryPoints {
				rt.entryPoints[ep] = true
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
		if ha, hb := a.hostRank(), b.hostRank(); ha != hb {
			return ha < hb
		}
		if a.pathKind != b.pathKind {
			return a.pathKind < b.pathKind
		}
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
		if a.nconds != b.nconds {
			return a.nconds > b.nconds
		}
		return a.name < b.name
	})
	for i, rt := range out {
		rt.order = i
	}
	return out, firstErr
}

// newTable compiles cfg's routes and indexes them by host.
func newTable(cfg *config.Config) *table {
	routes, err := compileRoutesErr(cfg)
	t := &table{cfg: cfg, routes: routes, err: err}
	t.hosts, t.anyHost = indexHosts(t.routes)
	return t
}

// indexHosts builds the host index of routes (given in match order). Each
// exact host's list also carries the wildcard routes covering it, so a
// lookup reads one list; a host without exact routes falls back to its
// wildcard list, and one without either to the host-regex routes (any).
// Every list carries the host-regex routes too, merged in match order.
func indexHosts(routes []*route) (hosts map[string][]*route, anyHost []*route) {
	hosts = make(map[string][]*route, len(routes))
	for _, rt := range routes { // in match order, so every list is too
		if rt.hostRe != nil {
			anyHost = append(anyHost, rt)
			continue
		}
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
	if len(anyHost) > 0 {
		for h, list := range hosts {
			hosts[h] = mergeOrdered(list, anyHost)
		}
	}
	return hosts, anyHost
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
		if w := parentOf(host); w != "" {
			list, ok = t.hosts[w]
		}
		if !ok {
			list = t.anyHost
		}
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
	if rt.hostRe != nil {
		return rt.hostRe.MatchString(host)
	}
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
