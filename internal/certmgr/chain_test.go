package certmgr_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net"
	"os"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/embedca"
)

// TestTruncatedChainIsRepaired: a .crt cut after the leaf is served with
// its stored issuer (two certificates in the handshake) and written back
// whole; a .crt whose issuer part belongs to another certificate is not
// served: a new certificate is ordered.
func TestTruncatedChainIsRepaired(t *testing.T) {
	r := newLifecycleRig(t)
	c := r.newCA(embedca.Options{})
	ctx := context.Background()
	const name = "chain.example.test"
	m := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache()})
	m.Manage(ctx, []certmgr.Set{{Name: name, Domains: []string{name}}})
	m.CheckNow(ctx)
	if len(c.Orders()) != 1 {
		t.Fatalf("orders: %d", len(c.Orders()))
	}
	path := r.store.CertPaths(name).Cert
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	leafOnly := pem.EncodeToMemory(firstBlock(t, full))
	must(t, os.WriteFile(path, leafOnly, 0o600))

	m2 := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache()})
	m2.Manage(ctx, []certmgr.Set{{Name: name, Domains: []string{name}}})
	addr := serveTLS(t, m2)
	if n := chainLen(t, addr, name, c.CA); n < 2 {
		t.Errorf("served %d certificates for a .crt cut after the leaf, want the leaf and its issuer", n)
	}
	if after, _ := os.ReadFile(path); string(after) == string(leafOnly) {
		t.Error("the cut .crt was not written back whole")
	}
	if len(c.Orders()) != 1 {
		t.Errorf("a repairable chain was ordered again: %d orders", len(c.Orders()))
	}

	// A chain whose issuer did not sign the leaf: ordered again.
	other := r.newCA(embedca.Options{})
	otherRoot := other.RootsPEM()
	must(t, os.WriteFile(path, append(leafOnly, otherRoot...), 0o600))
	m3 := certmgr.New(certmgr.Options{Issuer: c.client, Store: r.store, Cache: certmgr.NewCache()})
	m3.Manage(ctx, []certmgr.Set{{Name: name, Domains: []string{name}}})
	m3.CheckNow(ctx)
	if len(c.Orders()) != 2 {
		t.Errorf("a broken chain was not ordered again: %d orders", len(c.Orders()))
	}
}

func firstBlock(t *testing.T, data []byte) *pem.Block {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b
}

// chainLen returns how many certificates the server presents for name.
func chainLen(t *testing.T, addr, name string, roots *embedca.CA) int {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots.RootPool()})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return len(conn.ConnectionState().PeerCertificates)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
