package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/kubeclient"
	"github.com/zoku/zoku/internal/testkit/kubetest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// kubeConfig is a `zoku run` config with the kubernetes section, reaching
// the API server as zoku's service account of deploy/kubernetes.
const kubeConfig = `
admin: {address: "127.0.0.1:0"}
entryPoints:
  web: {address: "127.0.0.1:{{web}}"}
  websecure:
    address: "127.0.0.1:{{tls}}"
    tls: {}
certificates:
  acme:
    server: {{server}}
    acceptTOS: true
    storage: {{storage}}
    challenges:
      http: {entryPoint: web}
kubernetes:
  kubeconfig: %s
  publishAddresses: [192.0.2.10]
routes:
  file: {host: file.example.test, service: page}
services:
  page: {static: {body: "file\n"}}
`

// applyDeploy applies deploy/kubernetes to c (the GatewayClass only with
// gateway, which needs the Gateway API CRDs): the manifests are valid,
// and the service account they make has the rights zoku uses, since zoku
// runs as it here.
func applyDeploy(t *testing.T, c *kubetest.Cluster, gateway bool) {
	t.Helper()
	for _, f := range []string{"namespace.yaml", "ingressclass.yaml", "gatewayclass.yaml", "rbac.yaml", "config.yaml", "deployment.yaml"} {
		if f == "gatewayclass.yaml" && !gateway {
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(t.Context(), b, ""); err != nil {
			t.Fatalf("deploy/kubernetes/%s: %v", f, err)
		}
	}
}

// backend is an HTTP server on loopback that answers with its name.
func backend(t *testing.T, name string) int {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, name) }))
	t.Cleanup(s.Close)
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	var port int
	fmt.Sscan(p, &port)
	return port
}

// externalName is a Service whose traffic goes to 127.0.0.1:port (the
// API server refuses loopback endpoints; an ExternalName may be an IP).
func externalName(ns, name string, port int) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1",
		Ports: []corev1.ServicePort{{Name: "http", Port: int32(port), TargetPort: intstr.FromInt32(int32(port))}}}}
}

func kubeCert(t *testing.T, names ...string) (certPEM, keyPEM []byte, serial string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), sn.Text(16)
}

// served returns the serial of the certificate the TLS entry point shows
// for name ("" when the handshake fails).
func served(tlsPort int, name string) string {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort),
		&tls.Config{ServerName: name, InsecureSkipVerify: true}) //nolint:gosec // the test compares serials
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// eventually polls cond every 100 ms until it holds, or fails the test
// after d with what.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// body GETs url through the rig's client and returns the body ("" on
// error).
func (r *runRig) body(url string) string {
	resp, err := r.client().Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = fmt.Fprint(b, readAll(resp))
	return fmt.Sprintf("%d %s", resp.StatusCode, b.String())
}

func readAll(resp *http.Response) string {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil || sb.Len() > 1<<20 {
			return sb.String()
		}
	}
}

