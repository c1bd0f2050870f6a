package router

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/zoku/zoku/internal/config"
)

// Client certificates.
//
// On an entry point, clientAuth is part of every handshake: require
// refuses a client without a certificate that verifies against the CA
// bundle, optional asks for one and refuses only one that does not
// verify. On a route it is checked per request, since TLS runs before
// the request names its route: a handshake whose server name (SNI) a
// route with clientAuth covers asks for a certificate (verified against
// the bundles of the entry point and of those routes), and each request
// of the route must then carry a certificate that chains to the route's
// own bundle. A request that lacks one gets 403, or 421 Misdirected
// Request when its connection was made for another name (an HTTP/2
// connection reused for a second host never asked for a certificate; the
// client retries on a new connection). On an entry point without tls the
// route answers 403.
//
// The verified certificate's subject (RFC 4514) goes to the backend in
// the policy's subject header; a header of that name sent by the client
// is always removed first.

// authPolicy is one compiled config.ClientAuth.
type authPolicy struct {
	require bool
	pool    *x509.CertPool
	anchors map[string]bool // DER of every certificate in the bundle
	header  string          // canonical
}

func newAuthPolicy(ca *config.ClientAuth) (*authPolicy, error) {
	p := &authPolicy{require: ca.Mode != config.ClientAuthOptional, pool: x509.NewCertPool(), anchors: map[string]bool{},
		header: textproto.CanonicalMIMEHeaderKey(ca.SubjectHeader)}
	for _, f := range ca.CAFiles {
		certs, err := config.ReadPEMCertificates(f)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			p.pool.AddCert(c)
			p.anchors[string(c.Raw)] = true
		}
	}
	return p, nil
}

