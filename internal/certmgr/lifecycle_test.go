//go:build !race

// These tests renew with ARI "replaces"; Pebble has a data race in its
// replacement bookkeeping, so they run in the non-race pass (-run NoRace).

package certmgr_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
)

// Short-lived certificates renew again and again inside their ARI window
// while a bounded handshake loop sees no failure, and every renewal names
// the certificate it replaces.
func TestNoRaceRenewalsUnderLoadKeepServing(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{Validity: 12 * time.Second})
	cache := certmgr.NewCache()
	opts := certmgr.Options{Issuer: c.client, Store: r.store, Cache: cache}
	ev := events(&opts)
	m := certmgr.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	addr := serveTLS(t, m)
	const name = "short.example.test"
	m.Manage(context.Background(), []certmgr.Set{{Name: name, Domains: []string{name}}})
	waitFor(t, ev, certmgr.EventObtained, name)

	var failures, handshakes atomic.Int64
	serials := sync.Map{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s, err := handshake(addr, name, c.CA)
				handshakes.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("handshake: %v", err)
					return
				}
				serials.Store(s, true)
			}
		}()
	}
	const renewals = 3
	for i := 0; i < renewals; i++ {
		waitFor(t, ev, certmgr.EventRenewed, name)
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d handshakes failed during %d renewals", failures.Load(), handshakes.Load(), renewals)
	}
	n := 0
	serials.Range(func(any, any) bool { n++; return true })
	if n < 2 {
		t.Errorf("clients saw %d distinct certificates over %d renewals; hot swap did not happen", n, renewals)
	}
	orders := c.Orders()
	if len(orders) < renewals+1 {
		t.Fatalf("CA saw %d orders, want at least %d", len(orders), renewals+1)
	}
	for i, o := range orders[1:] {
		if o.Replaces == "" {
			t.Errorf("renewal order %d did not send replaces", i+1)
		}
	}
}

// The CA goes down: the old certificate keeps serving, failures back off
// further each time, and the renewal succeeds when the CA returns.
func TestNoRaceOutageBacksOffAndRecovers(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	clk := &clock{now: time.Now()}
	cache := certmgr.NewCache()
	m := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: cache, Now: clk.Now, Rand: func() float64 { return 0.5 }})
	const name = "outage.example.test"
	ctx := context.Background()
	m.Manage(context.Background(), []certmgr.Set{{Name: name, Domains: []string{name}}})
	m.CheckNow(ctx) // obtain
	first := status(t, m, name)
	if first.Serial == "" {
		t.Fatalf("not obtained: %+v", first)
	}
	c.SetDown(true)
	clk.Set(first.NotAfter.Add(-20 * 24 * time.Hour)) // past the ARI window and the lifetime rule
	m.CheckNow(ctx)                                   // ARI poll fails: the known window stands
	m.CheckNow(ctx)                                   // renewal fails
	var waits []time.Duration
	for i := 0; i < 3; i++ {
		s := status(t, m, name)
		if s.Failures != i+1 || s.LastErr == "" {
			t.Fatalf("after failure %d: %+v", i+1, s)
		}
		if s.Serial != first.Serial {
			t.Fatal("the certificate in service changed during the outage")
		}
		if crt, err := cache.Get(name); err != nil || crt.Leaf.SerialNumber.Text(16) != first.Serial {
			t.Fatal("the old certificate stopped being served during the outage")
		}
		waits = append(waits, s.RetryAt.Sub(clk.Now()))
		clk.Set(s.RetryAt.Add(time.Second))
		if i < 2 {
			m.CheckNow(ctx)
		}
	}
	if !(waits[0] < waits[1] && waits[1] < waits[2]) {
		t.Fatalf("backoff did not grow: %v", waits)
	}
	if waits[0] < 30*time.Second || waits[2] > 6*time.Hour {
		t.Fatalf("backoff outside 1 minute to 6 hours (with jitter): %v", waits)
	}
	c.SetDown(false)
	m.CheckNow(ctx)
	s := status(t, m, name)
	if s.Failures != 0 || s.Serial == first.Serial {
		t.Fatalf("no renewal after the CA came back: %+v", s)
	}
}

