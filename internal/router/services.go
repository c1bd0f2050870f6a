package router

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
	"github.com/zoku/zoku/internal/proxy/health"
)

// anyPeer is handed to the proxy as its trusted set: the router has already
// removed X-Forwarded-* from peers its entry point does not trust, so what
// is left is to be kept and extended.
var anyPeer = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// proxyServices builds proxy.Services sharing one health registry, owned
// by the router that calls it.
func proxyServices(logger *slog.Logger) ServiceFactory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := health.NewRegistry()
	return func(name string, cfg *config.Service) (Service, error) {
		return proxy.NewService(name, cfg, reg, proxy.Options{TrustedProxies: anyPeer, Logger: logger, HoldChecks: true})
	}
}

// buildServices builds every service of cfg: those with servers or a
// static reply through the factory, then failover, mirroring and weighted
// services over them (children first; Validate refused cycles). On error
// the services built so far are closed.
func (r *Router) buildServices(cfg *config.Config) (map[string]Service, error) {
	services := make(map[string]Service, len(cfg.Services))
	fail := func(name string, err error) (map[string]Service, error) {
		closeServices(services)
		return nil, fmt.Errorf("router: service %q: %w", name, err)
	}
	var composite []string
	for name, sc := range cfg.Services {
		if sc != nil && len(sc.Children()) > 0 {
			composite = append(composite, name)
			continue
		}
		s, err := r.deps.Services(name, sc)
		if err != nil {
			return fail(name, err)
		}
		services[name] = s
	}
	sort.Strings(composite)
	for len(composite) > 0 {
		progress := false
		rest := composite[:0]
		for _, name := range composite {
			sc := cfg.Services[name]
			ready := true
			for _, c := range sc.Children() {
				if services[c] == nil {
					ready = false
				}
			}
			if !ready {
				rest = append(rest, name)
				continue
			}
			s, err := r.composite(name, sc, services)
			if err != nil {
				return fail(name, err)
			}
			services[name], progress = s, true
		}
		composite = rest
		if !progress {
			return fail(composite[0], fmt.Errorf("it names a service that is missing or reaches itself"))
		}
	}
	return services, nil
}

// composite builds a failover, mirroring or weighted service over the
// services already built.
func (r *Router) composite(name string, sc *config.Service, services map[string]Service) (Service, error) {
	child := func(n string) proxy.Child { return asChild(services[n]) }
	switch {
	case sc.Failover != nil:
		return proxy.NewFailover(name, child(sc.Failover.Service), child(sc.Failover.Fallback)), nil
	case sc.Mirroring != nil:
		m := sc.Mirroring
		var mirrors []proxy.MirrorChild
		for _, mr := range m.Mirrors {
			pct := 100
			if mr.Percent != nil {
				pct = *mr.Percent
			}
			mirrors = append(mirrors, proxy.MirrorChild{Child: child(mr.Service), Percent: pct})
		}
		maxBody, inFlight := m.MaxBodyBytes, m.MaxInFlight
		if maxBody <= 0 {
			maxBody = config.DefaultMirrorMaxBody
		}
		if inFlight <= 0 {
			inFlight = config.DefaultMirrorMaxInFlight
		}
		return proxy.NewMirroring(name, child(m.Service), mirrors, maxBody, inFlight, r.deps.Logger), nil
	case sc.Weighted != nil:
		var children []proxy.WeightedChild
		for _, ws := range sc.Weighted.Services {
			children = append(children, proxy.WeightedChild{Name: ws.Service, Child: child(ws.Service), Weight: ws.Weight})
		}
		return proxy.NewWeighted(name, children, sc.Sticky), nil
	}
	return nil, fmt.Errorf("unknown kind")
}

// asChild adapts a Service without ServeWithStats (a test factory's) to
// proxy.Child.
func asChild(s Service) proxy.Child {
	if c, ok := s.(proxy.Child); ok {
		return c
	}
	return handlerChild{s}
}

type handlerChild struct{ Service }

func (h handlerChild) ServeWithStats(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
	serveOf(h.Service)(w, r, st)
}

// Available passes the service's own answer on, when it has one.
func (h handlerChild) Available() bool {
	if a, ok := h.Service.(interface{ Available() bool }); ok {
		return a.Available()
	}
	return true
}

func closeServices(m map[string]Service) {
	for _, s := range m {
		_ = s.Close()
	}
}

// startChecks starts the active health checks of services, held until
// the entry points listen (a server may be one of them).
func startChecks(services map[string]Service) {
	for _, svc := range services {
		if c, ok := svc.(interface{ StartChecks() }); ok {
			c.StartChecks()
		}
	}
}
