package certmgr_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
)

func TestOnDemandAskGatesOrders(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	var asked atomic.Int64
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		asked.Add(1)
		if strings.HasPrefix(req.URL.Query().Get("domain"), "ok-") {
			return // 200
		}
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer ask.Close()
	opts := certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache(),
		OnDemand: &certmgr.OnDemand{Ask: ask.URL, Allow: []string{"*.example.test"}, RatePerMinute: 600, Wait: 60 * time.Second}}
	m := certmgr.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	addr := serveTLS(t, m)

	const scans = 20
	for i := 0; i < scans; i++ {
		name := fmt.Sprintf("scan-%d.example.test", i)
		for j := 0; j < 3; j++ { // a scanner retries; the refusal is remembered
			if _, err := handshake(addr, name, c.CA); err == nil {
				t.Fatalf("%s got a certificate though the ask endpoint said no", name)
			}
		}
	}
	if _, err := handshake(addr, "outside.other.test", c.CA); err == nil {
		t.Fatal("a name outside the allowlist got a certificate")
	}
	if n := len(c.Orders()); n != 0 {
		t.Fatalf("refused names caused %d orders", n)
	}
	if n := asked.Load(); n != scans {
		t.Fatalf("ask endpoint asked %d times for %d names; refusals should be remembered", n, scans)
	}
	for _, name := range []string{"ok-1.example.test", "ok-2.example.test"} {
		if _, err := handshake(addr, name, c.CA); err != nil {
			t.Fatalf("allowed %s: %v", name, err)
		}
	}
	if n := len(c.Orders()); n != 2 {
		t.Fatalf("%d orders for 2 allowed names", n)
	}
}

// A route's certificate that is no longer wanted is not renewed.
func TestRemovedNameIsNotRenewed(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	clk := &clock{now: time.Now()}
	m := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache(), Now: clk.Now})
	ctx := context.Background()
	m.Manage(context.Background(), []certmgr.Set{{Name: "keep.example.test", Domains: []string{"keep.example.test"}}, {Name: "drop.example.test", Domains: []string{"drop.example.test"}}})
	m.CheckNow(ctx)
	if len(c.Orders()) != 2 {
		t.Fatalf("orders: %+v", c.Orders())
	}
	m.Manage(context.Background(), []certmgr.Set{{Name: "keep.example.test", Domains: []string{"keep.example.test"}}})
	if err := m.RenewNow("drop.example.test"); err != certmgr.ErrNotManaged {
		t.Fatalf("RenewNow(dropped) = %v, want ErrNotManaged", err)
	}
	clk.Set(time.Now().Add(89 * 24 * time.Hour)) // everything would be due
	m.CheckNow(ctx)
	m.CheckNow(ctx)
	for _, o := range c.Orders()[2:] {
		if o.Identifiers[0] == "drop.example.test" {
			t.Fatal("the dropped name was renewed")
		}
	}
	if _, err := r.store.LoadCertificate(context.Background(), "drop.example.test"); err != nil {
		t.Fatalf("files of the dropped name should stay: %v", err)
	}
}

// TestOnDemandOneAskPerName: 100 handshakes at once for one unknown name
// make one call to the ask endpoint, and the name is ordered once.
func TestOnDemandOneAskPerName(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	var asked atomic.Int64
	release := make(chan struct{})
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		asked.Add(1)
		<-release // hold the answer until every handshake is waiting
	}))
	defer ask.Close()
	m := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache(),
		OnDemand: &certmgr.OnDemand{Ask: ask.URL, RatePerMinute: 600, Wait: 60 * time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Count the handshakes that reached the manager.
	var entered atomic.Int64
	allIn := make(chan struct{})
	const n = 100
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if entered.Add(1) == n {
			close(allIn)
		}
		return m.GetCertificate(h)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); _ = conn.(*tls.Conn).Handshake() }()
		}
	}()
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := handshake(ln.Addr().String(), "burst.example.test", c.CA)
			errs <- err
		}()
	}
	// Release the ask only once all 100 handshakes wait in the manager.
	<-allIn
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("handshake: %v", err)
		}
	}
	if got := asked.Load(); got != 1 {
		t.Errorf("ask endpoint called %d times for one name, want 1", got)
	}
	if got := len(c.Orders()); got != 1 {
		t.Errorf("%d orders for one name, want 1", got)
	}
}
