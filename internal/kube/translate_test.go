package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/zoku/zoku/internal/config"
)

// selfSigned returns a PEM certificate and key for names.
func selfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func tlsSecret(t testing.TB, ns, name string, names ...string) *corev1.Secret {
	c, k := selfSigned(t, names...)
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: c, corev1.TLSPrivateKeyKey: k}}
}

func service(ns, name string, port int32) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: port}}}}
}

func slice(ns, svc string, port int32, addrs ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(port)}}}
	for _, a := range addrs {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
	}
	return es
}

func ingress(ns, name, class string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: networkingv1.IngressSpec{Rules: rules}}
	if class != "" {
		ing.Spec.IngressClassName = &class
	}
	return ing
}

func rule(host, path string, pt networkingv1.PathType, svc string, port int32) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
		Paths: []networkingv1.HTTPIngressPath{{Path: path, PathType: &pt, Backend: networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: port}}}}}}}}
}

func testSettings() settings {
	return settings{ingressClass: "zoku", controller: "zoku.dev/gateway-controller",
		entryPoints: []entryPoint{{name: "web", port: 80}, {name: "websecure", port: 443, tls: true}}}
}

func newSnapshot() *snapshot {
	return &snapshot{services: map[string]*corev1.Service{}, slices: map[string][]*discoveryv1.EndpointSlice{}, secrets: map[string]*corev1.Secret{}}
}

func (s *snapshot) add(objs ...any) *snapshot {
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Service:
			s.services[v.Namespace+"/"+v.Name] = v
		case *discoveryv1.EndpointSlice:
			k := v.Namespace + "/" + v.Labels[discoveryv1.LabelServiceName]
			s.slices[k] = append(s.slices[k], v)
		case *corev1.Secret:
			s.secrets[v.Namespace+"/"+v.Name] = v
		case *networkingv1.Ingress:
			s.ingresses = append(s.ingresses, v)
		case *networkingv1.IngressClass:
			s.ingressClasses = append(s.ingressClasses, v)
		case *gwv1.GatewayClass:
			s.gatewayClasses = append(s.gatewayClasses, v)
		case *gwv1.Gateway:
			s.gateways = append(s.gateways, v)
		case *gwv1.HTTPRoute:
			s.httpRoutes = append(s.httpRoutes, v)
		}
	}
	return s
}

func TestIngressTranslation(t *testing.T) {
	withTLS := ingress("ns", "web", "zoku", rule("secret.example.test", "/app", networkingv1.PathTypePrefix, "app", 80), rule("acme.example.test", "/", networkingv1.PathTypeExact, "app", 80))
	withTLS.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"secret.example.test"}, SecretName: "crt"}}
	snap := newSnapshot().add(service("ns", "app", 80), slice("ns", "app", 8080, "198.51.100.1", "198.51.100.2"),
		tlsSecret(t, "ns", "crt", "secret.example.test"), withTLS,
		ingress("ns", "other-class", "nginx", rule("nginx.example.test", "/", networkingv1.PathTypePrefix, "app", 80)),
		ingress("ns", "no-class", "", rule("none.example.test", "/", networkingv1.PathTypePrefix, "app", 80)),
	)
	res := translate(snap, testSettings())
	d := res.dyn
	var hosts []string
	for _, r := range d.Routes {
		hosts = append(hosts, r.Host)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	if want := []string{"acme.example.test", "secret.example.test"}; !slices.Equal(hosts, want) {
		t.Errorf("routed hosts %v, want %v (other classes left alone)", hosts, want)
	}
	// Prefix /app: an exact route and a /app/ prefix route.
	exact := d.Routes[name("ing", "ns", "web", "r0-p0-0")]
	prefix := d.Routes[name("ing", "ns", "web", "r0-p0-1")]
	if exact == nil || exact.Path != "/app" || prefix == nil || prefix.PathPrefix != "/app/" {
		t.Errorf("Prefix /app routes: %+v and %+v", exact, prefix)
	}
	svc := d.Services[name("svc", "ns", "app", "80")]
	if svc == nil || len(svc.Servers) != 2 || svc.Servers[0].URL != "http://198.51.100.1:8080" {
		t.Fatalf("service: %+v", svc)
	}
	if len(d.Certificates) != 1 || d.Certificates[0].Origin != "kubernetes secret ns/crt" {
		t.Errorf("certificates: %+v", d.Certificates)
	}
	if len(d.Domains) != 1 || d.Domains[0].Main != "acme.example.test" {
		t.Errorf("ACME domains %+v, want acme.example.test only (the other has a Secret)", d.Domains)
	}
	if len(res.ingresses) != 1 || len(res.problems) != 0 {
		t.Errorf("served %d ingresses, problems %v", len(res.ingresses), res.problems)
	}
}

