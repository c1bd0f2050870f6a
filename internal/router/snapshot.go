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
}

// ServiceInfo describes one live service and its servers' health.
type ServiceInfo struct {
	Name     string               `json:"name"`
	Strategy string               `json:"strategy,omitempty"`
	Static   bool                 `json:"static"`
	Servers  []proxy.ServerStatus `json:"servers"`
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
		ri := RouteInfo{Name: rt.name, Host: rt.host, PathPrefix: rt.prefix, Priority: rt.priority, Service: rt.service}
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
		}
		if sl, ok := svc.(serverLister); ok {
			si.Servers = sl.Servers()
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
