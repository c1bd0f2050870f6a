package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
)

// The documented defaults of the kubernetes section.
const (
	// DefaultIngressClass is the IngressClass zoku answers to.
	DefaultIngressClass = "zoku"
	// DefaultGatewayController is the controllerName of zoku's
	// GatewayClass.
	DefaultGatewayController = "zoku.dev/gateway-controller"
)

// Kubernetes makes a cluster a source of routes, services and
// certificates: Ingresses of zoku's class, Gateway API Gateways and
// HTTPRoutes of zoku's GatewayClass, and the TLS Secrets they name. They
// are merged with the routes and services of the file (see Merge).
type Kubernetes struct {
	// Kubeconfig is a kubeconfig file to reach the API server from
	// outside the cluster; empty means the pod's service account when zoku
	// runs in a cluster, else $KUBECONFIG or ~/.kube/config.
	Kubeconfig string `yaml:"kubeconfig" toml:"kubeconfig" json:"kubeconfig,omitempty"`
	// Context is the kubeconfig context to use; default its current one.
	Context string `yaml:"context" toml:"context" json:"context,omitempty"`
	// Namespaces to watch; empty watches every namespace.
	Namespaces []string `yaml:"namespaces" toml:"namespaces" json:"namespaces,omitempty"`
	// IngressClass is the class whose Ingresses zoku serves (by
	// spec.ingressClassName, or the legacy kubernetes.io/ingress.class
	// annotation); default "zoku". Ingresses of other classes are left
	// alone.
	IngressClass string `yaml:"ingressClass" toml:"ingressClass" json:"ingressClass"`
	// LabelSelector, when set, restricts the Ingresses, Gateways and
	// HTTPRoutes zoku reads (e.g. "team=web,env!=test").
	LabelSelector string `yaml:"labelSelector" toml:"labelSelector" json:"labelSelector,omitempty"`
	// GatewayController is the controllerName of the GatewayClasses zoku
	// implements; default "zoku.dev/gateway-controller".
	GatewayController string `yaml:"gatewayController" toml:"gatewayController" json:"gatewayController"`
	// PublishService is "namespace/name" of the Service that exposes zoku;
	// its load-balancer addresses (else external IPs, else cluster IP)
	// are written into the status of the Ingresses and Gateways zoku
	// serves.
	PublishService string `yaml:"publishService" toml:"publishService" json:"publishService,omitempty"`
	// PublishAddresses are written into those statuses instead (IP
	// addresses or host names), for zoku outside the cluster.
	PublishAddresses []string `yaml:"publishAddresses" toml:"publishAddresses" json:"publishAddresses,omitempty"`
}

func (c *Config) applyKubernetesDefaults() {
	k := c.Kubernetes
	if k == nil {
		return
	}
	setStr(&k.IngressClass, DefaultIngressClass)
	setStr(&k.GatewayController, DefaultGatewayController)
}

func (c *Config) validateKubernetes() error {
	k := c.Kubernetes
	if k == nil {
		return nil
	}
	const p = "kubernetes"
	if k.Kubeconfig != "" {
		if _, err := os.Stat(k.Kubeconfig); err != nil {
			return c.errAt(p+".kubeconfig", "%s.kubeconfig %s: %v; give the path of a kubeconfig file, or leave it empty inside a cluster", p, k.Kubeconfig, cause(err))
		}
	}
	for i, ns := range k.Namespaces {
		if !dns1123Label(ns) {
			return c.errAt(fmt.Sprintf("%s.namespaces[%d]", p, i), "%s.namespaces[%d] %q is not a namespace name (lower-case letters, digits and '-', at most 63)", p, i, ns)
		}
	}
	if k.IngressClass != "" {
		if !dns1123Subdomain(k.IngressClass) {
			return c.errAt(p+".ingressClass", "%s.ingressClass %q is not an IngressClass name (lower-case letters, digits, '-' and '.')", p, k.IngressClass)
		}
	}
	// The label selector's grammar is Kubernetes': the source parses it
	// when it starts, and refuses it there with the same key path.
	if g := k.GatewayController; g != "" {
		if dom, path, ok := strings.Cut(g, "/"); !ok || path == "" || !dns1123Subdomain(dom) {
			return c.errAt(p+".gatewayController", "%s.gatewayController %q must be a domain-prefixed path, e.g. zoku.dev/gateway-controller", p, g)
		}
	}
	if s := k.PublishService; s != "" {
		ns, name, ok := strings.Cut(s, "/")
		if !ok || !dns1123Label(ns) || !dns1123Label(name) {
			return c.errAt(p+".publishService", "%s.publishService %q must be namespace/name of a Service", p, s)
		}
	}
	for i, a := range k.PublishAddresses {
		if net.ParseIP(a) == nil && !validHostname(a, false) {
			return c.errAt(fmt.Sprintf("%s.publishAddresses[%d]", p, i), "%s.publishAddresses[%d] %q is not an IP address or a host name", p, i, a)
		}
	}
	return nil
}

// Load returns the certificate and key of f, from memory (CertPEM and
// KeyPEM) or from its two files.
func (f CertFile) Load() (tls.Certificate, error) {
	if len(f.CertPEM) > 0 || len(f.KeyPEM) > 0 {
		return tls.X509KeyPair(f.CertPEM, f.KeyPEM)
	}
	return tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
}

// Name describes f for messages: its certificate file or its origin.
func (f CertFile) Name() string {
	if f.Origin != "" {
		return f.Origin
	}
	return f.CertFile
}

var (
	dns1123LabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// dns1123Label is Kubernetes' rule for namespace and Service names.
func dns1123Label(s string) bool { return len(s) <= 63 && dns1123LabelRE.MatchString(s) }

// dns1123Subdomain is Kubernetes' rule for most other object names.
func dns1123Subdomain(s string) bool { return len(s) <= 253 && dns1123SubdomainRE.MatchString(s) }
