package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
)

// TestThreeRunProcessesOnOneFolder starts three `zoku run` processes at the
// same moment on one storage folder with the same routes: every name is
// ordered exactly once, and every process serves every name.
func TestThreeRunProcessesOnOneFolder(t *testing.T) {
	path := t.TempDir()
	port := sharedAnswerer(t, path)
	ca := testCA(t, embedca.Options{HTTPPort: port})
	const n = 8
	var hosts []string
	for i := range n {
		hosts = append(hosts, fmt.Sprintf("run%d.example.test", i))
	}
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, startNode(t, fmt.Sprintf("node%d", i), ca.DirectoryURL(), path, hosts))
	}
	for _, nd := range nodes {
		nd.waitServing(t, hosts, 2*time.Minute)
	}
	perName := map[string]int{}
	for _, o := range ca.Orders() {
		perName[strings.Join(o.Identifiers, ",")]++
	}
	for _, h := range hosts {
		if perName[h] != 1 {
			t.Errorf("%s ordered %d times by 3 processes, want once", h, perName[h])
		}
	}
	for _, h := range hosts {
		want := nodes[0].serial(t, h, ca.RootPool())
		for _, nd := range nodes[1:] {
			if got := nd.serial(t, h, ca.RootPool()); got != want {
				t.Errorf("%s serves %s with serial %s, %s serves %s", nd.name, h, got, nodes[0].name, want)
			}
		}
	}
}