// TestKubernetesSource runs `zoku run` with a kubernetes section against a
// real API server: Ingresses with and without a TLS Secret, a Secret
// rotated, IngressClass filtering, EndpointSlices followed, a malformed
// Ingress skipped, Gateway API with weights and status, and the API
// server restarted under zoku.
func TestKubernetesSource(t *testing.T) {
	c := kubetest.Start(t)
	c.InstallGatewayAPI(t)
	applyDeploy(t, c, true)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	kc, err := kubeclient.New(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	web, tlsPort := testenv.FreePort(t), testenv.FreePort(t)
	ca := testCA(t, embedca.Options{HTTPPort: web})
	dir := t.TempDir()
	text := strings.NewReplacer("{{web}}", fmt.Sprint(web), "{{tls}}", fmt.Sprint(tlsPort), "{{server}}", ca.DirectoryURL(),
		"{{storage}}", filepath.Join(dir, "store")).Replace(fmt.Sprintf(kubeConfig, c.ServiceAccountKubeconfig))
	r := startRunOn(t, text, web, tlsPort, ca.RootPool())

	portA, portB := backend(t, "A"), backend(t, "B")
	for _, s := range []*corev1.Service{externalName(ns, "a", portA), externalName(ns, "b", portB)} {
		if _, err := kc.Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	crt, key, serial1 := kubeCert(t, "secret.example.test")
	if _, err := kc.Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "site-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	prefix := networkingv1.PathTypePrefix
	ingRule := func(host, svc string, port int) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: int32(port)}}}}}}}}
	}
	zoku, nginx := "zoku", "nginx"
	ings := []*networkingv1.Ingress{
		{ObjectMeta: metav1.ObjectMeta{Name: "site"}, Spec: networkingv1.IngressSpec{IngressClassName: &zoku,
			TLS:   []networkingv1.IngressTLS{{Hosts: []string{"secret.example.test"}, SecretName: "site-tls"}},
			Rules: []networkingv1.IngressRule{ingRule("secret.example.test", "a", portA), ingRule("acme.example.test", "b", portB)}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "not-ours"}, Spec: networkingv1.IngressSpec{IngressClassName: &nginx,
			Rules: []networkingv1.IngressRule{ingRule("nginx.example.test", "a", portA)}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Spec: networkingv1.IngressSpec{IngressClassName: &zoku,
			TLS:   []networkingv1.IngressTLS{{Hosts: []string{"broken.example.test"}, SecretName: "no-such-secret"}},
			Rules: []networkingv1.IngressRule{ingRule("broken.example.test", "a", portA)}}},
	}
	for _, ing := range ings {
		if _, err := kc.Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	https := func(host string) string { return r.body(fmt.Sprintf("https://%s:%d/", host, tlsPort)) }
	plain := func(host string) string { return r.body(fmt.Sprintf("http://%s:%d/", host, web)) }

	t.Run("SecretCertificate", func(t *testing.T) {
		eventually(t, 30*time.Second, "the Secret's certificate is not served for secret.example.test", func() bool { return served(tlsPort, "secret.example.test") == serial1 })
		if got := plain("secret.example.test"); got != "200 A\n" {
			t.Errorf("plain GET secret.example.test: %q", got)
		}
		if got := plain("file.example.test"); got != "200 file\n" {
			t.Errorf("the file's route next to the cluster's: %q", got)
		}
	})
	t.Run("ACMECertificate", func(t *testing.T) {
		// Verified against the test CA's roots: ordered by zoku.
		eventually(t, 90*time.Second, "no verified certificate for acme.example.test", func() bool { return https("acme.example.test") == "200 B\n" })
		if got := served(tlsPort, "secret.example.test"); got != serial1 {
			t.Errorf("secret.example.test now serves %s", got)
		}
		for _, o := range ca.Orders() {
			if strings.Contains(strings.Join(o.Identifiers, ","), "secret.example.test") {
				t.Errorf("a host with a Secret was ordered from the CA: %v", o.Identifiers)
			}
		}
	})
	t.Run("SecretRotated", func(t *testing.T) {
		crt2, key2, serial2 := kubeCert(t, "secret.example.test")
		sec, err := kc.Secrets(ns).Get(ctx, "site-tls", metav1.GetOptions{})
		must(t, err)
		sec.Data = map[string][]byte{corev1.TLSCertKey: crt2, corev1.TLSPrivateKeyKey: key2}
		_, err = kc.Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{})
		must(t, err)
		eventually(t, 30*time.Second, "the rotated certificate is not served", func() bool { return served(tlsPort, "secret.example.test") == serial2 })
	})
	t.Run("ClassFilterAndBrokenIngress", func(t *testing.T) {
		if got := plain("nginx.example.test"); !strings.HasPrefix(got, "404") {
			t.Errorf("an Ingress of another class is served: %q", got)
		}
		if got := plain("broken.example.test"); !strings.HasPrefix(got, "404") {
			t.Errorf("an Ingress naming a missing Secret is served: %q", got)
		}
		eventually(t, 30*time.Second, "no Warning Event on the broken Ingress", func() bool {
			evs, err := kc.Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=broken"})
			return err == nil && len(evs.Items) > 0 && strings.Contains(evs.Items[0].Message, "no-such-secret")
		})
		eventually(t, 30*time.Second, "the Ingress status has no address", func() bool {
			ing, err := kc.Ingresses(ns).Get(ctx, "site", metav1.GetOptions{})
			return err == nil && len(ing.Status.LoadBalancer.Ingress) == 1 && ing.Status.LoadBalancer.Ingress[0].IP == "192.0.2.10"
		})
		if ing, _ := kc.Ingresses(ns).Get(ctx, "not-ours", metav1.GetOptions{}); ing != nil && len(ing.Status.LoadBalancer.Ingress) > 0 {
			t.Error("zoku wrote the status of another class's Ingress")
		}
	})
	t.Run("EndpointSlices", func(t *testing.T) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pool"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		_, err := kc.Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		must(t, err)
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "pool"}, Spec: networkingv1.IngressSpec{IngressClassName: &zoku,
			Rules: []networkingv1.IngressRule{ingRule("pool.example.test", "pool", 80)}}}
		_, err = kc.Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{})
		must(t, err)
		// No endpoints yet: the route answers 503.
		eventually(t, 30*time.Second, "pool.example.test does not answer 503 without endpoints", func() bool { return strings.HasPrefix(plain("pool.example.test"), "503") })
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "pool-1", Labels: map[string]string{discoveryv1.LabelServiceName: "pool"}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"198.51.100.1"}}, {Addresses: []string{"198.51.100.2"}}}}
		created, err := kc.EndpointSlices(ns).Create(ctx, es, metav1.CreateOptions{})
		must(t, err)
		servers := func() []string {
			_, svcs := r.srv.rt.Snapshot()
			for _, s := range svcs {
				if strings.Contains(s.Name, ns+"-pool-") {
					var out []string
					for _, sv := range s.Servers {
						out = append(out, sv.URL)
					}
					return out
				}
			}
			return nil
		}
		eventually(t, 30*time.Second, "the route table does not list the two endpoints", func() bool { return len(servers()) == 2 })
		created.Endpoints = append(created.Endpoints, discoveryv1.Endpoint{Addresses: []string{"198.51.100.3"}},
			discoveryv1.Endpoint{Addresses: []string{"198.51.100.4"}, Conditions: discoveryv1.EndpointConditions{Ready: new(false)}})
		created.Endpoints = created.Endpoints[1:] // .1 removed
		_, err = kc.EndpointSlices(ns).Update(ctx, created, metav1.UpdateOptions{})
		must(t, err)
		eventually(t, 30*time.Second, "the route table does not follow the EndpointSlice", func() bool {
			s := servers()
			return len(s) == 2 && strings.Contains(strings.Join(s, " "), "198.51.100.3") && !strings.Contains(strings.Join(s, " "), "198.51.100.1")
		})
	})
	t.Run("GatewayAPI", func(t *testing.T) {
		gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"}, Spec: gwv1.GatewaySpec{GatewayClassName: "zoku",
			Listeners: []gwv1.Listener{{Name: "http", Port: gwv1.PortNumber(web), Protocol: gwv1.HTTPProtocolType}}}}
		_, err := kc.Gateways(ns).Create(ctx, gw, metav1.CreateOptions{})
		must(t, err)
		pn := func(p int) *gwv1.PortNumber { v := gwv1.PortNumber(p); return &v }
		hr := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "split"}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Hostnames:       []gwv1.Hostname{"split.example.test"},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{
				{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "a", Port: pn(portA)}, Weight: new(int32(3))}},
				{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "b", Port: pn(portB)}, Weight: new(int32(1))}},
			}}}}}
		_, err = kc.HTTPRoutes(ns).Create(ctx, hr, metav1.CreateOptions{})
		must(t, err)
		eventually(t, 30*time.Second, "HTTPRoute not Accepted", func() bool {
			got, err := kc.HTTPRoutes(ns).Get(ctx, "split", metav1.GetOptions{})
			return err == nil && len(got.Status.Parents) == 1 && meta.IsStatusConditionTrue(got.Status.Parents[0].Conditions, "Accepted") &&
				meta.IsStatusConditionTrue(got.Status.Parents[0].Conditions, "ResolvedRefs")
		})
		eventually(t, 30*time.Second, "Gateway not Programmed", func() bool {
			got, err := kc.Gateways(ns).Get(ctx, "gw", metav1.GetOptions{})
			return err == nil && meta.IsStatusConditionTrue(got.Status.Conditions, "Programmed") && len(got.Status.Listeners) == 1 &&
				got.Status.Listeners[0].AttachedRoutes == 1 && len(got.Status.Addresses) == 1
		})
		cls, err := kc.GatewayClasses().Get(ctx, "zoku", metav1.GetOptions{})
		if err != nil || !meta.IsStatusConditionTrue(cls.Status.Conditions, "Accepted") {
			t.Errorf("GatewayClass zoku not Accepted: %v", err)
		}
		// 3:1 over 40 requests (weighted round robin): both backends
		// answer, A more often.
		counts := map[string]int{}
		for range 40 {
			counts[plain("split.example.test")]++
		}
		if counts["200 A\n"] <= counts["200 B\n"] || counts["200 B\n"] == 0 {
			t.Errorf("answers %v, want A three times as often as B", counts)
		}
	})
	t.Run("APIServerRestart", func(t *testing.T) {
		c.StopAPIServer()
		if got := plain("secret.example.test"); got != "200 A\n" {
			t.Errorf("with the API server down: %q, want the routes kept", got)
		}
		must(t, c.StartAPIServer())
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "after-restart"}, Spec: networkingv1.IngressSpec{IngressClassName: &zoku,
			Rules: []networkingv1.IngressRule{ingRule("late.example.test", "a", portA)}}}
		eventually(t, 30*time.Second, "cannot create an Ingress after the restart", func() bool {
			_, err := kc.Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{})
			return err == nil
		})
		eventually(t, 90*time.Second, "zoku did not resynchronise after the API server restarted", func() bool { return plain("late.example.test") == "200 A\n" })
	})
}
