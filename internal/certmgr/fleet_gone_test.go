package certmgr_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
)

// TestFleetRemovesGoneNodes: a live node removes the documents of nodes
// stopped for more than StoppedTTL or silent for more than StaleTTL, and
// on a file backend the folders they leave, so that restarts do not pile
// up folders; recent nodes, and folders holding anything, stay.
func TestFleetRemovesGoneNodes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	store, err := storage.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The nodes set up first keep everything (long TTLs): only the live
	// node, with the default TTLs, removes.
	node := func(id string, at time.Time, ttl time.Duration) *certmgr.Fleet {
		m := certmgr.New(certmgr.Options{Store: store, Cache: certmgr.NewCache(), Holder: id})
		m.Manage(ctx, sets(3))
		return certmgr.NewFleet(certmgr.FleetOptions{Manager: m, Version: "test", StoppedTTL: ttl, StaleTTL: ttl,
			Now: func() time.Time { return at }})
	}
	const keepAll = 1000 * time.Hour
	// Stopped cleanly two hours ago.
	stopped := node("stopped:1", start.Add(-2*time.Hour), keepAll)
	stopped.Start(ctx)
	if err := stopped.Close(); err != nil {
		t.Fatal(err)
	}
	// Vanished (no stop) two days ago, and one an hour ago.
	for id, at := range map[string]time.Time{"vanished:1": start.Add(-48 * time.Hour), "recent:1": start.Add(-time.Hour)} {
		if err := node(id, at, keepAll).PublishNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	nodes := filepath.Join(root, "nodes")
	before := dirs(t, nodes)
	if len(before) != 3 {
		t.Fatalf("node folders before: %v", before)
	}
	// Folders an earlier build left empty, and one holding a hidden file.
	for _, d := range []string{"old-empty.1", "old-empty.2", "kept"} {
		if err := os.Mkdir(filepath.Join(nodes, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(nodes, "kept", ".lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// The folders made above are fresh, and the ones the live node's
	// first pass empties are changed by it: all go at a later pass, once
	// left alone for a minute (here: made old by hand).
	liveNow := start
	m := certmgr.New(certmgr.Options{Store: store, Cache: certmgr.NewCache(), Holder: "live:1"})
	m.Manage(ctx, sets(3))
	live := certmgr.NewFleet(certmgr.FleetOptions{Manager: m, Version: "test", Now: func() time.Time { return liveNow }})
	if err := live.PublishNow(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(dirs(t, nodes)); n != 7 {
		t.Errorf("%d node folders after the first pass, want all 7 still there", n)
	}
	old := time.Now().Add(-2 * time.Minute)
	for _, d := range dirs(t, nodes) {
		if err := os.Chtimes(filepath.Join(nodes, d), old, old); err != nil {
			t.Fatal(err)
		}
	}
	liveNow = start.Add(6 * time.Minute) // the next clean-up pass
	if err := live.PublishNow(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := live.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ids(got); !slices.Equal(ids, []string{"live:1", "recent:1"}) {
		t.Errorf("nodes after the clean-up: %v, want live:1 and recent:1", ids)
	}
	after := dirs(t, nodes)
	if len(after) != 3 || !slices.Contains(after, "kept") {
		t.Errorf("node folders after the clean-up: %v, want live's, recent's and kept", after)
	}
	for _, d := range before {
		if _, err := os.Stat(filepath.Join(nodes, d)); err == nil && !slices.Contains(after, d) {
			t.Errorf("folder %s listed as gone but still there", d)
		}
	}
}

// dirs returns the names of the folders in dir.
func dirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
