package kube

import (
	"fmt"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/zoku/zoku/internal/config"
)

// Annotations of an Ingress where the Ingress has no field
// (docs/kubernetes.md lists them).
const (
	// annIngressClass is the legacy way to name the class.
	annIngressClass = "kubernetes.io/ingress.class"
	// annDefaultClass marks the IngressClass for Ingresses that name none.
	annDefaultClass = "ingressclass.kubernetes.io/is-default-class"
	// annSSLRedirect "true" redirects plain HTTP to the TLS entry point.
	annSSLRedirect = "zoku.dev/ssl-redirect"
	// annRedirectCode is the redirect's status (default 308).
	annRedirectCode = "zoku.dev/redirect-code"
	// annIssuer picks the CA of the Ingress's ACME certificates: the
	// server of certificates.acme or of one of certificates.issuers.
	annIssuer = "zoku.dev/issuer"
	// annEntryPoints restricts the routes to some entry points ("web,websecure").
	annEntryPoints = "zoku.dev/entry-points"
	// annPriority orders overlapping routes (higher first).
	annPriority = "zoku.dev/priority"
	// annMiddlewares is reserved for the router's middlewares.
	annMiddlewares = "zoku.dev/middlewares"
)

// ours reports whether an Ingress is of zoku's class.
func (b *builder) ours(ing *networkingv1.Ingress) bool {
	if c := ing.Spec.IngressClassName; c != nil {
		return *c == b.set.ingressClass
	}
	if c, ok := ing.Annotations[annIngressClass]; ok {
		return c == b.set.ingressClass
	}
	for _, ic := range b.snap.ingressClasses {
		if ic.Name == b.set.ingressClass && ic.Annotations[annDefaultClass] == "true" {
			return true
		}
	}
	return false
}

func (b *builder) ingresses() {
	for _, ing := range b.snap.ingresses {
		if !b.ours(ing) {
			continue
		}
		owner := "ingress " + ing.Namespace + "/" + ing.Name
		b.begin()
		b.ingress(owner, ing)
		if b.end(owner) {
			b.res.ingresses = append(b.res.ingresses, ing)
		}
	}
}

// ingressOptions are an Ingress's annotations, checked.
type ingressOptions struct {
	entryPoints []string
	priority    int
	redirect    *config.RouteRedirect
	issuer      string
}

func (b *builder) ingressOptions(owner string, ing *networkingv1.Ingress) (ingressOptions, bool) {
	var o ingressOptions
	a := ing.Annotations
	ok := true
	if v, has := a[annMiddlewares]; has && v != "" {
		b.problem(owner, "annotation %s is reserved for the router's middlewares, which zoku does not have yet; remove it", annMiddlewares)
		ok = false
	}
	if v := a[annEntryPoints]; v != "" {
		for _, e := range strings.Split(v, ",") {
			e = strings.TrimSpace(e)
			if !b.hasEntryPoint(e) {
				b.problem(owner, "annotation %s: no entry point named %q in zoku's config", annEntryPoints, e)
				ok = false
			}
			o.entryPoints = append(o.entryPoints, e)
		}
	}
	if v := a[annPriority]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.problem(owner, "annotation %s: %q is not a whole number", annPriority, v)
			ok = false
		}
		o.priority = n
	}
	if v := a[annSSLRedirect]; v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			b.problem(owner, "annotation %s: %q is not true or false", annSSLRedirect, v)
			ok = false
		}
		if on {
			o.redirect = &config.RouteRedirect{Scheme: "https", StatusCode: 308}
			tlsEPs := b.entryPointsFor(0, true)
			if len(tlsEPs) == 0 {
				b.problem(owner, "annotation %s: zoku's config has no TLS entry point to redirect to", annSSLRedirect)
				ok = false
			} else if p := b.port(tlsEPs[0]); p != 443 {
				o.redirect.Port = p
			}
			if c := a[annRedirectCode]; c != "" {
				n, err := strconv.Atoi(c)
				if err != nil || (n != 301 && n != 302 && n != 303 && n != 307 && n != 308) {
					b.problem(owner, "annotation %s: %q is not 301, 302, 303, 307 or 308", annRedirectCode, c)
					ok = false
				}
				o.redirect.StatusCode = n
			}
		}
	}
	o.issuer = a[annIssuer]
	return o, ok
}

func (b *builder) hasEntryPoint(n string) bool {
	for _, ep := range b.set.entryPoints {
		if ep.name == n {
			return true
		}
	}
	return false
}

func (b *builder) port(ep string) int {
	for _, e := range b.set.entryPoints {
		if e.name == ep {
			return e.port
		}
	}
	return 0
}

