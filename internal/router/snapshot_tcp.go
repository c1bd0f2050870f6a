package router

import (
	"sort"

	"github.com/zoku/zoku/internal/tcproute"
)

// TCPRouteInfo describes one live TCP route, for the admin API.
type TCPRouteInfo struct {
	Name string `json:"name"`
	// SNI is the server name, "*.domain" or "*".
	SNI string `json:"sni"`
	// TLS is passthrough, terminate or none.
	TLS         string   `json:"tls"`
	Service     string   `json:"service"`
	EntryPoints []string `json:"entryPoints"`
}

// TCPServiceInfo describes one live TCP service and its servers' health.
type TCPServiceInfo struct {
	Name     string                  `json:"name"`
	Strategy string                  `json:"strategy"`
	Servers  []tcproute.ServerStatus `json:"servers"`
}

// TCPSnapshot returns the TCP routes and services of the running config,
// by name.
func (r *Router) TCPSnapshot() ([]TCPRouteInfo, []TCPServiceInfo) {
	t := r.tab.Load()
	routes, services := []TCPRouteInfo{}, []TCPServiceInfo{}
	if t == nil {
		return routes, services
	}
	for name, rc := range t.cfg.TCPRoutes {
		if rc == nil {
			continue
		}
		eps := append([]string{}, rc.EntryPoints...)
		sort.Strings(eps)
		routes = append(routes, TCPRouteInfo{Name: name, SNI: rc.SNI, TLS: tlsMode(rc.TLS), Service: rc.Service, EntryPoints: eps})
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].Name < routes[j].Name })
	if t.l4 != nil {
		for name, svc := range t.l4.services {
			si := TCPServiceInfo{Name: name, Servers: svc.Servers()}
			if sc := t.cfg.TCPServices[name]; sc != nil {
				si.Strategy = sc.Strategy
			}
			services = append(services, si)
		}
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	return routes, services
}
