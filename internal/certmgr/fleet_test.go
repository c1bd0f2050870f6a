package certmgr_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
)

// fleetNode is a manager (no CA: nothing is ordered) with a fleet
// publisher on store.
func fleetNode(t *testing.T, store *storage.Store, holder string, targets func() []certmgr.NodeTarget) (*certmgr.Manager, *certmgr.Fleet) {
	t.Helper()
	m := certmgr.New(certmgr.Options{Store: store, Cache: certmgr.NewCache(), Holder: holder})
	f := certmgr.NewFleet(certmgr.FleetOptions{Manager: m, Version: "test", Targets: targets})
	return m, f
}

func sets(n int) []certmgr.Set {
	out := make([]certmgr.Set, n)
	for i := range out {
		name := fmt.Sprintf("n%05d.shard.example.test", i)
		out[i] = certmgr.Set{Name: name, Domains: []string{name}}
	}
	return out
}

func keysUnder(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	keys, err := b.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestFleetPublishAndRead: two nodes on one folder read each other,
// certificates and targets; a node that grows past one shard splits, and
// when it shrinks again the shards of the old split are removed.
func TestFleetPublishAndRead(t *testing.T) {
	ctx := context.Background()
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	target := certmgr.NodeTarget{Name: "lb1", Type: "exec", Certificates: []string{"n00000.shard.example.test"}, LastResult: "ok", ServedSerial: "abc"}
	ma, fa := fleetNode(t, store, "host-a:1", func() []certmgr.NodeTarget { return []certmgr.NodeTarget{target} })
	mb, fb := fleetNode(t, store, "host-b:2", nil)
	ma.Manage(ctx, sets(1500))
	mb.Manage(ctx, sets(3))
	for _, f := range []*certmgr.Fleet{fa, fb} {
		if err := f.PublishNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := fb.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != "host-a:1" || nodes[1].ID != "host-b:2" || !nodes[1].Self || nodes[0].Self {
		t.Fatalf("nodes = %v, want host-a:1 and host-b:2 (self)", ids(nodes))
	}
	a := nodes[0]
	if len(a.Certificates) != 1500 || a.CertificateCount != 1500 || len(a.Shards) != 2 || a.ReadError != "" {
		t.Errorf("host-a: %d certificates (count %d) in %d shards, read error %q; want 1500 in 2", len(a.Certificates), a.CertificateCount, len(a.Shards), a.ReadError)
	}
	if !slices.IsSortedFunc(a.Certificates, func(x, y certmgr.NodeCert) int { return strings.Compare(x.Name, y.Name) }) {
		t.Error("certificates are not sorted by name")
	}
	if len(a.Targets) != 1 || a.Targets[0].Name != "lb1" || a.Targets[0].ServedSerial != "abc" {
		t.Errorf("host-a targets = %+v, want lb1 serving abc", a.Targets)
	}
	if a.State(time.Now()) != certmgr.NodeLive {
		t.Errorf("host-a state %s, want live", a.State(time.Now()))
	}

	// A new certificate rewrites its shard only, and the reader sees it.
	revs := func() map[string]int64 {
		out := map[string]int64{}
		for _, k := range keysUnder(t, store.Backend(), "nodes") {
			if strings.Contains(k, "host-a") && strings.Contains(k, "/certs-") {
				ki, err := store.Backend().Stat(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				out[k] = ki.Revision
			}
		}
		return out
	}
	before := revs()
	more := append(sets(1500), certmgr.Set{Name: "extra.shard.example.test", Domains: []string{"extra.shard.example.test"}})
	ma.Manage(ctx, more)
	if err := fa.PublishNow(ctx); err != nil {
		t.Fatal(err)
	}
	after := revs()
	changed := 0
	for k, r := range after {
		if before[k] != r {
			changed++
		}
	}
	if len(after) != 2 || changed != 1 {
		t.Errorf("after adding one certificate: %d of %d shards rewritten, want 1 of 2", changed, len(after))
	}
	if nodes, _ = fb.Nodes(ctx); len(nodes[0].Certificates) != 1501 {
		t.Errorf("host-a shows %d certificates after adding one, want 1501", len(nodes[0].Certificates))
	}

	// Shrink: one shard, and the two of the old split are gone.
	ma.Manage(ctx, sets(10))
	if err := fa.PublishNow(ctx); err != nil {
		t.Fatal(err)
	}
	var certKeys []string
	for _, k := range keysUnder(t, store.Backend(), "nodes") {
		if strings.Contains(k, "host-a") && strings.Contains(k, "/certs-") {
			certKeys = append(certKeys, k)
		}
	}
	if len(certKeys) != 1 || !strings.Contains(certKeys[0], "/certs-1-0.") {
		t.Errorf("host-a certificate shards after shrinking = %v, want one certs-1-0", certKeys)
	}
	if nodes, _ = fb.Nodes(ctx); len(nodes[0].Certificates) != 10 {
		t.Errorf("host-a shows %d certificates after shrinking, want 10", len(nodes[0].Certificates))
	}
	// A later process with the same ID (a container restarted with its
	// hostname and pid) removes what the first left.
	ma2, fa2 := fleetNode(t, store, "host-a:1", nil)
	ma2.Manage(ctx, sets(1500))
	if err := fa2.PublishNow(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, k := range keysUnder(t, store.Backend(), "nodes") {
		if strings.Contains(k, "host-a") && !strings.Contains(k, "/certs-2-") && !strings.HasSuffix(k, "/status.json") {
			left = append(left, k)
		}
	}
	if len(left) != 0 {
		t.Errorf("keys of the earlier host-a:1 left: %v", left)
	}

	// A clean stop says so.
	fa.Start(ctx)
	if err := fa.Close(); err != nil {
		t.Fatal(err)
	}
	if nodes, _ = fb.Nodes(ctx); nodes[0].State(time.Now()) != certmgr.NodeStopped {
		t.Errorf("host-a after Close: %s, want stopped", nodes[0].State(time.Now()))
	}
}

func ids(nodes []certmgr.NodeStatus) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// TestFleetNodeFolders: node IDs map to one folder each, never outside
// nodes/, and two IDs that differ only in characters a key cannot hold
// get two folders.
func TestFleetNodeFolders(t *testing.T) {
	ctx := context.Background()
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	idsIn := []string{"host:1", "host-1", "../../etc", "", "a/b", "ä.example:7", strings.Repeat("x", 300)}
	for _, id := range idsIn {
		_, f := fleetNode(t, store, id, nil)
		if err := f.PublishNow(ctx); err != nil {
			t.Fatalf("publish as %q: %v", id, err)
		}
	}
	var headers int
	for _, k := range keysUnder(t, store.Backend(), "") {
		if !strings.HasPrefix(k, "nodes/") && !strings.HasPrefix(k, ".") {
			t.Errorf("key %s outside nodes/", k)
		}
		if strings.HasSuffix(k, "/status.json") {
			headers++
		}
	}
	// "" is no ID: the manager names itself <hostname>:<pid> instead.
	if headers != len(idsIn) {
		t.Errorf("%d node folders for %d IDs", headers, len(idsIn))
	}
}

// TestFleetHostileDocuments: damaged or hostile documents under nodes/
// (a gzip bomb, a shard key pointing at a private key, a header of a
// newer schema, broken JSON) are refused with a reason and the rest of
// the fleet is shown; nothing takes the memory (the reader caps what it
// decompresses; the test runs under a memory limit too).
func TestFleetHostileDocuments(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(512 << 20))
	ctx := context.Background()
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := store.Backend()
	put := func(key string, v []byte) {
		t.Helper()
		if err := b.Store(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	header := func(id string, schema int, shards ...certmgr.ShardRef) []byte {
		raw, err := json.Marshal(certmgr.NodeStatus{Schema: schema, ID: id, Heartbeat: time.Now().UTC(), IntervalSeconds: 10, Shards: shards})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// A gzip bomb: 1 GiB of zeros in about a megabyte, as 1024 gzip
	// members of 1 MiB each (a reader decompresses them one after the
	// other).
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, 1<<20))
	_ = zw.Close()
	put("nodes/bomb/certs-1-0.json.gz", bytes.Repeat(member.Bytes(), 1024))
	put("nodes/bomb/status.json", header("bomb", 1, certmgr.ShardRef{Key: "nodes/bomb/certs-1-0.json.gz", Digest: "x", Count: 1}))
	put("certificates/secret.key", []byte("SECRET-KEY-MATERIAL\n"))
	put("nodes/thief/status.json", header("thief", 1, certmgr.ShardRef{Key: "certificates/secret.key", Digest: "x", Count: 1}))
	put("nodes/future/status.json", header("future", certmgr.FleetSchema+1))
	put("nodes/broken/status.json", []byte("{not json"))

	_, f := fleetNode(t, store, "reader", nil)
	nodes, err := f.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"bomb": "larger than", "thief": "outside the node's folder", "future": "newer zoku", "broken": "status.json"}
	seen := 0
	for _, n := range nodes {
		if n.Self {
			continue
		}
		w, ok := want[n.ID]
		if !ok {
			t.Errorf("unexpected node %q", n.ID)
			continue
		}
		seen++
		if !strings.Contains(n.ReadError, w) || len(n.Certificates) != 0 {
			t.Errorf("%s: read error %q, %d certificates; want an error containing %q and none", n.ID, n.ReadError, len(n.Certificates), w)
		}
		if strings.Contains(n.ReadError, "SECRET-KEY-MATERIAL") {
			t.Errorf("%s: a key's content reached the error: %q", n.ID, n.ReadError)
		}
	}
	if seen != len(want) {
		t.Errorf("saw %d of the %d hostile nodes: %v", seen, len(want), ids(nodes))
	}
}
