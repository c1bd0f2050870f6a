package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/kubetest"
	"github.com/zoku/zoku/internal/testkit/testenv"
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
	web0 := testenv.FreePort(t)
	ca := testCA(t, embedca.Options{HTTPPort: web0})
	storage := "kubernetes://zoku/zoku?kubeconfig=" + c.ServiceAccountKubeconfig
	nodes := []*node{
		startNodeOn(t, "node0", web0, ca.DirectoryURL(), storage, nil),
		startNode(t, "node1", ca.DirectoryURL(), storage, nil),
		startNode(t, "node2", ca.DirectoryURL(), storage, nil),
	}
	for _, n := range nodes {
		n.waitLog(t, "entry point listening", 1, time.Minute)
	}
	const count = 10
	var hosts []string
	for i := range count {
		hosts = append(hosts, fmt.Sprintf("k%02d.example.test", i))
	}
	for _, n := range nodes {
		n.route(t, hosts)
	}
	for _, n := range nodes {
		n.waitServing(t, hosts, 3*time.Minute)
	}
	perName := map[string]int{}
	for _, o := range ca.Orders() {
		perName[strings.Join(o.Identifiers, ",")]++
	}
	for _, h := range hosts {
		if perName[h] != 1 {
			t.Errorf("%s ordered %d times by the replicas, want once", h, perName[h])
		}
	}
	if len(ca.Orders()) != count {
		t.Errorf("%d orders for %d names", len(ca.Orders()), count)
	}
	for _, h := range hosts[:3] {
		s0 := nodes[0].serial(t, h, ca.RootPool())
		for _, n := range nodes[1:] {
			if s := n.serial(t, h, ca.RootPool()); s != s0 {
				t.Errorf("%s serves %s with serial %s, node0 with %s", n.name, h, s, s0)
			}
		}
	}
	t.Logf("orders placed: node0 %d, node1 %d, node2 %d", nodes[0].count("certificate obtained", ""),
		nodes[1].count("certificate obtained", ""), nodes[2].count("certificate obtained", ""))
}
