package router

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// serveFunc is a route's request path. It fills st (the server chosen,
// tries, upstream time) before it returns.
type serveFunc func(w http.ResponseWriter, r *http.Request, st *proxy.Stats)

// statsServer is a Service that reports its Stats directly instead of
// through the request context; *proxy.Service is one.
type statsServer interface {
	ServeWithStats(w http.ResponseWriter, r *http.Request, st *proxy.Stats)
}

// serveOf returns svc's request path: its ServeWithStats when it has one,
// otherwise ServeHTTP with the Stats in the request context. A nil svc
// answers 502 (a route naming a service that failed to build never gets
// here: Apply refuses the config).
func serveOf(svc Service) serveFunc {
	if ss, ok := svc.(statsServer); ok {
		return ss.ServeWithStats
	}
	if svc == nil {
		return func(w http.ResponseWriter, _ *http.Request, _ *proxy.Stats) {
			http.Error(w, "bad gateway: the route's service is missing", http.StatusBadGateway)
		}
	}
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		ctx, s := proxy.WithStats(r.Context())
		svc.ServeHTTP(w, r.WithContext(ctx))
		*st = *s
	}
}

// epPlan is an entry point's request path compiled from its config when
// the config is applied, so that requests only read it.
type epPlan struct {
	name string
	// redirect: answer every request with a redirect to the target below.
	redirect       bool
	redirectScheme string
	redirectPort   string // ":8443", or "" for the scheme's default port
	redirectCode   int
	// trusted are the peers whose X-Forwarded-* headers are kept.
	trusted []netip.Prefix
	// hsts is the Strict-Transport-Security value, shared by every
	// response (its capacity is its length, so an append copies); nil:
	// none.
	hsts    []string
	maxBody int64
}

// compileEntryPoint builds the plan of entry point name.
func compileEntryPoint(cfg *config.Config, name string, epc *config.EntryPoint) (*epPlan, error) {
	p := &epPlan{name: name, maxBody: epc.MaxBodyBytes}
	if epc.Redirect != nil {
		scheme, port, code := cfg.RedirectTarget(epc)
		p.redirect, p.redirectScheme, p.redirectCode = true, scheme, code
		if !(scheme == "https" && port == 443) && !(scheme == "http" && port == 80) && port != 0 {
			p.redirectPort = ":" + strconv.Itoa(port)
		}
	}
	if len(epc.TrustedProxies) > 0 {
		tp, err := proxy.ParseTrustedProxies(epc.TrustedProxies)
		if err != nil {
			return nil, fmt.Errorf("router: entry point %q: %w", name, err)
		}
		p.trusted = tp
	}
	if epc.TLS != nil && epc.HSTS != nil {
		p.hsts = slices.Clip([]string{hstsValue(epc.HSTS)})
	}
	return p, nil
}

// trusts reports whether the peer at remote (ip:port) is a trusted proxy.
func (p *epPlan) trusts(remote string) bool {
	if len(p.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, pfx := range p.trusted {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// epIndex returns the stable index of entry point name, assigning one on
// first use; compiled tables keep their plans in a slice by this index.
func (r *Router) epIndex(name string) int {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	if i, ok := r.epIdx[name]; ok {
		return i
	}
	if r.epIdx == nil {
		r.epIdx = map[string]int{}
	}
	i := len(r.epIdx)
	r.epIdx[name] = i
	return i
}

// compile finishes a table for cfg: per-entry-point plans and each
// route's request path.
func (r *Router) compile(t *table) error {
	for name, epc := range t.cfg.EntryPoints {
		p, err := compileEntryPoint(t.cfg, name, epc)
		if err != nil {
			return err
		}
		i := r.epIndex(name)
		if i >= len(t.eps) {
			t.eps = append(t.eps, make([]*epPlan, i+1-len(t.eps))...)
		}
		t.eps[i] = p
	}
	if t.err != nil {
		return t.err
	}
	serves := make(map[string]serveFunc, len(t.services))
	for name, svc := range t.services {
		serves[name] = serveOf(svc)
	}
	for _, rt := range t.routes {
		rt.serve = serves[rt.service]
		if rt.redirect != nil {
			rt.serve = redirectServe(rt.redirect) // redirect.go
		}
	}
	return r.compileMiddlewares(t, serves) // chains.go
}

// plan returns entry point ep's plan (index idx) in t, or nil when t's
// config does not have it. A table built without plans (in tests) gets
// one compiled on the spot.
func (t *table) plan(idx int, ep string) *epPlan {
	if t.eps != nil {
		if idx < len(t.eps) {
			return t.eps[idx]
		}
		return nil
	}
	epc := t.cfg.EntryPoints[ep]
	if epc == nil {
		return nil
	}
	p, err := compileEntryPoint(t.cfg, ep, epc)
	if err != nil {
		return nil
	}
	return p
}
