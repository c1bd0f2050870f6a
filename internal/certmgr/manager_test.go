package certmgr_test

import (
	"context"
	"testing"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
)

// start runs a manager on the rig's store against c and returns its
// event stream.
func start(t *testing.T, r *lifecycleRig, c *ca, cache *certmgr.Cache) (*certmgr.Manager, <-chan certmgr.Event) {
	opts := certmgr.Options{Issuer: c.client, Store: r.store, Cache: cache}
	ev := events(&opts)
	m := certmgr.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, ev
}

func TestManagerObtainsInBackgroundAndLoadsFromStorage(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	cache := certmgr.NewCache()
	m, ev := start(t, r, c, cache)
	if _, err := cache.Get("bg.example.test"); err == nil {
		t.Fatal("a certificate is served before it was ordered")
	}
	m.Manage(context.Background(), []certmgr.Set{{Name: "bg.example.test", Domains: []string{"bg.example.test", "www.bg.example.test"}}})
	if e := waitFor(t, ev, certmgr.EventObtained, "bg.example.test"); e.Err != nil {
		t.Fatalf("event %+v, want obtained", e)
	}
	for _, n := range []string{"bg.example.test", "www.bg.example.test"} {
		if crt, err := cache.Get(n); err != nil || crt.Leaf == nil {
			t.Fatalf("%s not served after obtain: %v", n, err)
		}
	}
	// A second manager on the same storage serves it without ordering.
	cache2 := certmgr.NewCache()
	m2, ev2 := start(t, r, c, cache2)
	orders := len(c.Orders())
	m2.Manage(context.Background(), []certmgr.Set{{Name: "bg.example.test", Domains: []string{"bg.example.test"}}})
	waitFor(t, ev2, certmgr.EventLoaded, "bg.example.test")
	if _, err := cache2.Get("bg.example.test"); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Orders()); n != orders {
		t.Fatalf("loading from storage placed %d orders", n-orders)
	}
	m2.Manage(context.Background(), nil)
	if st := m2.Statuses(); len(st) != 0 {
		t.Fatalf("removed set still managed: %+v", st)
	}
}
