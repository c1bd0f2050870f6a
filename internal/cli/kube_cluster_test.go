package cli

import (
	"testing"

	"github.com/zoku/zoku/internal/testkit/kubetest"
)

// TestClusterOnKubernetesOrdersOnce runs three `zoku run` replicas on the
// Kubernetes storage backend (Secrets and Leases of one namespace of a
// real API server, as deploy/kubernetes' service account) with Pebble:
// N hosts make N orders, every replica serves every host with the same
// certificate, and the CA validates HTTP-01 on replica 0 only, so orders
// placed by the others were answered through the shared storage.
func TestClusterOnKubernetesOrdersOnce(t *testing.T) {
	c := kubetest.Start(t)
	applyDeploy(t, c, false)
	nodes, hosts, ca := threeNodesOrderOnce(t, "kubernetes://zoku/zoku?kubeconfig="+c.ServiceAccountKubeconfig, "k", 10)
	for _, h := range hosts[1:3] {
		sameSerial(t, nodes, h, ca)
	}
}
