package kubeclient_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/zoku/zoku/internal/kubeclient"
	"github.com/zoku/zoku/internal/testkit/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.StopShared()
	os.Exit(code)
}

// TestBinaryHasNoClientset keeps client-go's clientset, its informer
// factories and the scheme of every Kubernetes API group out of zoku, and
// client-go's fake-client machinery (which gentype links): they add
// megabytes to the binary and to its memory.
func TestBinaryHasNoClientset(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/zoku/zoku/cmd/zoku").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var api []string
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "k8s.io/client-go/kubernetes" || p == "k8s.io/client-go/informers" || p == "k8s.io/client-go/testing" ||
			strings.HasPrefix(p, "k8s.io/client-go/kubernetes/") || strings.HasPrefix(p, "sigs.k8s.io/gateway-api/pkg/client/"):
			t.Errorf("zoku links %s", p)
		case strings.HasPrefix(p, "k8s.io/api/"):
			api = append(api, p)
		}
	}
	if len(api) > 4 {
		t.Errorf("zoku links %d k8s.io/api packages, want the 4 of its kinds: %v", len(api), api)
	}
}

// TestKinds makes every request zoku makes, of every kind, against a real
// API server: paths, query parameters (label and field selectors), the
// encodings both ways, watches and status subresources.
func TestKinds(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	kc, err := kubeclient.New(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Secrets", func(t *testing.T) {
		secs := kc.Secrets(ns)
		crt, key := tlsPair(t)
		tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "site-tls", Labels: map[string]string{"app": "site"}}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
		created, err := secs.Create(ctx, tlsSecret, metav1.CreateOptions{})
		must(t, err)
		if created.UID == "" || !bytes.Equal(created.Data[corev1.TLSCertKey], crt) {
			t.Fatalf("created Secret: %+v", created)
		}
		_, err = secs.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque"}, Data: map[string][]byte{"a": []byte("1")}}, metav1.CreateOptions{})
		must(t, err)
		l, err := secs.List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeTLS)})
		must(t, err)
		if len(l.Items) != 1 || l.Items[0].Name != "site-tls" {
			t.Errorf("TLS Secrets: %v", names(l.Items))
		}
		l, err = secs.List(ctx, metav1.ListOptions{LabelSelector: "app=site"})
		must(t, err)
		if len(l.Items) != 1 || l.Items[0].Name != "site-tls" {
			t.Errorf("Secrets labelled app=site: %v", names(l.Items))
		}
		w, err := secs.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion, AllowWatchBookmarks: true, LabelSelector: "app=site"})
		must(t, err)
		defer w.Stop()
		got, err := secs.Get(ctx, "site-tls", metav1.GetOptions{})
		must(t, err)
		got.Data[corev1.TLSCertKey], got.Data[corev1.TLSPrivateKeyKey] = tlsPair(t)
		updated, err := secs.Update(ctx, got, metav1.UpdateOptions{})
		must(t, err)
		seen := false
		for ev := range w.ResultChan() {
			if ev.Type == watch.Bookmark {
				continue
			}
			s, ok := ev.Object.(*corev1.Secret)
			if ev.Type != watch.Modified || !ok || s.ResourceVersion != updated.ResourceVersion || !bytes.Equal(s.Data[corev1.TLSCertKey], got.Data[corev1.TLSCertKey]) {
				t.Fatalf("watch event %s %T, want the update", ev.Type, ev.Object)
			}
			seen = true
			break
		}
		if !seen {
			t.Fatal("the watch ended before the update")
		}
		stale := got.DeepCopy()
		if _, err := secs.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("update at an old resourceVersion: %v, want a conflict", err)
		}
		rv := updated.ResourceVersion
		must(t, secs.Delete(ctx, "site-tls", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}))
		if _, err := secs.Get(ctx, "site-tls", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Get after Delete: %v, want not found", err)
		}
	})

	t.Run("InformerFieldSelector", func(t *testing.T) {
		secs := kc.Secrets(ns)
		inf := kubeclient.Informer(secs, func(o *metav1.ListOptions) { o.FieldSelector = "type=" + string(corev1.SecretTypeTLS) })
		added := make(chan string, 16)
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) { added <- o.(*corev1.Secret).Name }})
		must(t, err)
		ictx, icancel := context.WithCancel(ctx)
		defer icancel()
		go inf.RunWithContext(ictx)
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			t.Fatal("the informer did not sync")
		}
		_, err = secs.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque-2"}, Data: map[string][]byte{"a": []byte("1")}}, metav1.CreateOptions{})
		must(t, err)
		crt, key := tlsPair(t)
		_, err = secs.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "later-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}, metav1.CreateOptions{})
		must(t, err)
		// Events of one watch come in order: the Opaque Secret, created
		// first, would come before the TLS one.
		for name := range added {
			if name == "later-tls" {
				break
			}
			if strings.HasPrefix(name, "opaque") {
				t.Errorf("the informer got Secret %s", name)
			}
		}
		for _, o := range inf.GetStore().List() {
			if s := o.(*corev1.Secret); s.Type != corev1.SecretTypeTLS {
				t.Errorf("informer's store has Secret %s of type %s", s.Name, s.Type)
			}
		}
	})

	t.Run("ServicesAndEndpointSlices", func(t *testing.T) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pool"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		_, err := kc.Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		must(t, err)
		got, err := kc.Services(ns).Get(ctx, "pool", metav1.GetOptions{})
		must(t, err)
		if len(got.Spec.Ports) != 1 || got.Spec.Ports[0].Port != 80 || got.Spec.ClusterIP == "" {
			t.Errorf("Service: %+v", got.Spec)
		}
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "pool-1", Labels: map[string]string{discoveryv1.LabelServiceName: "pool"}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"198.51.100.1"}}}}
		_, err = kc.EndpointSlices(ns).Create(ctx, es, metav1.CreateOptions{})
		must(t, err)
		l, err := kc.EndpointSlices("").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=pool"})
		must(t, err)
		found := false
		for _, s := range l.Items {
			found = found || s.Namespace == ns && s.Name == "pool-1" && len(s.Endpoints) == 1 && s.Endpoints[0].Addresses[0] == "198.51.100.1"
		}
		if !found {
			t.Errorf("EndpointSlices of all namespaces: %v", names(l.Items))
		}
	})

	t.Run("IngressesAndEvents", func(t *testing.T) {
		class := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "class-" + ns}, Spec: networkingv1.IngressClassSpec{Controller: "zoku.dev/test"}}
		_, err := kc.IngressClasses().Create(ctx, class, metav1.CreateOptions{})
		must(t, err)
		cl, err := kc.IngressClasses().List(ctx, metav1.ListOptions{})
		must(t, err)
		if !hasName(cl.Items, class.Name) {
			t.Errorf("IngressClasses: %v", names(cl.Items))
		}
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "site"}, Spec: networkingv1.IngressSpec{IngressClassName: &class.Name,
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "pool", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
		created, err := kc.Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{})
		must(t, err)
		created.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.10"}}
		_, err = kc.Ingresses(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		must(t, err)
		got, err := kc.Ingresses(ns).Get(ctx, "site", metav1.GetOptions{})
		must(t, err)
		if lb := got.Status.LoadBalancer.Ingress; len(lb) != 1 || lb[0].IP != "192.0.2.10" {
			t.Errorf("Ingress status: %+v", got.Status)
		}
		now := metav1.Now()
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "site.", Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Ingress", APIVersion: "networking.k8s.io/v1", Namespace: ns, Name: "site", UID: got.UID},
			Reason:         "ZokuInvalid", Message: "test", Type: corev1.EventTypeWarning, Source: corev1.EventSource{Component: "zoku"},
			FirstTimestamp: now, LastTimestamp: now, Count: 1}
		_, err = kc.Events(ns).Create(ctx, ev, metav1.CreateOptions{})
		must(t, err)
		evs, err := kc.Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=site"})
		must(t, err)
		if len(evs.Items) != 1 || evs.Items[0].Reason != "ZokuInvalid" {
			t.Errorf("Events of site: %+v", evs.Items)
		}
	})

	t.Run("Leases", func(t *testing.T) {
		holder, secs := "a", int32(15)
		now := metav1.NewMicroTime(time.Now().Truncate(time.Second))
		le := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "lock"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now, LeaseTransitions: new(int32(1))}}
		created, err := kc.Leases(ns).Create(ctx, le, metav1.CreateOptions{})
		must(t, err)
		created.Spec.HolderIdentity = new("b")
		_, err = kc.Leases(ns).Update(ctx, created, metav1.UpdateOptions{})
		must(t, err)
		got, err := kc.Leases(ns).Get(ctx, "lock", metav1.GetOptions{})
		must(t, err)
		if *got.Spec.HolderIdentity != "b" || *got.Spec.LeaseTransitions != 1 || !got.Spec.RenewTime.Equal(&now) {
			t.Errorf("Lease: %+v", got.Spec)
		}
	})

	t.Run("GatewayAPI", func(t *testing.T) {
		gvs := kubeclient.GatewayGroupVersion.String()
		// Not found before the CRDs are installed (unless an earlier run
		// of this test in this process installed them).
		if _, err := kc.ServerResources(ctx, gvs); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("ServerResources(%s) without the CRDs: %v, want not found", gvs, err)
		}
		c.InstallGatewayAPI(t)
		res, err := kc.ServerResources(ctx, gvs)
		must(t, err)
		served := map[string]bool{}
		for _, r := range res.APIResources {
			served[r.Name] = true
		}
		if !served["httproutes"] || !served["gateways/status"] {
			t.Errorf("resources of %s: %v", gvs, served)
		}
		cond := func(typ string, gen int64) []metav1.Condition {
			return []metav1.Condition{{Type: typ, Status: metav1.ConditionTrue, Reason: typ, Message: "test", ObservedGeneration: gen, LastTransitionTime: metav1.Now()}}
		}
		gc := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "class-" + ns}, Spec: gwv1.GatewayClassSpec{ControllerName: "zoku.dev/test"}}
		gc, err = kc.GatewayClasses().Create(ctx, gc, metav1.CreateOptions{})
		must(t, err)
		gc.Status.Conditions = cond("Accepted", gc.Generation)
		_, err = kc.GatewayClasses().UpdateStatus(ctx, gc, metav1.UpdateOptions{})
		must(t, err)
		gotClass, err := kc.GatewayClasses().Get(ctx, gc.Name, metav1.GetOptions{})
		must(t, err)
		if !meta.IsStatusConditionTrue(gotClass.Status.Conditions, "Accepted") {
			t.Errorf("GatewayClass status: %+v", gotClass.Status)
		}

		gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Labels: map[string]string{"app": "site"}}, Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(gc.Name),
			Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
		gw, err = kc.Gateways(ns).Create(ctx, gw, metav1.CreateOptions{})
		must(t, err)
		ip := gwv1.IPAddressType
		gw.Status.Conditions = cond("Programmed", gw.Generation)
		gw.Status.Addresses = []gwv1.GatewayStatusAddress{{Type: &ip, Value: "192.0.2.10"}}
		_, err = kc.Gateways(ns).UpdateStatus(ctx, gw, metav1.UpdateOptions{})
		must(t, err)
		gl, err := kc.Gateways(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=site"})
		must(t, err)
		if len(gl.Items) != 1 || !meta.IsStatusConditionTrue(gl.Items[0].Status.Conditions, "Programmed") || len(gl.Items[0].Status.Addresses) != 1 {
			t.Errorf("Gateways labelled app=site: %+v", gl.Items)
		}

		hr := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "route"}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Hostnames:       []gwv1.Hostname{"site.example.test"}}}
		hr, err = kc.HTTPRoutes(ns).Create(ctx, hr, metav1.CreateOptions{})
		must(t, err)
		hr.Status.Parents = []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "gw"}, ControllerName: "zoku.dev/test", Conditions: cond("Accepted", hr.Generation)}}
		_, err = kc.HTTPRoutes(ns).UpdateStatus(ctx, hr, metav1.UpdateOptions{})
		must(t, err)
		inf := kubeclient.Informer(kc.HTTPRoutes(ns), nil)
		ictx, icancel := context.WithCancel(ctx)
		defer icancel()
		go inf.RunWithContext(ictx)
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			t.Fatal("the HTTPRoute informer did not sync")
		}
		l := inf.GetStore().List()
		if len(l) != 1 {
			t.Fatalf("HTTPRoutes in the informer: %d", len(l))
		}
		if got := l[0].(*gwv1.HTTPRoute); len(got.Status.Parents) != 1 || !meta.IsStatusConditionTrue(got.Status.Parents[0].Conditions, "Accepted") {
			t.Errorf("HTTPRoute status: %+v", got.Status)
		}
	})
}

// tlsPair returns a self-signed certificate and its key, in PEM: the API
// server warns about a kubernetes.io/tls Secret without them.
func tlsPair(t *testing.T) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "site.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(t, err)
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func names[T any, P interface {
	*T
	metav1.Object
}](items []T) []string {
	var out []string
	for i := range items {
		o := P(&items[i])
		out = append(out, o.GetNamespace()+"/"+o.GetName())
	}
	return out
}

func hasName[T any, P interface {
	*T
	metav1.Object
}](items []T, name string) bool {
	for _, n := range names[T, P](items) {
		if strings.HasSuffix(n, "/"+name) {
			return true
		}
	}
	return false
}
