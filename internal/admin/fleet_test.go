package admin

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
)

// offsetClock is time.Now moved by an offset a test changes.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) Set(d time.Duration) { c.mu.Lock(); c.off = d; c.mu.Unlock() }

// twoNodes starts node-a (ordering names from Pebble) and node-b on the
// same storage folder, each with its own storage handle, manager, fleet
// publisher and admin, and has both publish.
func twoNodes(t *testing.T, clock *offsetClock, names ...string) (a, b *rig) {
	t.Helper()
	a = newRig(t, rigOptions{now: clock.Now}, names...)
	b = newRig(t, rigOptions{ca: a.ca, store: openStore(t, a.store.Root(), "node-b"), holder: "node-b"}, names...)
	publish(t, a, b)
	return a, b
}

// nextSecond returns once the wall clock is in a later second than when
// it was called. The CA stamps validity to the second: a renewal must
// fall in a later second than the order it renews (made before the call),
// or both certificates end at the same time and the older one does not
// look older. This waits for the clock, not for another goroutine.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}

// publish makes each node write its status now.
func publish(t *testing.T, nodes ...*rig) {
	t.Helper()
	for _, n := range nodes {
		if err := n.fleet.PublishNow(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// fleet reads GET /api/v1/fleet (with query) from base.
func fleet(t *testing.T, base, query string) FleetView {
	t.Helper()
	resp, body := call(t, base, "GET", "/api/v1/fleet"+query, testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/fleet%s: %d %s", query, resp.StatusCode, body)
	}
	var v FleetView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("fleet: %v: %s", err, body)
	}
	return v
}

func (v FleetView) cert(t *testing.T, name string) FleetCert {
	t.Helper()
	for _, c := range v.Certificates {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("the fleet view has no certificate %s: %+v", name, v.Certificates)
	return FleetCert{}
}

func (c FleetCert) cell(t *testing.T, node string) FleetCell {
	t.Helper()
	for _, x := range c.Nodes {
		if x.Node == node {
			return x
		}
	}
	t.Fatalf("certificate %s has no cell for %s: %+v", c.Name, node, c.Nodes)
	return FleetCell{}
}

// nodeStates maps node IDs to their state in v.
func (v FleetView) nodeStates() string {
	var parts []string
	for _, n := range v.Nodes {
		parts = append(parts, n.ID+"="+n.State)
	}
	return strings.Join(parts, " ")
}

// TestFleetTwoNodes runs two nodes on one storage folder: each node's
// admin shows both nodes and what each serves; a node that missed a
// renewal shows as behind storage; a lock held shows its holder; a node
// whose heartbeat stops shows as stale, one that stopped as stopped, and
// both are removed after their TTL.
func TestFleetTwoNodes(t *testing.T) {
	const n1, n2 = "one.fleet.example.test", "two.fleet.example.test"
	clock := &offsetClock{}
	a, b := twoNodes(t, clock, n1, n2)
	serial1 := a.leaf(t, n1).SerialNumber.Text(16)
	if resp, body := call(t, a.url, "POST", "/api/v1/targets/lb1/deploy", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	publish(t, a)

	t.Run("any node shows both", func(t *testing.T) {
		for _, node := range []*rig{a, b} {
			v := fleet(t, node.url, "")
			if got, want := v.nodeStates(), "node-a=live node-b=live"; got != want {
				t.Errorf("%s: nodes %s, want %s", node.fleet.ID(), got, want)
			}
			if v.Self != node.fleet.ID() {
				t.Errorf("self = %q, want %q", v.Self, node.fleet.ID())
			}
			c := v.cert(t, n1)
			if c.Stored == nil || c.Stored.Serial != serial1 || c.Stored.StoredBy != "node-a" || c.Stored.StoredAt == nil {
				t.Fatalf("%s stored = %+v, want serial %s stored by node-a", n1, c.Stored, serial1)
			}
			for _, id := range []string{"node-a", "node-b"} {
				if cell := c.cell(t, id); cell.State != CellCurrent || cell.Serial != serial1 || cell.NextRenewal == nil || cell.NextRenewalReason == "" {
					t.Errorf("%s on %s = %+v, want current %s with its next renewal", n1, id, cell, serial1)
				}
			}
			if !c.Agree || v.Summary.SerialsDiffer != 0 || v.Summary.Behind != 0 || v.Summary.Certificates != 2 || v.Summary.Live != 2 {
				t.Errorf("agree %v, summary %+v; want agreement over 2 certificates on 2 live nodes", c.Agree, v.Summary)
			}
			if len(v.Targets) != 1 || len(v.Targets[0].Nodes) != 2 {
				t.Fatalf("targets = %+v, want lb1 on both nodes", v.Targets)
			}
			for _, cell := range v.Targets[0].Nodes {
				want := map[string]string{"node-a": CellCurrent, "node-b": CellNone}[cell.Node]
				if cell.State != want {
					t.Errorf("lb1 on %s: state %s, want %s (%+v)", cell.Node, cell.State, want, cell)
				}
			}
		}
	})

	t.Run("a node behind storage", func(t *testing.T) {
		// node-b stops following storage (as if its watch broke) while it
		// keeps serving and publishing; node-a renews.
		b.stopManager()
		nextSecond()
		if err := a.mgr.RenewNow(n1); err != nil {
			t.Fatal(err)
		}
		for e := a.next(t); e.Kind != certmgr.EventRenewed; e = a.next(t) {
			if e.Kind == certmgr.EventFailed && e.Name == n1 {
				t.Fatalf("renewal of %s failed: %v", n1, e.Err)
			}
		}
		publish(t, a, b)
		renewed := a.leaf(t, n1).SerialNumber.Text(16)
		for _, node := range []*rig{a, b} {
			v := fleet(t, node.url, "")
			c := v.cert(t, n1)
			if c.Stored == nil || c.Stored.Serial != renewed {
				t.Fatalf("stored = %+v, want the renewed serial %s", c.Stored, renewed)
			}
			if cell := c.cell(t, "node-a"); cell.State != CellCurrent || cell.Serial != renewed {
				t.Errorf("node-a = %+v, want current %s", cell, renewed)
			}
			if cell := c.cell(t, "node-b"); cell.State != CellBehind || cell.Serial != serial1 {
				t.Errorf("node-b = %+v, want behind, serving %s", cell, serial1)
			}
			if c.Agree || v.Summary.Behind != 1 || v.Summary.SerialsDiffer != 1 {
				t.Errorf("agree %v, summary %+v; want a disagreement: 1 behind, 1 with different serials", c.Agree, v.Summary)
			}
			if lb1 := v.Targets[0]; lb1.Nodes[0].Node != "node-a" || lb1.Nodes[0].State != CellBehind {
				t.Errorf("lb1 on node-a = %+v, want behind (it was deployed before the renewal)", lb1.Nodes[0])
			}
		}
		_, body := call(t, a.url, "GET", "/metrics", testToken, "")
		for _, want := range []string{mFleetDiffer + " 1", mFleetNodes + `{state="live"} 2`, mFleetHeartbeat + `{node="node-b"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})

	t.Run("lock holder", func(t *testing.T) {
		lease, err := b.store.Backend().TryLock(context.Background(), "certificates/"+storage.SanitizedName(n2))
		if err != nil {
			t.Fatal(err)
		}
		v := fleet(t, a.url, "")
		if c := v.cert(t, n2); c.LockHolder != "node-b" || v.Locks != LocksChecked || v.Summary.Locked != 1 {
			t.Errorf("lock holder %q (locks %s, locked %d), want node-b", c.LockHolder, v.Locks, v.Summary.Locked)
		}
		if v := fleet(t, a.url, "?locks=false"); v.cert(t, n2).LockHolder != "" || v.Locks != LocksSkipped {
			t.Errorf("with locks=false: holder %q, locks %s; want none, skipped", v.cert(t, n2).LockHolder, v.Locks)
		}
		if err := lease.Unlock(context.Background()); err != nil {
			t.Fatal(err)
		}
		if c := fleet(t, a.url, "").cert(t, n2); c.LockHolder != "" {
			t.Errorf("after unlock: holder %q, want none", c.LockHolder)
		}
	})

	t.Run("pages", func(t *testing.T) {
		p1 := fleet(t, a.url, "?limit=1")
		if len(p1.Certificates) != 1 || p1.Certificates[0].Name != n1 || p1.Next != n1 || p1.Summary.Certificates != 2 {
			t.Fatalf("page 1 = %d certificates, next %q; want %s, next %s", len(p1.Certificates), p1.Next, n1, n1)
		}
		p2 := fleet(t, a.url, "?limit=1&after="+p1.Next)
		if len(p2.Certificates) != 1 || p2.Certificates[0].Name != n2 || p2.Next != "" {
			t.Errorf("page 2 = %+v, next %q; want %s and no next", p2.Certificates, p2.Next, n2)
		}
		for _, q := range []string{"?limit=0", "?limit=5001", "?limit=x", "?locks=maybe"} {
			resp, body := call(t, a.url, "GET", "/api/v1/fleet"+q, testToken, "")
			if resp.StatusCode != 400 || !strings.Contains(string(body), ProblemBadRequest) {
				t.Errorf("GET /api/v1/fleet%s: %d %s, want 400 bad-request", q, resp.StatusCode, body)
			}
		}
	})

	t.Run("stale, stopped, removed", func(t *testing.T) {
		// node-a's clock moves five minutes on: node-b's last heartbeat
		// is older than three of its intervals.
		clock.Set(5 * time.Minute)
		v := fleet(t, a.url, "")
		if got, want := v.nodeStates(), "node-a=live node-b=stale"; got != want || v.Summary.Stale != 1 {
			t.Errorf("nodes %s (stale %d), want %s", got, v.Summary.Stale, want)
		}
		if c := v.cert(t, n1); !c.Agree || v.Summary.Behind != 0 {
			t.Errorf("a stale node's old serial counts as a disagreement: agree %v, behind %d", c.Agree, v.Summary.Behind)
		}
		clock.Set(0)
		if err := b.fleet.Close(); err != nil {
			t.Fatal(err)
		}
		v = fleet(t, a.url, "")
		if got, want := v.nodeStates(), "node-a=live node-b=stopped"; got != want {
			t.Errorf("after node-b stopped: %s, want %s", got, want)
		}
		// Two hours on, node-a's next publish removes what node-b left.
		clock.Set(2 * time.Hour)
		publish(t, a)
		v = fleet(t, a.url, "")
		if got, want := v.nodeStates(), "node-a=live"; got != want {
			t.Errorf("two hours after node-b stopped: %s, want %s", got, want)
		}
		keys, err := a.store.Backend().List(context.Background(), "nodes")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, "nodes/node-a/") {
				t.Errorf("key %s left after node-b was removed", k)
			}
		}
	})
}

// TestFleetUnavailable: an admin without a fleet answers 503 with a
// problem document.
func TestFleetUnavailable(t *testing.T) {
	adm := New(Options{Address: "127.0.0.1:0", Token: testToken})
	if err := adm.Start(context.Background(), Sources{}); err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	resp, body := call(t, adm.URL(), "GET", "/api/v1/fleet", testToken, "")
	if resp.StatusCode != 503 || !strings.Contains(string(body), ProblemUnavailable) {
		t.Errorf("GET /api/v1/fleet without a fleet: %d %s, want 503", resp.StatusCode, body)
	}
	if resp, _ := call(t, adm.URL(), "GET", "/api/v1/fleet", "", ""); resp.StatusCode != 401 {
		t.Errorf("without a token: %d, want 401", resp.StatusCode)
	}
}

// TestFleetOnEtcd runs two nodes on one etcd: each sees the other and
// what it serves, the lock holder comes from etcd, and when etcd goes
// down a node still answers with itself and says why the others are
// missing.
func TestFleetOnEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	open := func(holder string) *storage.Store {
		es, err := etcdstore.Open(context.Background(), etcdstore.Options{Endpoints: []string{srv.HostPort()}, Prefix: "fleet-test",
			Holder: holder, RequestTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = es.Close() })
		return storage.New(es)
	}
	const name = "etcd.fleet.example.test"
	a := newRig(t, rigOptions{store: open("node-a")}, name)
	b := newRig(t, rigOptions{ca: a.ca, store: open("node-b"), holder: "node-b"}, name)
	publish(t, a, b)
	serial := a.leaf(t, name).SerialNumber.Text(16)

	v := fleet(t, b.url, "")
	if got, want := v.nodeStates(), "node-a=live node-b=live"; got != want {
		t.Errorf("nodes %s, want %s", got, want)
	}
	c := v.cert(t, name)
	if c.Stored == nil || c.Stored.Serial != serial || c.Stored.StoredBy != "node-a" || !c.Agree {
		t.Errorf("stored %+v, agree %v; want %s stored by node-a, served by both", c.Stored, c.Agree, serial)
	}
	for _, id := range []string{"node-a", "node-b"} {
		if cell := c.cell(t, id); cell.State != CellCurrent {
			t.Errorf("%s: %+v, want current", id, cell)
		}
	}

	lease, err := a.store.Backend().TryLock(context.Background(), "certificates/"+storage.SanitizedName(name))
	if err != nil {
		t.Fatal(err)
	}
	if c := fleet(t, b.url, "").cert(t, name); c.LockHolder != "node-a" {
		t.Errorf("lock holder on etcd = %q, want node-a", c.LockHolder)
	}
	if err := lease.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	v = fleet(t, a.url, "")
	if len(v.Nodes) != 1 || !v.Nodes[0].Self || len(v.Warnings) == 0 || !strings.Contains(v.Warnings[0], "only this node is shown") {
		t.Errorf("with etcd down: nodes %s, warnings %q; want this node alone and a warning", v.nodeStates(), v.Warnings)
	}
	if c := v.cert(t, name); c.Stored != nil || c.StoredError == "" || c.cell(t, "node-a").Serial != serial {
		t.Errorf("with etcd down: %+v; want no stored state, its error, and node-a still serving %s", c, serial)
	}

	// etcd back: the next heartbeats bring node-b back into view (each
	// given time for its client to reconnect).
	srv.Restart(t)
	for _, n := range []*rig{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := n.fleet.PublishNow(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := fleet(t, a.url, "").nodeStates(), "node-a=live node-b=live"; got != want {
		t.Errorf("after etcd came back: %s, want %s", got, want)
	}
}

// TestCellStates: how a node's certificate and a target's served serials
// compare with the stored certificate.
func TestCellStates(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	stored := &FleetStored{Serial: "0abc", NotAfter: t0}
	cells := []struct {
		name   string
		c      certmgr.NodeCert
		stored *FleetStored
		want   string
	}{
		{"same serial", certmgr.NodeCert{Serial: "0abc", NotAfter: t0}, stored, CellCurrent},
		{"same serial, other case", certmgr.NodeCert{Serial: "0ABC", NotAfter: t0}, stored, CellCurrent},
		{"older", certmgr.NodeCert{Serial: "01", NotAfter: t0.Add(-time.Hour)}, stored, CellBehind},
		{"newer", certmgr.NodeCert{Serial: "02", NotAfter: t0.Add(time.Hour)}, stored, CellAhead},
		{"same expiry, other serial", certmgr.NodeCert{Serial: "03", NotAfter: t0}, stored, CellDiffers},
		{"serves none", certmgr.NodeCert{}, stored, CellNone},
		{"nothing stored", certmgr.NodeCert{Serial: "0abc", NotAfter: t0}, nil, CellUnknown},
	}
	for _, tc := range cells {
		if got := cellState(tc.c, tc.stored); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	st := map[string]certmgr.StoredCert{"a": {Serial: "0a"}, "b": {Serial: "0b"}}
	targets := []struct {
		name string
		t    certmgr.NodeTarget
		want string
	}{
		{"all current", certmgr.NodeTarget{Certificates: []string{"a", "b"}, ServedSerial: "0a,0b"}, CellCurrent},
		{"one behind", certmgr.NodeTarget{Certificates: []string{"a", "b"}, ServedSerial: "0a,01"}, CellBehind},
		{"never deployed", certmgr.NodeTarget{Certificates: []string{"a"}}, CellNone},
		{"serials do not match the certificates", certmgr.NodeTarget{Certificates: []string{"a", "b"}, ServedSerial: "0a"}, CellUnknown},
		{"nothing stored", certmgr.NodeTarget{Certificates: []string{"c"}, ServedSerial: "0c"}, CellUnknown},
	}
	for _, tc := range targets {
		if got := targetState(tc.t, st); got != tc.want {
			t.Errorf("target %s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
