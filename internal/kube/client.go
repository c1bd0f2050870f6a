package kube

import (
	"errors"
	"fmt"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig returns the client config of kubeconfig (a file; context
// picks one of its contexts, empty its current one). With no file it uses
// the pod's service account inside a cluster, else $KUBECONFIG or
// ~/.kube/config, as kubectl does.
func RESTConfig(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" && context == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: in-cluster credentials: %w; mount the service account token, or set kubernetes.kubeconfig", err)
		}
		return withRate(c), nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) || errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("kubernetes: no kubeconfig found and not running in a cluster; set kubernetes.kubeconfig (or $KUBECONFIG), or run zoku in the cluster with deploy/kubernetes")
		}
		return nil, fmt.Errorf("kubernetes: kubeconfig: %w; check kubernetes.kubeconfig and kubernetes.context", err)
	}
	return withRate(c), nil
}

// Client-side request rate of zoku's API client. client-go's default (5
// per second, bursts of 10) is made for controllers that mostly watch;
// zoku's storage on Secrets and Leases writes challenge answers, renews
// lock leases and stores certificates, and starving a lease renewal
// behind throttled writes loses the lock. The API server's own priority
// and fairness still protects it.
const (
	clientQPS   = 50
	clientBurst = 100
)

// withRate raises c's client-side rate limit to zoku's, unless the
// kubeconfig set one.
func withRate(c *rest.Config) *rest.Config {
	if c.QPS == 0 {
		c.QPS = clientQPS
	}
	if c.Burst == 0 {
		c.Burst = clientBurst
	}
	return c
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
