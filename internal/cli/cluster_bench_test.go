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

// BenchmarkCluster300 gives 300 routed names at once to 1 and to 3 `zoku
// run` nodes on one real etcd with in-process Pebble, and measures the
// time until every node serves every name. It fails unless exactly 300
// certificates were ordered. Run with -benchtime=1x; see docs/BENCHMARKS.md.
func BenchmarkCluster300(b *testing.B) {
	const names = 300
	var hosts []string
	for i := range names {
		hosts = append(hosts, fmt.Sprintf("bench%03d.example.test", i))
	}
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				etcd := etcdtest.Start(b)
				web0 := testenv.FreePort(b)
				ca := testCA(b, embedca.Options{HTTPPort: web0})
				storage := fmt.Sprintf("etcd://%s/bench%d", etcd.HostPort(), i)
				nodes := []*node{startNodeOn(b, "node0", web0, ca.DirectoryURL(), storage, nil)}
				for j := 1; j < n; j++ {
					nodes = append(nodes, startNode(b, fmt.Sprintf("node%d", j), ca.DirectoryURL(), storage, nil))
				}
				for _, nd := range nodes {
					nd.waitLog(b, "entry point listening", 1, time.Minute)
				}
				b.StartTimer()
				start := time.Now()
				for _, nd := range nodes {
					nd.route(b, hosts)
				}
				for _, nd := range nodes {
					nd.waitServing(b, hosts, 10*time.Minute)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				orders := map[string]int{}
				for _, o := range ca.Orders() {
					orders[strings.Join(o.Identifiers, ",")]++
				}
				if len(ca.Orders()) != names || len(orders) != names {
					b.Fatalf("%d orders for %d names (%d distinct), want exactly %d", len(ca.Orders()), names, len(orders), names)
				}
				b.ReportMetric(float64(len(ca.Orders())), "orders")
				b.ReportMetric(elapsed.Seconds(), "s-to-serve-all")
				b.ReportMetric(names/elapsed.Seconds(), "names/s")
				for _, nd := range nodes {
					nd.kill()
				}
			}
		})
	}
}
