package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
)

// storeCertificates saves n self-signed certificates (one key, unique
// serials) and returns their sets.
func storeCertificates(b *testing.B, store *storage.Store, n int) []certmgr.Set {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	now := time.Now()
	sets := make([]certmgr.Set, n)
	for i := range sets {
		name := fmt.Sprintf("c%05d.bench.example.test", i)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i) + 1000), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}
		crt, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			b.Fatal(err)
		}
		bundle := &storage.Bundle{Meta: storage.CertMeta{ID: name, StoredAt: now, StoredBy: "node-a"},
			Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt}), PrivateKey: keyPEM}
		if err := store.SaveCertificate(context.Background(), bundle); err != nil {
			b.Fatal(err)
		}
		sets[i] = certmgr.Set{Name: name, Domains: []string{name}}
	}
	return sets
}

// BenchmarkFleetView builds GET /api/v1/fleet for two nodes serving the
// same 1000 stored certificates: the nodes' documents (shards cached
// after the first call), and per certificate its stored state and its
// lock holder, on a file storage and on etcd.
func BenchmarkFleetView(b *testing.B) {
	const n = 1000
	// Each backend opens one storage (a folder, an etcd server) per run,
	// and a handle on it per node.
	backends := []struct {
		name  string
		start func(b *testing.B) func(holder string) *storage.Store
	}{
		{"files", func(b *testing.B) func(string) *storage.Store {
			dir := b.TempDir()
			return func(holder string) *storage.Store {
				f, err := storage.OpenFiles(dir, storage.FilesOptions{Holder: holder})
				if err != nil {
					b.Fatal(err)
				}
				return storage.New(f)
			}
		}},
		{"etcd", func(b *testing.B) func(string) *storage.Store {
			srv := etcdtest.Start(b)
			return func(holder string) *storage.Store {
				es, err := etcdstore.Open(context.Background(), etcdstore.Options{Endpoints: []string{srv.HostPort()}, Prefix: "bench", Holder: holder})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = es.Close() })
				return storage.New(es)
			}
		}},
	}
	for _, be := range backends {
		b.Run(fmt.Sprintf("%s/%d-certificates-2-nodes", be.name, n), func(b *testing.B) {
			ctx := context.Background()
			open := be.start(b)
			sa, sb := open("node-a"), open("node-b")
			sets := storeCertificates(b, sa, n)
			var fa *certmgr.Fleet
			for _, node := range []struct {
				holder string
				store  *storage.Store
			}{{"node-a", sa}, {"node-b", sb}} {
				m := certmgr.New(certmgr.Options{Store: node.store, Cache: certmgr.NewCache(), Holder: node.holder})
				m.Manage(ctx, sets)
				f := certmgr.NewFleet(certmgr.FleetOptions{Manager: m})
				if err := f.PublishNow(ctx); err != nil {
					b.Fatal(err)
				}
				if fa == nil {
					fa = f
				}
			}
			adm := New(Options{})
			for b.Loop() {
				v := adm.fleetView(ctx, fa, fleetQuery{limit: n, locks: true})
				if len(v.Certificates) != n || v.Summary.Live != 2 || v.Locks != LocksChecked || !v.Certificates[0].Agree {
					b.Fatalf("view: %d certificates, %d live, locks %s, warnings %v", len(v.Certificates), v.Summary.Live, v.Locks, v.Warnings)
				}
			}
		})
	}
}
