package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/zoku/zoku/internal/config"
)

// snapshot is what the informers hold at one moment; translate turns it
// into zoku's routes, services and certificates. Every object in it is
// shared with the informers' caches: translate never modifies one.
type snapshot struct {
	ingressClasses []*networkingv1.IngressClass
	ingresses      []*networkingv1.Ingress
	services       map[string]*corev1.Service              // by "ns/name"
	slices         map[string][]*discoveryv1.EndpointSlice // by "ns/service"
	secrets        map[string]*corev1.Secret               // by "ns/name"
	gatewayClasses []*gwv1.GatewayClass
	gateways       []*gwv1.Gateway
	httpRoutes     []*gwv1.HTTPRoute
}

// entryPoint is a listener of the file's config, as the Kubernetes
// objects are matched to them.
type entryPoint struct {
	name string
	port int
	tls  bool
}

// settings are what translate needs from the config.
type settings struct {
	ingressClass string
	controller   string
	entryPoints  []entryPoint // sorted by name
}

// result is one translation: the dynamic config, the problems found per
// object, and what to write back into statuses.
type result struct {
	snap *snapshot
	dyn  *config.Dynamic
	// problems by object ("ingress ns/name"): each is one line.
	problems map[string][]string
	// ingresses zoku serves (their status gets zoku's address).
	ingresses []*networkingv1.Ingress
	// gateway API statuses to write.
	classStatus   []*gwv1.GatewayClass
	gatewayStatus []*gwv1.Gateway
	routeStatus   []*gwv1.HTTPRoute
}

// builder accumulates one translation.
type builder struct {
	snap *snapshot
	set  settings
	res  *result
	// pinned are the names a Secret's certificate covers: they get no
	// ACME order.
	pinned map[string]bool
	// domains are hosts to obtain by ACME, with the issuer asked for.
	domains map[string]string
	// secretsUsed avoids pinning one Secret twice.
	secretsUsed map[string]bool
	// domainOwner is the first object that asked for a domain.
	domainOwner map[string]string

	// cur is what the object being translated adds; end merges it only
	// when the object had no problem (an object applies whole or not at
	// all).
	cur        *config.Dynamic
	curPinned  []string
	curDomains [][3]string // owner, host, issuer
	failed     bool
}

// begin starts an object's contribution.
func (b *builder) begin() {
	b.cur = &config.Dynamic{Routes: map[string]*config.Route{}, Services: map[string]*config.Service{}, Owners: map[string]string{}}
	b.curPinned, b.curDomains, b.failed = nil, nil, false
}

// end merges the object's contribution unless it had a problem; it
// reports whether it did.
func (b *builder) end(owner string) bool {
	defer func() { b.cur = nil }()
	if b.failed {
		return false
	}
	d := b.res.dyn
	for k, v := range b.cur.Routes {
		d.Routes[k] = v
	}
	for k, v := range b.cur.Services {
		d.Services[k] = v
	}
	for k, v := range b.cur.Owners {
		d.Owners[k] = v
	}
	for _, f := range b.cur.Certificates {
		if !b.secretsUsed[f.Origin] {
			b.secretsUsed[f.Origin] = true
			d.Certificates = append(d.Certificates, f)
		}
	}
	for _, n := range b.curPinned {
		b.pinned[n] = true
	}
	for _, dm := range b.curDomains {
		if prev, ok := b.domains[dm[1]]; ok {
			if prev != dm[2] && dm[2] != "" {
				b.warn(owner, "host %s: issuer %q differs from %q asked by %s; the first one is used", dm[1], dm[2], prev, b.domainOwner[dm[1]])
			}
			continue
		}
		b.domains[dm[1]], b.domainOwner[dm[1]] = dm[2], dm[0]
	}
	return true
}

// addRoute adds a route of the current object.
func (b *builder) addRoute(owner, n string, r *config.Route) {
	b.cur.Routes[n] = r
	b.cur.Owners["routes."+n] = owner
}

