package certmgr_test

import (
	"context"
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