func TestIngressDefaultClassAndProblems(t *testing.T) {
	def := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "zoku", Annotations: map[string]string{annDefaultClass: "true"}}}
	missing := ingress("ns", "missing-secret", "zoku", rule("a.example.test", "/", networkingv1.PathTypePrefix, "app", 80))
	missing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"a.example.test"}, SecretName: "nope"}}
	bad := ingress("ns", "bad-path", "zoku", rule("b.example.test", "nope", networkingv1.PathTypePrefix, "app", 80))
	noHost := ingress("ns", "no-host", "zoku", rule("", "/", networkingv1.PathTypePrefix, "app", 80))
	reserved := ingress("ns", "reserved", "zoku", rule("r.example.test", "/", networkingv1.PathTypePrefix, "app", 80))
	reserved.Annotations = map[string]string{annMiddlewares: "auth"}
	snap := newSnapshot().add(def, service("ns", "app", 80), slice("ns", "app", 80, "198.51.100.1"),
		ingress("ns", "defaulted", "", rule("d.example.test", "/", networkingv1.PathTypePrefix, "app", 80)),
		missing, bad, noHost, reserved)
	res := translate(snap, testSettings())
	for _, r := range res.dyn.Routes {
		if r.Host != "d.example.test" {
			t.Errorf("route for %s: objects with a problem must be left out whole", r.Host)
		}
	}
	for _, o := range []string{"ingress ns/missing-secret", "ingress ns/bad-path", "ingress ns/no-host", "ingress ns/reserved"} {
		if len(res.problems[o]) == 0 {
			t.Errorf("no problem reported for %s", o)
		}
	}
	if len(res.dyn.Domains) != 1 || res.dyn.Domains[0].Main != "d.example.test" {
		t.Errorf("domains %+v", res.dyn.Domains)
	}
}

func TestIngressRedirectAndNoEndpoints(t *testing.T) {
	ing := ingress("ns", "web", "zoku", rule("a.example.test", "/", networkingv1.PathTypePrefix, "empty", 80))
	ing.Annotations = map[string]string{annSSLRedirect: "true", annIssuer: "https://ca.example/dir"}
	res := translate(newSnapshot().add(service("ns", "empty", 80), ing), testSettings())
	red := res.dyn.Routes[name("ing", "ns", "web", "r0-p0-0")+"-redirect"]
	if red == nil || red.Redirect == nil || red.Redirect.Scheme != "https" || !slices.Equal(red.EntryPoints, []string{"web"}) {
		t.Fatalf("redirect route: %+v", red)
	}
	if r := res.dyn.Routes[name("ing", "ns", "web", "r0-p0-0")]; r == nil || !slices.Equal(r.EntryPoints, []string{"websecure"}) {
		t.Errorf("TLS route: %+v", r)
	}
	if s := res.dyn.Services[name("svc", "ns", "empty", "80")]; s == nil || s.Static == nil || s.Static.Status != 503 {
		t.Errorf("a Service without ready endpoints: %+v, want a 503", s)
	}
	if len(res.dyn.Domains) != 1 || res.dyn.Domains[0].Issuer != "https://ca.example/dir" {
		t.Errorf("issuer choice: %+v", res.dyn.Domains)
	}
}

func TestGatewayTranslation(t *testing.T) {
	gc := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "zoku", Generation: 1}, Spec: gwv1.GatewayClassSpec{ControllerName: "zoku.dev/gateway-controller"}}
	other := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}}
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gw", Generation: 2}, Spec: gwv1.GatewaySpec{GatewayClassName: "zoku",
		Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
			{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: new(gwv1.Hostname("*.example.test"))},
			{Name: "nowhere", Port: 8443, Protocol: gwv1.HTTPSProtocolType},
		}}}
	hr := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "split", Generation: 3}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
		Hostnames:       []gwv1.Hostname{"app.example.test"},
		Rules: []gwv1.HTTPRouteRule{{
			Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: new(gwv1.PathMatchPathPrefix), Value: new("/")},
				Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Canary", Value: "1"}}}},
			BackendRefs: []gwv1.HTTPBackendRef{
				{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "a", Port: new(gwv1.PortNumber(80))}, Weight: new(int32(3))}},
				{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "b", Port: new(gwv1.PortNumber(80))}, Weight: new(int32(1))}},
			},
		}},
	}}
	bad := hr.DeepCopy()
	bad.Name = "bad"
	bad.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite}}
	snap := newSnapshot().add(gc, other, gw, hr, bad, service("ns", "a", 80), slice("ns", "a", 80, "198.51.100.1", "198.51.100.2"),
		service("ns", "b", 80), slice("ns", "b", 80, "198.51.100.3"))
	res := translate(snap, testSettings())
	s := res.dyn.Services[name("hr", "ns", "split", "r0")]
	if s == nil || s.Strategy != "weighted" || len(s.Servers) != 3 {
		t.Fatalf("weighted service: %+v", s)
	}
	// a: weight 3 over 2 servers, b: 1 over 1; lcm 2: 3,3 and 2.
	weights := map[string]int{}
	for _, sv := range s.Servers {
		weights[sv.URL] = sv.Weight
	}
	if weights["http://198.51.100.1:80"] != 3 || weights["http://198.51.100.3:80"] != 2 {
		t.Errorf("weights %v, want a's servers 3 each and b's 2 (3:1 overall)", weights)
	}
	r := res.dyn.Routes[name("hr", "ns", "split", "r0-m0-h0-0")]
	if r == nil || r.Host != "app.example.test" || r.Headers["X-Canary"] != "1" || !slices.Equal(r.EntryPoints, []string{"web", "websecure"}) {
		t.Fatalf("route: %+v", r)
	}
	if len(res.dyn.Domains) != 1 || res.dyn.Domains[0].Main != "app.example.test" {
		t.Errorf("ACME for the HTTPS listener without certificateRefs: %+v", res.dyn.Domains)
	}
	if len(res.classStatus) != 1 || !meta.IsStatusConditionTrue(res.classStatus[0].Status.Conditions, "Accepted") {
		t.Errorf("GatewayClass status: %+v", res.classStatus)
	}
	g := res.gatewayStatus[0]
	if !meta.IsStatusConditionTrue(g.Status.Conditions, "Programmed") || len(g.Status.Listeners) != 3 {
		t.Fatalf("Gateway status: %+v", g.Status)
	}
	for _, ls := range g.Status.Listeners {
		prog := meta.IsStatusConditionTrue(ls.Conditions, "Programmed")
		if (ls.Name == "nowhere") == prog {
			t.Errorf("listener %s Programmed=%v", ls.Name, prog)
		}
		if ls.Name == "http" && ls.AttachedRoutes != 1 {
			t.Errorf("listener http attachedRoutes %d, want 1", ls.AttachedRoutes)
		}
	}
	for _, rs := range res.routeStatus {
		c := meta.FindStatusCondition(rs.Status.Parents[0].Conditions, "Accepted")
		want := rs.Name == "split"
		if c == nil || (c.Status == metav1.ConditionTrue) != want || c.ObservedGeneration != 3 {
			t.Errorf("HTTPRoute %s Accepted: %+v, want %v", rs.Name, c, want)
		}
		if rs.Name == "bad" && !strings.Contains(c.Message, "URLRewrite") {
			t.Errorf("bad route's message %q", c.Message)
		}
	}
}