func translate(snap *snapshot, set settings) *result {
	b := &builder{
		snap: snap, set: set,
		res: &result{snap: snap, dyn: &config.Dynamic{
			Routes: map[string]*config.Route{}, Services: map[string]*config.Service{}, Owners: map[string]string{},
		}, problems: map[string][]string{}},
		pinned: map[string]bool{}, domains: map[string]string{}, secretsUsed: map[string]bool{}, domainOwner: map[string]string{},
	}
	b.ingresses()
	b.gatewayAPI()
	// ACME for every host no Secret covers.
	for _, host := range sortedKeys(b.domains) {
		if b.covered(host) {
			continue
		}
		// A wildcard asked for by ACME covers the names under it.
		if i := strings.IndexByte(host, '.'); i > 0 && !strings.HasPrefix(host, "*.") {
			if _, ok := b.domains["*"+host[i:]]; ok {
				continue
			}
		}
		b.res.dyn.Domains = append(b.res.dyn.Domains, config.DomainSet{Main: host, Issuer: b.domains[host]})
		b.res.dyn.Owners["domains."+host] = b.domainOwner[host]
	}
	return b.res
}

// problem records a problem of an object, which is then left out.
func (b *builder) problem(owner, format string, args ...any) {
	b.failed = true
	b.warn(owner, format, args...)
}

// warn records a problem that does not leave the object out.
func (b *builder) warn(owner, format string, args ...any) {
	b.res.problems[owner] = append(b.res.problems[owner], fmt.Sprintf(format, args...))
}

// covered reports whether a pinned certificate serves host.
func (b *builder) covered(host string) bool {
	if b.pinned[host] {
		return true
	}
	if i := strings.IndexByte(host, '.'); i > 0 && !strings.HasPrefix(host, "*.") {
		return b.pinned["*"+host[i:]]
	}
	return false
}

// wantDomain asks for a certificate of host by ACME.
func (b *builder) wantDomain(owner, host, issuer string) {
	b.curDomains = append(b.curDomains, [3]string{owner, host, issuer})
}

// pinSecret serves the certificate of a kubernetes.io/tls Secret; it
// returns why it cannot, or "".
func (b *builder) pinSecret(owner, ns, name string) string {
	key := ns + "/" + name
	s := b.snap.secrets[key]
	if s == nil {
		return fmt.Sprintf("Secret %s not found (zoku reads Secrets of type kubernetes.io/tls)", key)
	}
	crt, k := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(k) == 0 {
		return fmt.Sprintf("Secret %s has no %s or %s", key, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	f := config.CertFile{CertPEM: crt, KeyPEM: k, Origin: "kubernetes secret " + key}
	c, err := f.Load()
	if err != nil {
		return fmt.Sprintf("Secret %s: %s and %s are not a matching PEM certificate and key: %v", key, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	for _, n := range c.Leaf.DNSNames {
		b.curPinned = append(b.curPinned, strings.ToLower(n))
	}
	b.cur.Certificates = append(b.cur.Certificates, f)
	b.cur.Owners["certificates."+f.Name()] = owner
	return ""
}

// name builds a route or service name from parts; long names are cut and
// end in a hash, so they stay unique and readable.
func name(parts ...string) string {
	n := "k8s-" + strings.Join(parts, "-")
	if len(n) <= 120 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:100] + "-" + hex.EncodeToString(sum[:])[:16]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pathRoutes are the (prefix, exact) pairs that match an Ingress or
// HTTPRoute path of a type: Prefix matches whole path elements ("/a"
// matches "/a" and "/a/b", not "/ab"), so it becomes an exact route and a
// prefix route.
func pathRoutes(kind, path string) ([]config.Route, error) {
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q does not start with /", path)
	}
	switch kind {
	case "Exact":
		return []config.Route{{PathPrefix: path, Path: path}}, nil
	case "ImplementationSpecific":
		// zoku's own matching: a plain string prefix.
		return []config.Route{{PathPrefix: path}}, nil
	case "Prefix", "PathPrefix":
		p := strings.TrimRight(path, "/")
		if p == "" {
			return []config.Route{{PathPrefix: "/"}}, nil
		}
		return []config.Route{{PathPrefix: p, Path: p}, {PathPrefix: p + "/"}}, nil
	}
	return nil, fmt.Errorf("path type %q is not supported (use Prefix, Exact or ImplementationSpecific)", kind)
}

// entryPointsFor returns the entry points of the file a listener on port
// (0: any) with or without TLS maps to.
func (b *builder) entryPointsFor(port int, tls bool) []string {
	var out []string
	for _, ep := range b.set.entryPoints {
		if ep.tls == tls && (port == 0 || ep.port == port) {
			out = append(out, ep.name)
		}
	}
	return out
}

// hostOK checks a host as zoku routes it: a DNS name or "*." and a DNS
// name.
func hostOK(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 || strings.Contains(h, "*") {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}

func hasString(list []string, s string) bool { return slices.Contains(list, s) }