// After FallbackAfter failures the next CA takes over; once it succeeded,
// the next renewal goes to the first CA again.
func TestNoRaceFallbackCA(t *testing.T) {
	r := newLifecycleRig(t)
	primary := r.newCA(embedca.Options{})
	backup := r.newCA(embedca.Options{})
	clk := &clock{now: time.Now()}
	m := certmgr.New(certmgr.Options{
		Issuers: []certmgr.Issuer{primary.client, backup.client}, FallbackAfter: 2,
		Store: r.store, Cache: certmgr.NewCache(), Now: clk.Now, Rand: func() float64 { return 0.5 },
	})
	const name = "fallback.example.test"
	ctx := context.Background()
	m.Manage(context.Background(), []certmgr.Set{{Name: name, Domains: []string{name}}})
	m.CheckNow(ctx)
	if s := status(t, m, name); s.CA != primary.DirectoryURL() {
		t.Fatalf("first certificate from %s, want the primary", s.CA)
	}
	primary.SetDown(true)
	for i := 0; i < 2; i++ {
		if err := m.RenewNow(name); err != nil {
			t.Fatal(err)
		}
		m.CheckNow(ctx)
		clk.Set(status(t, m, name).RetryAt.Add(time.Second))
	}
	m.CheckNow(ctx)
	s := status(t, m, name)
	if s.CA != backup.DirectoryURL() || s.Failures != 0 {
		t.Fatalf("after 2 failures the backup CA should have issued: %+v", s)
	}
	primary.SetDown(false)
	if err := m.RenewNow(name); err != nil {
		t.Fatal(err)
	}
	m.CheckNow(ctx)
	if s := status(t, m, name); s.CA != primary.DirectoryURL() {
		t.Fatalf("after a success the next order should go to the primary again, got %s", s.CA)
	}
	for _, o := range backup.Orders() {
		if o.Replaces != "" {
			t.Errorf("the backup CA was sent replaces for a certificate it never issued")
		}
	}
}

// A reused "replaces" gets 409 alreadyReplaced from Pebble, and a CA that
// refuses replaces answers 403: either way one more order goes out without
// it, and the renewal succeeds.
func TestNoRaceReplacesRefusedRetriesWithout(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	ctx := context.Background()
	const name = "replaced.example.test"
	old, err := c.client.Obtain(ctx, acmeclient.ObtainRequest{Domains: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	renewOld := acmeclient.RenewRequest{Name: name, Certificate: old.Certificate, PrivateKey: old.PrivateKey}
	if _, err := c.client.Renew(ctx, renewOld); err != nil {
		t.Fatal(err)
	}
	before := len(c.Orders())
	cur, err := c.client.Renew(ctx, renewOld)
	if err != nil {
		t.Fatalf("second renewal of the same certificate: %v", err)
	}
	o := c.Orders()[before:]
	if len(o) != 2 || o[0].Replaces == "" || o[1].Replaces != "" {
		t.Fatalf("409 alreadyReplaced: orders %+v, want one with replaces then one without", o)
	}

	c.SetRejectReplaces(true)
	before = len(c.Orders())
	if _, err := c.client.Renew(ctx, acmeclient.RenewRequest{Name: name, Certificate: cur.Certificate, PrivateKey: cur.PrivateKey}); err != nil {
		t.Fatalf("renewal with replaces refused by 403: %v", err)
	}
	o = c.Orders()[before:]
	if len(o) != 2 || !o[0].Refused || o[1].Replaces != "" {
		t.Fatalf("403: orders %+v, want a refused one with replaces then one without", o)
	}
	if !strings.Contains(o[0].Replaces, ".") {
		t.Errorf("replaces %q is not an ARI cert ID", o[0].Replaces)
	}
}
