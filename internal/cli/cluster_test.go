package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// TestClusterOnEtcdOrdersOnce runs three `zoku run` nodes on one real etcd
// with Pebble. Once all three are up, they are given the same 50 routes at
// once: each name is ordered exactly once for the cluster, every node
// serves every name with the same certificate, and the CA validates
// HTTP-01 on node0 only, so orders placed by node1 and node2 were answered
// by a node that did not place them (the token travelled through etcd).
func TestClusterOnEtcdOrdersOnce(t *testing.T) {
	etcd := etcdtest.Start(t)
	web0 := testenv.FreePort(t)
	ca := testCA(t, embedca.Options{HTTPPort: web0})
	storage := "etcd://" + etcd.HostPort() + "/cluster-test"
	nodes := []*node{
		startNodeOn(t, "node0", web0, ca.DirectoryURL(), storage, nil),
		startNode(t, "node1", ca.DirectoryURL(), storage, nil),
		startNode(t, "node2", ca.DirectoryURL(), storage, nil),
	}
	for _, n := range nodes {
		n.waitLog(t, "entry point listening", 1, time.Minute)
	}
	const count = 50
	var hosts []string
	for i := range count {
		hosts = append(hosts, fmt.Sprintf("c%02d.example.test", i))
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
			t.Errorf("%s ordered %d times by the cluster, want once", h, perName[h])
		}
	}
	if len(ca.Orders()) != count {
		t.Errorf("%d orders for %d names", len(ca.Orders()), count)
	}
	byOthers := nodes[1].count("certificate obtained", "") + nodes[2].count("certificate obtained", "")
	if byOthers == 0 {
		t.Errorf("node0 placed every order; the test shows nothing about answering for other nodes")
	}
	t.Logf("orders placed: node0 %d, node1 %d, node2 %d", nodes[0].count("certificate obtained", ""),
		nodes[1].count("certificate obtained", ""), nodes[2].count("certificate obtained", ""))
	for _, h := range hosts {
		want := nodes[0].serial(t, h, ca.RootPool())
		for _, n := range nodes[1:] {
			if got := n.serial(t, h, ca.RootPool()); got != want {
				t.Errorf("%s serves %s with serial %s, node0 with %s", n.name, h, got, want)
			}
		}
	}
}
