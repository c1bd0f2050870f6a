package kube

import (
	"context"
	"net"
	"reflect"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/zoku/zoku/internal/config"
)

// statusTimeout bounds one status write or event.
const statusTimeout = 10 * time.Second

// addresses are where zoku serves, for statuses: kubernetes.publishAddresses,
// else the publish Service's load-balancer addresses (else its external
// IPs, else its cluster IP), else the specific IPs of the entry points.
func (s *Source) addresses(ctx context.Context, file *config.Config) []string {
	k := s.o.Config
	if len(k.PublishAddresses) > 0 {
		return k.PublishAddresses
	}
	var out []string
	if ps := k.PublishService; ps != "" {
		ns, name, _ := strings.Cut(ps, "/")
		cctx, cancel := context.WithTimeout(ctx, statusTimeout)
		svc, err := s.client.Services(ns).Get(cctx, name, metav1.GetOptions{})
		cancel()
		if err != nil {
			s.log.Warn("kubernetes.publishService cannot be read; statuses get no address", "service", ps, "error", err)
			return nil
		}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			out = append(out, firstNonEmpty(in.IP, in.Hostname))
		}
		if len(out) == 0 {
			out = append(out, svc.Spec.ExternalIPs...)
		}
		if len(out) == 0 && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			out = append(out, svc.Spec.ClusterIP)
		}
		return out
	}
	if file != nil {
		for _, ep := range file.EntryPoints {
			host, _, err := net.SplitHostPort(ep.Address)
			if ip := net.ParseIP(host); err == nil && ip != nil && !ip.IsUnspecified() && !contains(out, host) {
				out = append(out, host)
			}
		}
	}
	sort.Strings(out)
	return out
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// writeStatus writes back what changed in the statuses of the objects
// zoku serves. A failed write is logged and tried again with the next
// change.
func (s *Source) writeStatus(ctx context.Context, res *result, file *config.Config) {
	addrs := s.addresses(ctx, file)
	write := func(what string, f func(context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, statusTimeout)
		defer cancel()
		if err := f(cctx); err != nil {
			s.log.Debug("status not written; it is tried again with the next change", "object", what, "error", err)
		}
	}
	if len(addrs) > 0 {
		var lb []networkingv1.IngressLoadBalancerIngress
		for _, a := range addrs {
			if net.ParseIP(a) != nil {
				lb = append(lb, networkingv1.IngressLoadBalancerIngress{IP: a})
			} else {
				lb = append(lb, networkingv1.IngressLoadBalancerIngress{Hostname: a})
			}
		}
		for _, ing := range res.ingresses {
			if reflect.DeepEqual(ing.Status.LoadBalancer.Ingress, lb) {
				continue
			}
			c := ing.DeepCopy()
			c.Status.LoadBalancer.Ingress = lb
			write("ingress "+ing.Namespace+"/"+ing.Name, func(ctx context.Context) error {
				_, err := s.client.Ingresses(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{})
				return err
			})
		}
	}
	if !s.gw {
		return
	}
	for _, c := range res.classStatus {
		if orig := findClass(res.snap, c.Name); orig != nil && reflect.DeepEqual(orig.Status, c.Status) {
			continue
		}
		write("gatewayclass "+c.Name, func(ctx context.Context) error {
			_, err := s.client.GatewayClasses().UpdateStatus(ctx, c, metav1.UpdateOptions{})
			return err
		})
	}
	var gaddrs []gwv1.GatewayStatusAddress
	for _, a := range addrs {
		t := gwv1.HostnameAddressType
		if net.ParseIP(a) != nil {
			t = gwv1.IPAddressType
		}
		gaddrs = append(gaddrs, gwv1.GatewayStatusAddress{Type: &t, Value: a})
	}
	for _, g := range res.gatewayStatus {
		g.Status.Addresses = gaddrs
		if orig := findGateway(res.snap, g.Namespace, g.Name); orig != nil && reflect.DeepEqual(orig.Status, g.Status) {
			continue
		}
		write("gateway "+g.Namespace+"/"+g.Name, func(ctx context.Context) error {
			_, err := s.client.Gateways(g.Namespace).UpdateStatus(ctx, g, metav1.UpdateOptions{})
			return err
		})
	}
	for _, r := range res.routeStatus {
		if orig := findRoute(res.snap, r.Namespace, r.Name); orig != nil && reflect.DeepEqual(orig.Status, r.Status) {
			continue
		}
		write("httproute "+r.Namespace+"/"+r.Name, func(ctx context.Context) error {
			_, err := s.client.HTTPRoutes(r.Namespace).UpdateStatus(ctx, r, metav1.UpdateOptions{})
			return err
		})
	}
}

func findClass(snap *snapshot, name string) *gwv1.GatewayClass {
	for _, c := range snap.gatewayClasses {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func findGateway(snap *snapshot, ns, name string) *gwv1.Gateway {
	for _, g := range snap.gateways {
		if g.Namespace == ns && g.Name == name {
			return g
		}
	}
	return nil
}

func findRoute(snap *snapshot, ns, name string) *gwv1.HTTPRoute {
	for _, r := range snap.httpRoutes {
		if r.Namespace == ns && r.Name == name {
			return r
		}
	}
	return nil
}

// report logs each new problem once and records it as a Warning Event on
// its object; a problem that is gone and comes back is reported again.
func (s *Source) report(ctx context.Context, snap *snapshot, problems map[string][]string) {
	now := map[string]bool{}
	for _, owner := range sortedKeys(problems) {
		for _, line := range problems[owner] {
			key := owner + "\x00" + line
			now[key] = true
			if s.reported[key] {
				continue
			}
			s.log.Warn("kubernetes object left out or partly ignored", "object", owner, "problem", line)
			s.event(ctx, snap, owner, line)
		}
	}
	s.reported = now
}

// event records a Warning Event on the object named by owner
// ("ingress ns/name"), when it can be found.
func (s *Source) event(ctx context.Context, snap *snapshot, owner, msg string) {
	kind, key, _ := strings.Cut(owner, " ")
	ns, name, _ := strings.Cut(key, "/")
	var ref *corev1.ObjectReference
	switch kind {
	case "ingress":
		for _, o := range snap.ingresses {
			if o.Namespace == ns && o.Name == name {
				ref = &corev1.ObjectReference{Kind: "Ingress", APIVersion: "networking.k8s.io/v1", Namespace: ns, Name: name, UID: o.UID, ResourceVersion: o.ResourceVersion}
			}
		}
	case "gateway":
		if o := findGateway(snap, ns, name); o != nil {
			ref = &corev1.ObjectReference{Kind: "Gateway", APIVersion: gwv1.GroupVersion.String(), Namespace: ns, Name: name, UID: o.UID, ResourceVersion: o.ResourceVersion}
		}
	case "httproute":
		if o := findRoute(snap, ns, name); o != nil {
			ref = &corev1.ObjectReference{Kind: "HTTPRoute", APIVersion: gwv1.GroupVersion.String(), Namespace: ns, Name: name, UID: o.UID, ResourceVersion: o.ResourceVersion}
		}
	}
	if ref == nil {
		return
	}
	t := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: name + ".", Namespace: ns},
		InvolvedObject: *ref, Reason: "ZokuInvalid", Message: clip(msg, 1000), Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "zoku"}, FirstTimestamp: t, LastTimestamp: t, Count: 1,
	}
	cctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if _, err := s.client.Events(ns).Create(cctx, ev, metav1.CreateOptions{}); err != nil {
		s.log.Debug("event not recorded", "object", owner, "error", err)
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
