package certmgr_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
)

// gatedBackend holds every Load of a key containing one of held until
// release is closed: storage that is slow for some certificates.
type gatedBackend struct {
	storage.Backend
	held    []string
	release chan struct{}
}

func (g *gatedBackend) Load(ctx context.Context, key string) ([]byte, error) {
	for _, h := range g.held {
		if strings.Contains(key, h) {
			select {
			case <-g.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return g.Backend.Load(ctx, key)
}

// TestServesWhileLoading starts a manager on a storage where most stored
// certificates load slowly: Manage returns without waiting for them, a
// handshake for a name whose certificate nobody has loaded yet loads it
// then and is served, and the certificates still loading are neither
// ordered nor renewed meanwhile. Once storage answers, all are served,
// and the CA has seen no new order.
func TestServesWhileLoading(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	ctx := context.Background()
	// Every background loader blocks on a slow certificate; "late" is
	// last in line, so only its own handshake can load it.
	slow := 2 * runtime.GOMAXPROCS(0)
	var sets []certmgr.Set
	var held []string
	for i := range slow {
		n := fmt.Sprintf("slow%d.load.example.test", i)
		sets = append(sets, certmgr.Set{Name: n, Domains: []string{n}})
		held = append(held, n)
	}
	const late = "late.load.example.test"
	sets = append(sets, certmgr.Set{Name: late, Domains: []string{late}})

	m1 := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache()})
	m1.Manage(ctx, sets)
	m1.CheckNow(ctx)
	if got := len(c.Orders()); got != len(sets) {
		t.Fatalf("%d orders for %d names", got, len(sets))
	}

	g := &gatedBackend{Backend: r.store.Backend(), held: held, release: make(chan struct{})}
	opts := certmgr.Options{Issuer: c.client, Store: storage.New(g), Cache: certmgr.NewCache(), LoadWait: 1}
	ev := events(&opts)
	m2 := certmgr.New(opts)
	m2.Manage(ctx, sets) // returns while the slow ones are held
	addr := serveTLS(t, m2)

	stored := func(name string) string {
		b, err := r.store.LoadCertificate(ctx, name)
		must(t, err)
		leaf, err := b.Leaf()
		must(t, err)
		return leaf.SerialNumber.Text(16)
	}
	if got, err := handshake(addr, late, c.CA); err != nil || got != stored(late) {
		t.Fatalf("handshake for %s while others load: serial %q, %v; want the stored %s", late, got, err, stored(late))
	}
	if s := status(t, m2, held[0]); !s.Pending {
		t.Errorf("%s: %+v, want pending while its storage is held", held[0], s)
	}
	if n := m2.Loading(); n != len(held) {
		t.Errorf("Loading() = %d, want the %d held", n, len(held))
	}
	m2.CheckNow(ctx) // must not take "not loaded yet" for "missing"
	if got := len(c.Orders()); got != len(sets) {
		t.Fatalf("%d orders after a look at certificates still loading, want %d (no new order)", got, len(sets))
	}

	close(g.release)
	loaded := map[string]bool{}
	deadline := time.After(90 * time.Second)
	for len(loaded) < len(held) {
		select {
		case e := <-ev:
			if e.Kind == certmgr.EventLoaded && e.Name != late {
				loaded[e.Name] = true
			}
		case <-deadline:
			t.Fatalf("loaded after the release: %v, want all %d held", loaded, len(held))
		}
	}
	if n := m2.Loading(); n != 0 {
		t.Errorf("Loading() = %d after every certificate loaded", n)
	}
	for _, n := range held {
		if got, err := handshake(addr, n, c.CA); err != nil || got != stored(n) {
			t.Errorf("handshake for %s: serial %q, %v; want the stored %s", n, got, err, stored(n))
		}
	}
	m2.CheckNow(ctx)
	if got := len(c.Orders()); got != len(sets) {
		t.Errorf("%d orders in all, want %d: a stored certificate was ordered again", got, len(sets))
	}
}

// TestLoadWaitFollowsThePace: when a fifth of LoadWait shows that the
// stored certificates would take far longer than the wait to load, Manage
// returns then instead of waiting the rest; when they keep pace, it waits.
func TestLoadWaitFollowsThePace(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	ctx := context.Background()
	const first = "first.pace.example.test"
	sets := []certmgr.Set{{Name: first, Domains: []string{first}}}
	var held []string
	for i := range 20 {
		n := fmt.Sprintf("held%d.pace.example.test", i)
		sets = append(sets, certmgr.Set{Name: n, Domains: []string{n}})
		held = append(held, n)
	}
	m1 := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache()})
	m1.Manage(ctx, sets)
	m1.CheckNow(ctx)

	for _, tc := range []struct {
		name      string
		sets      []certmgr.Set
		waitsRest bool
	}{
		// 1 of 21 read in a fifth of the wait: 21 fifths, over twice the wait.
		{"slow store", sets, false},
		// 1 of 2 read: 2 fifths, within it.
		{"keeping pace", sets[:2], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gatedBackend{Backend: r.store.Backend(), held: held, release: make(chan struct{})}
			opts := certmgr.Options{Issuer: c.client, Store: storage.New(g), Cache: certmgr.NewCache(), LoadWait: time.Hour}
			ev := events(&opts)
			m := certmgr.New(opts)
			asked := make(chan time.Duration, 2)
			fire := make(chan time.Time)
			certmgr.SetLoadClock(m, func(d time.Duration) <-chan time.Time { asked <- d; return fire })
			returned := make(chan struct{})
			go func() { m.Manage(ctx, tc.sets); close(returned) }()
			t.Cleanup(func() { close(g.release); <-returned })
			if d := <-asked; d != time.Hour/5 {
				t.Fatalf("first wait %v, want a fifth of LoadWait", d)
			}
			waitFor(t, ev, certmgr.EventLoaded, first)
			fire <- time.Now()
			select {
			case <-returned:
				if tc.waitsRest {
					t.Fatal("Manage returned after a fifth of LoadWait, with the loads keeping pace")
				}
			case d := <-asked:
				if !tc.waitsRest {
					t.Fatalf("Manage waits %v more for a store that cannot be read within LoadWait", d)
				}
				if d != time.Hour-time.Hour/5 {
					t.Errorf("second wait %v, want the rest of LoadWait", d)
				}
				fire <- time.Now()
				<-returned
			}
		})
	}
}