func (b *builder) ingress(owner string, ing *networkingv1.Ingress) {
	o, ok := b.ingressOptions(owner, ing)
	if !ok {
		return
	}
	// TLS: a Secret serves its hosts; hosts without one get ACME.
	secretHosts := map[string]bool{}
	var acmeHosts []string
	for i, t := range ing.Spec.TLS {
		for _, h := range t.Hosts {
			if !hostOK(strings.ToLower(h)) {
				b.problem(owner, "tls[%d]: %q is not a host name", i, h)
			}
		}
		if t.SecretName == "" {
			acmeHosts = append(acmeHosts, t.Hosts...)
			continue
		}
		if why := b.pinSecret(owner, ing.Namespace, t.SecretName); why != "" {
			b.problem(owner, "tls[%d]: %s", i, why)
			continue
		}
		for _, h := range t.Hosts {
			secretHosts[strings.ToLower(h)] = true
		}
	}
	servedTLS := len(b.entryPointsFor(0, true)) > 0
	if len(o.entryPoints) > 0 {
		servedTLS = false
		for _, e := range o.entryPoints {
			servedTLS = servedTLS || hasString(b.entryPointsFor(0, true), e)
		}
	}
	var hosts []string
	for ri, rule := range ing.Spec.Rules {
		host := strings.ToLower(rule.Host)
		if host == "" {
			b.problem(owner, "rules[%d] has no host; zoku routes by host name: give the rule a host (\"*.example.com\" for a wildcard)", ri)
			continue
		}
		if !hostOK(host) {
			b.problem(owner, "rules[%d]: %q is not a host name", ri, rule.Host)
			continue
		}
		hosts = append(hosts, host)
		if rule.HTTP == nil {
			continue
		}
		for pi, p := range rule.HTTP.Paths {
			svc, err := b.ingressBackend(ing, p.Backend)
			if err != nil {
				b.problem(owner, "rules[%d].http.paths[%d]: %v", ri, pi, err)
				continue
			}
			pt := "ImplementationSpecific"
			if p.PathType != nil {
				pt = string(*p.PathType)
			}
			routes, err := pathRoutes(pt, p.Path)
			if err != nil {
				b.problem(owner, "rules[%d].http.paths[%d]: %v", ri, pi, err)
				continue
			}
			for k, r := range routes {
				b.emit(owner, name("ing", ing.Namespace, ing.Name, fmt.Sprintf("r%d-p%d-%d", ri, pi, k)), host, r, svc, o)
			}
		}
	}
	if db := ing.Spec.DefaultBackend; db != nil {
		svc, err := b.ingressBackend(ing, *db)
		switch {
		case err != nil:
			b.problem(owner, "defaultBackend: %v", err)
		case len(hosts) == 0:
			b.problem(owner, "defaultBackend: zoku routes by host name, and this Ingress has no rule with a host; add a rule with a host and no paths")
		}
		if err == nil {
			for hi, h := range hosts {
				r := config.Route{PathPrefix: "/"}
				o2 := o
				o2.priority = o.priority - 1 // after the rules' paths
				b.emit(owner, name("ing", ing.Namespace, ing.Name, fmt.Sprintf("default-%d", hi)), h, r, svc, o2)
			}
		}
	}
	if servedTLS {
		for _, h := range append(hosts, acmeHosts...) {
			h = strings.ToLower(h)
			if !secretHosts[h] && hostOK(h) {
				b.wantDomain(owner, h, o.issuer)
			}
		}
	}
}

// ingressBackend returns the zoku service of an Ingress backend.
func (b *builder) ingressBackend(ing *networkingv1.Ingress, be networkingv1.IngressBackend) (string, error) {
	if be.Resource != nil || be.Service == nil {
		return "", fmt.Errorf("only Service backends are supported")
	}
	ref := backendRef{ns: ing.Namespace, name: be.Service.Name, port: be.Service.Port.Number, portName: be.Service.Port.Name}
	return b.service("ingress "+ing.Namespace+"/"+ing.Name, ref)
}

// emit adds the route(s) for one host and path: with ssl-redirect, a
// redirect on the plain entry points and the route on the TLS ones.
func (b *builder) emit(owner, n, host string, r config.Route, svc string, o ingressOptions) {
	r.Host, r.Priority, r.Service = host, o.priority, svc
	r.EntryPoints = o.entryPoints
	if o.redirect != nil {
		red := r
		red.Service, red.Redirect = "", o.redirect
		red.EntryPoints = b.entryPointsFor(0, false)
		r.EntryPoints = b.entryPointsFor(0, true)
		if len(red.EntryPoints) > 0 {
			b.addRoute(owner, n+"-redirect", &red)
		}
	}
	b.addRoute(owner, n, &r)
}