// apply sets tc to ask for client certificates under p.
func (p *authPolicy) apply(tc *tls.Config) {
	tc.ClientCAs = p.pool
	if p.require {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	} else {
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
}

// verified returns the leaf of the first verified chain of cs that runs
// through a certificate of p's bundle, or nil.
func (p *authPolicy) verified(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil {
		return nil
	}
	for _, chain := range cs.VerifiedChains {
		for _, c := range chain[1:] {
			if p.anchors[string(c.Raw)] {
				return chain[0]
			}
		}
		if len(chain) == 1 && p.anchors[string(chain[0].Raw)] {
			return chain[0]
		}
	}
	return nil
}

// epEdge is what an entry point's request path adds to routing: the
// Alt-Svc advertisement of HTTP/3 and the client certificate checks.
type epEdge struct {
	altSvc []string // the Alt-Svc value, shared; nil: none
	// auth is the entry point's own policy (the handshake enforced it;
	// here it only names the header).
	auth *authPolicy
	// routes are the policies of routes with clientAuth, by route name.
	routes map[string]*authPolicy
	// strip are the subject headers removed from every request.
	strip []string
}

// serve runs the edge checks of a request on entry point ep of table t;
// it reports false when it answered the request itself.
func (e *epEdge) serve(w http.ResponseWriter, req *http.Request, t *table, ep string) bool {
	if e.altSvc != nil && req.TLS != nil && req.ProtoMajor < 3 {
		w.Header()["Alt-Svc"] = e.altSvc
	}
	for _, h := range e.strip {
		delete(req.Header, h)
	}
	pol := e.auth
	if pol != nil && pol.require && pol.verified(req.TLS) == nil {
		// A connection made before a reload required certificates (the
		// handshake enforces it on every new one).
		refuse(w, req, hostOnly(req.Host))
		return false
	}
	if len(e.routes) > 0 {
		host := hostOnly(req.Host)
		if rt := t.matchHost(ep, host, req.URL.Path, req); rt != nil && e.routes[rt.name] != nil {
			pol = e.routes[rt.name]
			leaf := pol.verified(req.TLS)
			if leaf == nil && (pol.require || (req.TLS != nil && len(req.TLS.PeerCertificates) > 0)) {
				refuse(w, req, host)
				return false
			}
		}
	}
	if pol != nil {
		if leaf := pol.verified(req.TLS); leaf != nil {
			req.Header[pol.header] = []string{headerSafe(leaf.Subject.String())}
		}
	}
	return true
}

// refuse answers a request that lacks the client certificate its route
// requires.
func refuse(w http.ResponseWriter, req *http.Request, host string) {
	if req.TLS != nil && req.TLS.ServerName != "" && !strings.EqualFold(strings.TrimSuffix(req.TLS.ServerName, "."), host) {
		http.Error(w, "421 misdirected request: this connection was made for "+req.TLS.ServerName+"; connect again for "+host, http.StatusMisdirectedRequest)
		return
	}
	http.Error(w, "403 forbidden: this route requires a client certificate signed by its CA", http.StatusForbidden)
}

// headerSafe quotes control characters, which a header value cannot hold.
func headerSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			q := strconv.QuoteToASCII(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// helloConfigs are the TLS configs of one entry point whose handshakes
// ask for client certificates: by server name for names that routes with
// clientAuth cover, and def for the rest.
type helloConfigs struct {
	def      *tls.Config
	exact    map[string]*tls.Config
	wildcard map[string]*tls.Config // by suffix, ".example.com"
}

// pick returns the config of a handshake for server name sni.
func (h *helloConfigs) pick(sni string) *tls.Config {
	if len(h.exact) > 0 || len(h.wildcard) > 0 {
		name := hostOnly(sni)
		if c := h.exact[name]; c != nil {
			return c
		}
		if c := h.wildcard[parentOf(name)]; c != nil {
			return c
		}
	}
	return h.def
}

// buildEdge compiles entry point name's edge checks and handshake configs
// from t's config (t.tls built); both are nil when it has none.
func (r *Router) buildEdge(t *table, name string, epc *config.EntryPoint) (*epEdge, *helloConfigs, error) {
	cfg := t.cfg
	e := &epEdge{}
	if h := epc.HTTP3; h != nil && epc.TLS != nil {
		e.altSvc = []string{altSvcValue(h, epc.Port())}
	}
	strip := map[string]bool{}
	if ca := epc.ClientAuth; ca != nil && epc.TLS != nil {
		p, err := newAuthPolicy(ca)
		if err != nil {
			return nil, nil, fmt.Errorf("router: entry point %q: clientAuth: %w", name, err)
		}
		e.auth = p
		strip[p.header] = true
	}
	// Route policies, and which server names they cover.
	type cover struct {
		host string
		pol  *authPolicy
	}
	var covers []cover
	for rname, rc := range cfg.Routes {
		if rc == nil || rc.ClientAuth == nil || !servedOn(rc, name) {
			continue
		}
		p, err := newAuthPolicy(rc.ClientAuth)
		if err != nil {
			return nil, nil, fmt.Errorf("router: route %q: clientAuth: %w", rname, err)
		}
		if e.routes == nil {
			e.routes = map[string]*authPolicy{}
		}
		e.routes[rname] = p
		strip[p.header] = true
		covers = append(covers, cover{strings.ToLower(rc.Host), p})
	}
	for h := range strip {
		e.strip = append(e.strip, h)
	}
	var hello *helloConfigs
	if base := t.tls[name]; base != nil && (e.auth != nil || len(covers) > 0) {
		hello = &helloConfigs{def: base, exact: map[string]*tls.Config{}, wildcard: map[string]*tls.Config{}}
		if e.auth != nil {
			hello.def = base.Clone()
			e.auth.apply(hello.def)
		}
		// One config per name a route covers: the entry point's bundle
		// and those of every route the name may reach.
		pools := map[string][]*authPolicy{}
		for _, c := range covers {
			if strings.HasPrefix(c.host, "*.") {
				pools[c.host[1:]] = append(pools[c.host[1:]], c.pol)
			} else {
				pools[c.host] = append(pools[c.host], c.pol)
			}
		}
		for key, pols := range pools {
			if !strings.HasPrefix(key, ".") {
				pols = append(pols, pools[parentOf(key)]...)
			}
			tc := base.Clone()
			all := &authPolicy{require: e.auth != nil && e.auth.require, pool: x509.NewCertPool()}
			if e.auth != nil {
				pols = append(pols, e.auth)
			}
			for _, p := range pols {
				addPool(all.pool, p)
			}
			all.apply(tc)
			if strings.HasPrefix(key, ".") {
				hello.wildcard[key] = tc
			} else {
				hello.exact[key] = tc
			}
		}
	}
	if e.altSvc == nil && e.auth == nil && e.routes == nil {
		return nil, hello, nil
	}
	return e, hello, nil
}

// addPool adds p's bundle to pool.
func addPool(pool *x509.CertPool, p *authPolicy) {
	for der := range p.anchors {
		if c, err := x509.ParseCertificate([]byte(der)); err == nil {
			pool.AddCert(c)
		}
	}
}

// servedOn reports whether route rc is served on entry point ep.
func servedOn(rc *config.Route, ep string) bool {
	for _, e := range rc.EntryPoints {
		if e == ep {
			return true
		}
	}
	return false
}
