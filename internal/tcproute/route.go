// Package tcproute is zoku's layer-4 router: it reads the TLS ClientHello
// of a connection without consuming it (Peek), picks a TCP route by the
// server name (Table), and forwards the connection to a load-balanced,
// health-checked pool of TCP servers (Service, Pipe), with TLS passed
// through untouched or terminated by the caller. It also reads PROXY
// protocol headers from trusted load balancers (AcceptProxy) and writes
// them to servers (v1 or v2).
//
// The package knows nothing of entry points, certificates or HTTP: the
// router decides what to do with a connection no TCP route takes, and
// terminates TLS with its own certificates.
package tcproute

import (
	"strings"

	"github.com/zoku/zoku/internal/config"
)

// Route is one compiled config.TCPRoute.
type Route struct {
	// Name of the route in the config.
	Name string
	// SNI as written (lower case): "db.example.com", "*.example.com" or "*".
	SNI string
	// TLS is config.TLSPassthrough, config.TLSTerminate or "" (forward the
	// connection as it is).
	TLS string
	// Service is the name of the route's TCP service.
	Service string
}

// Table finds the TCP route of a connection on one entry point. It is
// immutable once built; a reload builds a new one.
//
// Precedence, first match wins: an exact server name; a wildcard
// ("*.example.com" covers one more label); the TLS catch-all (sni "*"
// with tls) for any TLS connection; the plain catch-all (sni "*" without
// tls) for any connection at all. A connection that matches nothing is the
// caller's (the router hands it to the entry point's HTTP server).
type Table struct {
	exact    map[string]*Route
	wildcard map[string]*Route // by suffix: ".example.com" for "*.example.com"
	tlsAll   *Route
	plainAll *Route
}

// NewTable compiles the TCP routes of cfg that listen on entry point ep;
// it returns nil when there are none. cfg must be valid (Load checked it).
func NewTable(cfg *config.Config, ep string) *Table {
	t := &Table{exact: map[string]*Route{}, wildcard: map[string]*Route{}}
	n := 0
	for name, rc := range cfg.TCPRoutes {
		if rc == nil || !contains(rc.EntryPoints, ep) {
			continue
		}
		n++
		r := &Route{Name: name, SNI: strings.ToLower(rc.SNI), TLS: rc.TLS, Service: rc.Service}
		switch {
		case r.SNI == "*" && r.TLS == "":
			t.plainAll = r
		case r.SNI == "*":
			t.tlsAll = r
		case strings.HasPrefix(r.SNI, "*."):
			t.wildcard[r.SNI[1:]] = r
		default:
			t.exact[r.SNI] = r
		}
	}
	if n == 0 {
		return nil
	}
	return t
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Match returns the route of a connection: a TLS one with server name
// sni (lower case, "" when the ClientHello had none), or one that is not
// TLS. It returns nil when no route takes the connection.
func (t *Table) Match(isTLS bool, sni string) *Route {
	if t == nil {
		return nil
	}
	if isTLS {
		if sni != "" {
			if r := t.exact[sni]; r != nil {
				return r
			}
			if i := strings.IndexByte(sni, '.'); i > 0 {
				if r := t.wildcard[sni[i:]]; r != nil {
					return r
				}
			}
		}
		if t.tlsAll != nil {
			return t.tlsAll
		}
	}
	return t.plainAll
}

// OnlyPlainCatchAll reports whether the table's one route is the plain
// catch-all, which takes every connection without looking at it: the
// caller may then forward at once, without waiting for the client to
// speak (which a server-speaks-first protocol such as SMTP never does).
func (t *Table) OnlyPlainCatchAll() bool {
	return t != nil && t.plainAll != nil && t.tlsAll == nil && len(t.exact) == 0 && len(t.wildcard) == 0
}

// Routes returns the table's routes (in no particular order).
func (t *Table) Routes() []*Route {
	if t == nil {
		return nil
	}
	var out []*Route
	for _, r := range t.exact {
		out = append(out, r)
	}
	for _, r := range t.wildcard {
		out = append(out, r)
	}
	for _, r := range []*Route{t.tlsAll, t.plainAll} {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}
