package certmgr_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testenv"
)

type rig struct {
	client *acmeclient.Client
	store  *storage.Store
}

func newRig(t *testing.T) rig {
	t.Helper()
	acmeclient.SetLegoLogger(slog.New(slog.DiscardHandler))
	sol := http01.NewSolver()
	srv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ca := testenv.StartCA(t, embedca.Options{HTTPPort: srv.Port()})
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := acmeclient.New(context.Background(), acmeclient.Config{
		Server: ca.DirectoryURL(), Store: store, HTTPClient: ca.HTTPClient(), AcceptTOS: true,
		Solvers: acmeclient.Solvers{HTTP01: sol},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rig{client: c, store: store}
}

// start runs a manager and returns its event stream.
func start(t *testing.T, r rig, cache *certmgr.Cache) (*certmgr.Manager, <-chan certmgr.Event) {
	events := make(chan certmgr.Event, 16)
	m := certmgr.New(certmgr.Options{Issuer: r.client, Store: r.store, Cache: cache, OnEvent: func(e certmgr.Event) { events <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, events
}

func next(t *testing.T, events <-chan certmgr.Event) certmgr.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(time.Minute):
		t.Fatal("no certificate event within a minute")
		return certmgr.Event{}
	}
}

func TestManagerObtainsInBackgroundAndLoadsFromStorage(t *testing.T) {
	r := newRig(t)
	cache := certmgr.NewCache()
	m, events := start(t, r, cache)
	if _, err := cache.Get("bg.example.test"); err == nil {
		t.Fatal("a certificate is served before it was ordered")
	}
	m.Manage([]certmgr.Set{{Name: "bg.example.test", Domains: []string{"bg.example.test", "www.bg.example.test"}}})
	if e := next(t, events); e.Kind != certmgr.EventObtained || e.Err != nil {
		t.Fatalf("event %+v, want obtained", e)
	}
	for _, n := range []string{"bg.example.test", "www.bg.example.test"} {
		if crt, err := cache.Get(n); err != nil || crt.Leaf == nil {
			t.Fatalf("%s not served after obtain: %v", n, err)
		}
	}
	// A second manager on the same storage serves it without ordering.
	cache2 := certmgr.NewCache()
	m2, events2 := start(t, r, cache2)
	m2.Manage([]certmgr.Set{{Name: "bg.example.test", Domains: []string{"bg.example.test"}}})
	if e := next(t, events2); e.Kind != certmgr.EventLoaded {
		t.Fatalf("event %+v, want loaded from storage", e)
	}
	if _, err := cache2.Get("bg.example.test"); err != nil {
		t.Fatal(err)
	}
	m2.Manage(nil)
	if st := m2.Statuses(); len(st) != 0 {
		t.Fatalf("removed set still managed: %+v", st)
	}
}