func TestPathRoutes(t *testing.T) {
	tests := []struct {
		kind, path string
		want       []string // prefix or =exact
	}{
		{"Prefix", "/", []string{"/"}},
		{"Prefix", "/a/", []string{"=/a", "/a/"}},
		{"Exact", "/a", []string{"=/a"}},
		{"ImplementationSpecific", "/a", []string{"/a"}},
	}
	for _, tc := range tests {
		rs, err := pathRoutes(tc.kind, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			if r.Path != "" {
				got = append(got, "="+r.Path)
			} else {
				got = append(got, r.PathPrefix)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.kind, tc.path, got, tc.want)
		}
	}
	if _, err := pathRoutes("Regex", "/"); err == nil {
		t.Error("unknown path type accepted")
	}
}

func TestIntersect(t *testing.T) {
	for _, tc := range []struct{ route, listener, want string }{
		{"a.example.test", "", "a.example.test"},
		{"", "*.example.test", "*.example.test"},
		{"a.example.test", "*.example.test", "a.example.test"},
		{"*.example.test", "b.example.test", "b.example.test"},
		{"a.other.test", "*.example.test", ""},
	} {
		if got := intersect(tc.route, tc.listener); got != tc.want {
			t.Errorf("intersect(%q, %q) = %q, want %q", tc.route, tc.listener, got, tc.want)
		}
	}
}

// TestMatchConditions maps HTTPRoute method, header and query parameter
// matches to the router's route conditions, and refuses a match type the
// router has not.
func TestMatchConditions(t *testing.T) {
	get := gwv1.HTTPMethodGet
	re := gwv1.HeaderMatchRegularExpression
	qre := gwv1.QueryParamMatchRegularExpression
	other := gwv1.HeaderMatchType("Prefix")
	tests := []struct {
		name    string
		m       gwv1.HTTPRouteMatch
		want    config.Route
		wantErr string
	}{
		{"none", gwv1.HTTPRouteMatch{}, config.Route{}, ""},
		{"method", gwv1.HTTPRouteMatch{Method: &get}, config.Route{Methods: []string{"GET"}}, ""},
		{"headers", gwv1.HTTPRouteMatch{Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Env", Value: "prod"}, {Name: "X-Id", Type: &re, Value: "^[0-9]+$"}}},
			config.Route{Headers: map[string]string{"X-Env": "prod"}, HeadersRegex: map[string]string{"X-Id": "^[0-9]+$"}}, ""},
		{"query", gwv1.HTTPRouteMatch{QueryParams: []gwv1.HTTPQueryParamMatch{{Name: "v", Value: "2"}, {Name: "q", Type: &qre, Value: "a.*"}}},
			config.Route{Query: map[string]string{"v": "2"}, QueryRegex: map[string]string{"q": "a.*"}}, ""},
		{"unknown type", gwv1.HTTPRouteMatch{Headers: []gwv1.HTTPHeaderMatch{{Name: "X", Type: &other, Value: "a"}}}, config.Route{}, `match type Prefix of "X" is not supported`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := matchConditions(tc.m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("conditions %+v, want %+v", got, tc.want)
			}
		})
	}
}
