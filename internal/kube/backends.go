package kube

import (
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/zoku/zoku/internal/config"
)

// Annotations of a Service that tune the zoku service made of it
// (docs/kubernetes.md).
const (
	annStrategy       = "zoku.dev/strategy"
	annHealthPath     = "zoku.dev/health-check-path"
	annHealthInterval = "zoku.dev/health-check-interval"
	annHealthTimeout  = "zoku.dev/health-check-timeout"
)

// backendRef is a Service and one of its ports, by number or name.
type backendRef struct {
	ns, name string
	port     int32
	portName string
}

func (r backendRef) String() string {
	p := r.portName
	if p == "" {
		p = strconv.Itoa(int(r.port))
	}
	return r.ns + "/" + r.name + ":" + p
}

// servers returns the servers of a backend: the ready addresses of the
// Service's EndpointSlices at the target port, or its ExternalName. A
// Service with no ready endpoint has no servers (and no error).
func (b *builder) servers(ref backendRef) ([]config.Server, *corev1.Service, error) {
	svc := b.snap.services[ref.ns+"/"+ref.name]
	if svc == nil {
		return nil, nil, fmt.Errorf("Service %s/%s not found", ref.ns, ref.name)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (ref.portName != "" && p.Name == ref.portName) || (ref.portName == "" && p.Port == ref.port) {
			sp = p
			break
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		port := ref.port
		if sp != nil {
			port = sp.Port
			if sp.TargetPort.IntVal > 0 {
				port = sp.TargetPort.IntVal
			}
		}
		if port == 0 {
			return nil, svc, fmt.Errorf("Service %s/%s is an ExternalName without port %q; name the port by number", ref.ns, ref.name, ref.portName)
		}
		u := scheme(sp) + "://" + net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(port)))
		return []config.Server{{URL: u}}, svc, nil
	}
	if sp == nil {
		return nil, svc, fmt.Errorf("Service %s/%s has no port %s", ref.ns, ref.name, ref.portOrName())
	}
	var out []config.Server
	seen := map[string]bool{}
	for _, es := range b.snap.slices[ref.ns+"/"+ref.name] {
		port := int32(0)
		for _, p := range es.Ports {
			if p.Port != nil && ptrStr(p.Name) == sp.Name {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			for _, a := range ep.Addresses {
				u := scheme(sp) + "://" + net.JoinHostPort(a, strconv.Itoa(int(port)))
				if !seen[u] {
					seen[u] = true
					out = append(out, config.Server{URL: u})
				}
			}
		}
	}
	return out, svc, nil
}

// scheme is https for a port whose appProtocol says so, else http.
func scheme(sp *corev1.ServicePort) string {
	if sp != nil && sp.AppProtocol != nil && (*sp.AppProtocol == "https" || *sp.AppProtocol == "kubernetes.io/https") {
		return "https"
	}
	return "http"
}

func ptrStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// service returns the name of the zoku service for a backend, making it
// on first use: its ready endpoints, or a static 503 when it has none.
func (b *builder) service(owner string, ref backendRef) (string, error) {
	n := name("svc", ref.ns, ref.name, ref.portOrName())
	if _, ok := b.res.dyn.Services[n]; ok {
		return n, nil
	}
	if _, ok := b.cur.Services[n]; ok {
		return n, nil
	}
	servers, svc, err := b.servers(ref)
	if err != nil {
		return "", err
	}
	s, err := serviceOf(servers, svc)
	if err != nil {
		return "", err
	}
	b.cur.Services[n] = s
	b.cur.Owners["services."+n] = owner
	return n, nil
}

func (r backendRef) portOrName() string {
	if r.portName != "" {
		return r.portName
	}
	return strconv.Itoa(int(r.port))
}

// serviceOf makes a zoku service of servers, tuned by the Service's
// annotations; without servers it answers 503.
func serviceOf(servers []config.Server, svc *corev1.Service) (*config.Service, error) {
	if len(servers) == 0 {
		return &config.Service{Static: &config.Static{Status: 503, Body: "no ready endpoint\n"}}, nil
	}
	s := &config.Service{Servers: servers}
	if svc == nil {
		return s, nil
	}
	a := svc.Annotations
	s.Strategy = a[annStrategy]
	if p, ok := a[annHealthPath]; ok {
		s.HealthCheck = &config.HealthCheck{Path: p}
		for _, d := range []struct {
			key string
			to  *config.Duration
		}{{annHealthInterval, &s.HealthCheck.Interval}, {annHealthTimeout, &s.HealthCheck.Timeout}} {
			if v, ok := a[d.key]; ok {
				dur, err := time.ParseDuration(v)
				if err != nil || dur <= 0 {
					return nil, fmt.Errorf("annotation %s of Service %s/%s: %q is not a duration such as 10s", d.key, svc.Namespace, svc.Name, v)
				}
				*d.to = config.Duration(dur)
			}
		}
	}
	return s, nil
}
