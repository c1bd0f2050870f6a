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
	nodes, hosts, ca := threeNodesOrderOnce(t, "etcd://"+etcd.HostPort()+"/cluster-test", "c", 50)
	byOthers := nodes[1].count("certificate obtained", "") + nodes[2].count("certificate obtained", "")
	if byOthers == 0 {
		t.Errorf("node0 placed every order; the test shows nothing about answering for other nodes")
	}
	for _, h := range hosts[1:] {
		sameSerial(t, nodes, h, ca)
	}
}

// threeNodesOrderOnce starts three `zoku run` nodes on storage (the CA
// validates on node0's HTTP port), routes count names (prefix00... on)
// on every node, waits until every node serves every name, and checks
// that the CA saw exactly one order per name and that the nodes serve the
// same certificate for the first name.
func threeNodesOrderOnce(t *testing.T, storage, prefix string, count int) ([]*node, []string, *embedca.CA) {
	t.Helper()
	web0 := testenv.FreePort(t)
	ca := testCA(t, embedca.Options{HTTPPort: web0})
	nodes := []*node{
		startNodeOn(t, "node0", web0, ca.DirectoryURL(), storage, nil),
		startNode(t, "node1", ca.DirectoryURL(), storage, nil),
		startNode(t, "node2", ca.DirectoryURL(), storage, nil),
	}
	for _, n := range nodes {
		n.waitLog(t, "entry point listening", 1, time.Minute)
	}
	var hosts []string
	for i := range count {
		hosts = append(hosts, fmt.Sprintf("%s%02d.example.test", prefix, i))
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
			t.Errorf("%s ordered %d times by the nodes, want once", h, perName[h])
		}
	}
	if len(ca.Orders()) != count {
		t.Errorf("%d orders for %d names", len(ca.Orders()), count)
	}
	t.Logf("orders placed: node0 %d, node1 %d, node2 %d", nodes[0].count("certificate obtained", ""),
		nodes[1].count("certificate obtained", ""), nodes[2].count("certificate obtained", ""))
	sameSerial(t, nodes, hosts[0], ca)
	return nodes, hosts, ca
}

// sameSerial checks that every node serves host with node0's certificate.
func sameSerial(t *testing.T, nodes []*node, host string, ca *embedca.CA) {
	t.Helper()
	want := nodes[0].serial(t, host, ca.RootPool())
	for _, n := range nodes[1:] {
		if got := n.serial(t, host, ca.RootPool()); got != want {
			t.Errorf("%s serves %s with serial %s, node0 with %s", n.name, host, got, want)
		}
	}
}
