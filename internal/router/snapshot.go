package router

import (
	"sort"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// RouteInfo describes one live route, for the admin API.
type RouteInfo struct {
	Name        string   `json:"name"`
	Host        string   `json:"host"`
	PathPrefix  string   `json:"pathPrefix"`
	Priority    int      `json:"priority"`
	Service     string   `json:"service"`
	EntryPoints []string `json:"entryPoints,omitempty"`
	// Matchers are the conditions beyond host and path prefix, e.g.
	// "method GET,POST", "header X-Env=prod", "pathRegex ^/v[0-9]+/".
	Matchers []string `json:"matchers,omitempty"`
	// Middlewares as the route lists them (chains by name).
	Middlewares []string `json:"middlewares,omitempty"`
}

// ServiceInfo describes one live service and its servers' health.
type ServiceInfo struct {
	Name     string               `json:"name"`
	Strategy string               `json:"strategy,omitempty"`
	Static   bool                 `json:"static"`
	Servers  []proxy.ServerStatus `json:"servers"`
	// Kind is servers, static, failover, mirroring or weighted.
	Kind string `json:"kind,omitempty"`
	// Services a failover, mirroring or weighted service sends to.
	Services []string `json:"services,omitempty"`
	// Up: the service can take a request now (a server is up).
	Up bool `json:"up"`
}

// serverLister is what services with backends offer; *proxy.Service does.
type serverLister interface {
	Servers() []proxy.ServerStatus
}

// Snapshot returns the routes (in match order) and services (by name) of
// the running config.
func (r *Router) Snapshot() ([]RouteInfo, []ServiceInfo) {
	t := r.tab.Load()
	if t == nil {
		return nil, nil
	}
	routes := make([]RouteInfo, 0, len(t.routes))
	for _, rt := range t.routes {
		ri := RouteInfo{Name: rt.name, Host: rt.host, PathPrefix: rt.prefix, Priority: rt.priority, Service: rt.service,
			Matchers: rt.matchers, Middlewares: rt.middlewares}
		if rt.pathKind == pathExact {
			ri.PathPrefix = "/"
			if rc := t.cfg.Routes[rt.name]; rc != nil {
				ri.PathPrefix = rc.PathPrefix
			}
		}
		for ep := range rt.entryPoints {
			ri.EntryPoints = append(ri.EntryPoints, ep)
		}
		sort.Strings(ri.EntryPoints)
		routes = append(routes, ri)
	}
	services := make([]ServiceInfo, 0, len(t.services))
	for name, svc := range t.services {
		si := ServiceInfo{Name: name, Servers: []proxy.ServerStatus{}}
		if sc := t.cfg.Services[name]; sc != nil {
			si.Strategy, si.Static = sc.Strategy, sc.Static != nil
			si.Kind, si.Services = sc.Kind(), sc.Children()
			if len(si.Services) > 0 {
				si.Strategy = ""
			}
		}
		if sl, ok := svc.(serverLister); ok {
			si.Servers = sl.Servers()
		}
		si.Up = true
		if a, ok := svc.(interface{ Available() bool }); ok {
			si.Up = a.Available()
		}
		services = append(services, si)
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	return routes, services
}

// Config returns the running config (nil before the first Apply).
func (r *Router) Config() *config.Config {
	t := r.tab.Load()
	if t == nil {
		return nil
	}
	return t.cfg
}
