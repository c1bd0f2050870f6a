//go:build !race

package cli

import (
	"fmt"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
)

// clusterRig is etcd, Pebble issuing certificates of the given lifetime
// (validating HTTP-01 through a token answerer on the cluster's storage),
// and n `zoku run` nodes serving hosts.
func clusterRig(t *testing.T, n int, validity time.Duration, hosts []string) (*embedca.CA, *etcdtest.Server, []*node) {
	t.Helper()
	etcd := etcdtest.Start(t)
	const prefix = "cluster"
	b, err := etcdstore.Open(t.Context(), etcdstore.Options{Endpoints: []string{etcd.HostPort()}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ca := testCA(t, embedca.Options{HTTPPort: answererOn(t, b), Validity: validity})
	storage := "etcd://" + etcd.HostPort() + "/" + prefix
	var nodes []*node
	for i := range n {
		nodes = append(nodes, startNode(t, fmt.Sprintf("node%d", i), ca.DirectoryURL(), storage, hosts))
	}
	for _, nd := range nodes {
		nd.waitServing(t, hosts, 2*time.Minute)
	}
	return ca, etcd, nodes
}

// TestNoRaceClusterRenewsAfterKill: three nodes, certificates that live
// 30 s (renewals every 20 s); the first node to renew anything is killed
// with SIGKILL, and the other two renew every name from then on.
func TestNoRaceClusterRenewsAfterKill(t *testing.T) {
	hosts := []string{"k0.example.test", "k1.example.test", "k2.example.test", "k3.example.test"}
	_, _, nodes := clusterRig(t, 3, 30*time.Second, hosts)
	victim, _ := waitAny(t, nodes, make([]int, len(nodes)), "certificate renewed", nil, 2*time.Minute)
	victim.kill()
	var alive []*node
	for _, n := range nodes {
		if n != victim {
			alive = append(alive, n)
		}
	}
	t.Logf("killed %s after its first renewal", victim.name)
	marks := []int{alive[0].lineCount(), alive[1].lineCount()}
	for _, h := range hosts {
		waitAny(t, alive, marks, "certificate renewed", func(rec map[string]any) bool { return rec["domain"] == h }, 2*time.Minute)
	}
}

// TestNoRaceClusterOutage: two nodes, certificates that live 66 s (renewals
// every 44 s). Right after they are issued, etcd is stopped for 30 s: both
// nodes keep serving every name (verified handshakes at the start and the
// end of the outage); once etcd is back they renew at the window and both
// serve the new certificates.
func TestNoRaceClusterOutage(t *testing.T) {
	hosts := []string{"o0.example.test", "o1.example.test", "o2.example.test", "o3.example.test"}
	ca, etcd, nodes := clusterRig(t, 2, 66*time.Second, hosts)
	before := map[string]string{}
	for _, h := range hosts {
		before[h] = nodes[0].serial(t, h, ca.RootPool())
	}
	etcd.Stop()
	outage := time.After(30 * time.Second) // the scenario: etcd away this long
	for _, n := range nodes {
		for _, h := range hosts {
			n.serial(t, h, ca.RootPool()) // fails the test if not served
		}
	}
	<-outage
	for _, n := range nodes {
		for _, h := range hosts {
			n.serial(t, h, ca.RootPool())
		}
	}
	etcd.Restart(t)
	t.Log("etcd is back")
	deadline := time.Now().Add(2 * time.Minute)
	for _, h := range hosts {
		for _, n := range nodes {
			for n.serial(t, h, ca.RootPool()) == before[h] {
				if time.Now().After(deadline) {
					t.Fatalf("%s still serves %s's pre-outage certificate 2 minutes after etcd came back", n.name, h)
				}
				// Wait for the node's next log line (a renewal, a
				// certificate from storage), not for a fixed time.
				n.mu.Lock()
				ch := n.changedLines
				n.mu.Unlock()
				select {
				case <-ch:
				case <-time.After(time.Until(deadline)):
				}
			}
		}
	}
}
