package storage

import (
	"archive/zip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSaveCertificateModesAndLoad(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Test Issuer")
	b := ca.bundle(t, "*.example.com", "*.example.com", "example.com")
	b.Meta.Domains = nil // filled from the leaf

	if err := s.SaveCertificate(context.Background(), b); err != nil {
		t.Fatalf("SaveCertificate: %v", err)
	}

	if b.Meta.Domains != nil {
		t.Errorf("SaveCertificate modified its argument: Domains %v", b.Meta.Domains)
	}

	err := filepath.WalkDir(s.Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		info, err := d.Info()
		if err != nil {
			return err
		}

		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}

		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode got %o, want %o", p, got, want)
		}

		if isTempName(d.Name()) {
			t.Errorf("temporary file left behind: %s", p)
		}

		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	got, err := s.LoadCertificate(context.Background(), "*.example.com")
	if err != nil {
		t.Fatalf("LoadCertificate: %v", err)
	}

	if want := []string{"*.example.com", "example.com"}; !slices.Equal(got.Meta.Domains, want) {
		t.Errorf("Domains: got %v, want %v", got.Meta.Domains, want)
	}

	if got.Meta.KeyType != "EC256" || got.Meta.Legacy {
		t.Errorf("KeyType/Legacy: got %q/%v, want EC256/false", got.Meta.KeyType, got.Meta.Legacy)
	}

	if string(got.Certificate) != string(b.Certificate) || string(got.PrivateKey) != string(b.PrivateKey) {
		t.Errorf("round trip: certificate or key bytes differ")
	}

	if _, err := s.LoadCertificate(context.Background(), "missing.example.com"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadCertificate(missing): got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestSaveCertificateRefusedLeavesOldSet(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Test Issuer")
	const id = "www.example.com"

	if err := s.SaveCertificate(context.Background(), ca.bundle(t, id)); err != nil {
		t.Fatalf("SaveCertificate: %v", err)
	}

	before := snapshot(t, s.Root())

	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	otherPEM, err := encodePKCS8(otherKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		mutate func(b *Bundle)
		want   string
	}{
		{"key does not match", func(b *Bundle) { b.PrivateKey = otherPEM }, "does not match the certificate"},
		{"garbage certificate PEM", func(b *Bundle) {
			b.Certificate = []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
		}, "certificate PEM is invalid"},
		{"no PEM at all", func(b *Bundle) { b.Certificate = []byte("garbage") }, "certificate PEM is invalid"},
		{"garbage key PEM", func(b *Bundle) { b.PrivateKey = []byte("garbage") }, "private key is invalid"},
		{"empty ID", func(b *Bundle) { b.Meta.ID = "" }, "empty ID"},
		{"issuer first", func(b *Bundle) { b.Certificate = append(append([]byte{}, ca.pem...), b.Certificate...) }, "not the leaf"},
		{"garbage issuer", func(b *Bundle) { b.IssuerCertificate = []byte("junk") }, "issuer PEM is invalid"},
		{"unrelated second certificate", func(b *Bundle) {
			leaf, _ := b.Leaf()
			other := newTestCA(t, "Other Issuer")
			b.Certificate = append(encodeCertificates([]*x509.Certificate{leaf}), other.pem...)
		}, "did not issue"},
		{"unusable name", func(b *Bundle) { b.Meta.ID = "/" }, "unusable file name"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ca.bundle(t, id)
			tt.mutate(b)

			err := s.SaveCertificate(context.Background(), b)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "storage: ") {
				t.Fatalf("SaveCertificate: got error %v, want one starting %q and containing %q", err, "storage: ", tt.want)
			}

			after := snapshot(t, s.Root())
			if len(after) != len(before) {
				t.Errorf("files: got %d, want the %d of the old set", len(after), len(before))
			}

			for rel, content := range before {
				if after[rel] != content {
					t.Errorf("%s changed after a refused save", rel)
				}
			}
		})
	}
}

func TestSaveCertificateWithoutKey(t *testing.T) {
	ca := newTestCA(t, "Test Issuer")

	tests := []struct {
		name        string
		sameKey     bool // the CSR reused the stored key
		wantKeyFile bool
	}{
		{name: "stored key matches the new leaf", sameKey: true, wantKeyFile: true},
		{name: "stored key is stale", sameKey: false, wantKeyFile: false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestStore(t)
			old := ca.bundle(t, "csr.example.com")
			old.WritePEM = true

			if err := s.SaveCertificate(context.Background(), old); err != nil {
				t.Fatalf("SaveCertificate: %v", err)
			}

			next := ca.bundle(t, "csr.example.com")
			if tt.sameKey {
				key, _, err := parsePrivateKey(old.PrivateKey)
				if err != nil {
					t.Fatal(err)
				}

				next.Certificate = ca.issueWithKey(t, key.(*ecdsa.PrivateKey), "csr.example.com")
			}

			next.PrivateKey = nil

			if err := s.SaveCertificate(context.Background(), next); err != nil {
				t.Fatalf("SaveCertificate without key: %v", err)
			}

			paths := s.CertPaths("csr.example.com")
			for _, p := range []string{paths.Key, paths.PEM} {
				if ok, _ := fileExists(p); ok != tt.wantKeyFile {
					t.Errorf("%s exists: got %v, want %v", filepath.Base(p), ok, tt.wantKeyFile)
				}
			}

			got, err := s.LoadCertificate(context.Background(), "csr.example.com")
			if err != nil {
				t.Fatalf("LoadCertificate: %v", err)
			}

			if got.PrivateKey != nil {
				leaf, _ := got.Leaf()
				key, _, err := parsePrivateKey(got.PrivateKey)

				if err != nil || !publicKeyMatches(key, leaf.PublicKey) {
					t.Errorf("loaded key does not match the new leaf (err %v)", err)
				}
			}
		})
	}
}

func TestSaveCertificateIDCollision(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Test Issuer")

	if err := s.SaveCertificate(context.Background(), ca.bundle(t, "a:b", "ab.example.com")); err != nil {
		t.Fatalf("SaveCertificate(a:b): %v", err)
	}

	err := s.SaveCertificate(context.Background(), ca.bundle(t, "a-b", "ab.example.com"))
	if err == nil || !strings.Contains(err.Error(), "choose another --cert.name") {
		t.Errorf("SaveCertificate(a-b): got %v, want a collision error", err)
	}
}

func TestSaveCertificateWritePEM(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Test Issuer")
	b := ca.bundle(t, "pem.example.com")
	b.WritePEM = true

	if err := s.SaveCertificate(context.Background(), b); err != nil {
		t.Fatalf("SaveCertificate: %v", err)
	}

	// A renewal that does not ask for the .pem still refreshes it.
	renewed := ca.bundle(t, "pem.example.com")
	if err := s.SaveCertificate(context.Background(), renewed); err != nil {
		t.Fatalf("SaveCertificate (renewal): %v", err)
	}

	got, err := os.ReadFile(s.CertPaths("pem.example.com").PEM)
	if err != nil {
		t.Fatalf("read .pem: %v", err)
	}

	if want := string(renewed.Certificate) + string(renewed.PrivateKey); string(got) != want {
		t.Errorf(".pem: got %d bytes, want the renewed certificate then key (%d bytes)", len(got), len(want))
	}
}

func TestArchiveCertificate(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Test Issuer")
	const id = "*.archive.example"

	now := time.Unix(1700000000, 0)
	want := map[string]string{}

	for round, wantZip := range []string{"_.archive.example_1700000000.zip", "_.archive.example_1700000001.zip"} {
		if err := s.SaveCertificate(context.Background(), ca.bundle(t, id)); err != nil {
			t.Fatalf("SaveCertificate: %v", err)
		}

		for rel, content := range snapshot(t, filepath.Join(s.Root(), "certificates")) {
			want[rel] = content
		}

		zipPath, err := s.ArchiveCertificate(context.Background(), id, now)
		if err != nil {
			t.Fatalf("ArchiveCertificate round %d: %v", round, err)
		}

		if got := filepath.Base(zipPath); got != wantZip {
			t.Errorf("zip name: got %q, want %q", got, wantZip)
		}

		if rel, _ := filepath.Rel(s.Root(), zipPath); filepath.Dir(rel) != filepath.Join("archives", "certificates") {
			t.Errorf("zip folder: got %q, want archives/certificates", filepath.Dir(rel))
		}

		info, err := os.Stat(zipPath)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("zip mode: got %v (err %v), want 600", info.Mode().Perm(), err)
		}

		zr, err := zip.OpenReader(zipPath)
		if err != nil {
			t.Fatalf("open zip: %v", err)
		}

		if zr.Comment != "certificates" {
			t.Errorf("zip comment: got %q, want %q (lego restores into it)", zr.Comment, "certificates")
		}

		var names []string

		for _, f := range zr.File {
			names = append(names, f.Name)
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}

			data, _ := io.ReadAll(rc)
			_ = rc.Close()

			if string(data) != want[f.Name] {
				t.Errorf("zip entry %s differs from the live file", f.Name)
			}
		}

		_ = zr.Close()
		slices.Sort(names)

		if wantNames := []string{"_.archive.example.crt", "_.archive.example.issuer.crt", "_.archive.example.json", "_.archive.example.key"}; !slices.Equal(names, wantNames) {
			t.Errorf("zip entries: got %v, want %v", names, wantNames)
		}

		if live := snapshot(t, filepath.Join(s.Root(), "certificates")); len(live) != 0 {
			t.Errorf("live files after archiving: got %v, want none", slices.Collect(maps.Keys(live)))
		}
	}

	if _, err := s.ArchiveCertificate(context.Background(), "nothing.example", now); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ArchiveCertificate(missing): got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestListCertificates(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Test Issuer")

	for _, id := range []string{"c.example", "*.a.example", "b.example"} {
		if err := s.SaveCertificate(context.Background(), ca.bundle(t, id)); err != nil {
			t.Fatalf("SaveCertificate(%s): %v", id, err)
		}
	}

	dir := filepath.Join(s.Root(), "certificates")
	junk := []string{
		".d.example.json" + tempMarker + "123", // our temp file, mid-write
		"e.example.json" + tempMarker + "9",
		".hidden.json",
	}

	for _, name := range junk {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.Mkdir(filepath.Join(dir, "folder.json"), 0o700); err != nil {
		t.Fatal(err)
	}

	list, err := s.ListCertificates(context.Background())
	if err != nil {
		t.Fatalf("ListCertificates: %v", err)
	}

	var ids []string
	for _, b := range list {
		ids = append(ids, b.Meta.ID)
	}

	if want := []string{"*.a.example", "b.example", "c.example"}; !slices.Equal(ids, want) {
		t.Errorf("IDs: got %v, want %v", ids, want)
	}

	// A broken set is reported but does not hide the others.
	if err := os.WriteFile(filepath.Join(dir, "broken.example.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}

	list, err = s.ListCertificates(context.Background())
	if err == nil || !strings.Contains(err.Error(), "broken.example") {
		t.Errorf("ListCertificates with a broken .json: got error %v, want one naming it", err)
	}

	if len(list) != 3 {
		t.Errorf("ListCertificates with a broken .json: got %d bundles, want 3", len(list))
	}
}

func TestConcurrentSaves(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Test Issuer")

	const (
		ids     = 50
		writers = 4 // per ID, each with its own key, so a torn set shows
	)

	bundles := make([][]*Bundle, ids)
	for i := range bundles {
		for range writers {
			bundles[i] = append(bundles[i], ca.bundle(t, fmt.Sprintf("host%d.example", i)))
		}
	}

	var wg sync.WaitGroup

	errs := make(chan error, ids*writers*2)

	for i := range ids {
		for w := range writers {
			wg.Go(func() {
				if err := s.SaveCertificate(context.Background(), bundles[i][w]); err != nil {
					errs <- err
				}
			})

			wg.Go(func() {
				b, err := s.LoadCertificate(context.Background(), fmt.Sprintf("host%d.example", i))
				if errors.Is(err, fs.ErrNotExist) {
					return
				}

				if err == nil {
					err = checkConsistent(b)
				}

				if err != nil {
					errs <- err
				}
			})
		}
	}

	wg.Go(func() {
		if _, err := s.ListCertificates(context.Background()); err != nil {
			errs <- err
		}
	})

	wg.Wait()
	close(errs)

	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}

	list, err := s.ListCertificates(context.Background())
	if err != nil || len(list) != ids {
		t.Fatalf("ListCertificates: got %d, err %v; want %d", len(list), err, ids)
	}

	for _, b := range list {
		if err := checkConsistent(b); err != nil {
			t.Errorf("%s: %v", b.Meta.ID, err)
		}
	}
}

// checkConsistent reports whether a bundle's key belongs to its leaf.
func checkConsistent(b *Bundle) error {
	leaf, err := b.Leaf()
	if err != nil {
		return err
	}

	key, _, err := parsePrivateKey(b.PrivateKey)
	if err != nil {
		return err
	}

	if !publicKeyMatches(key, leaf.PublicKey) {
		return fmt.Errorf("%s: torn set: key and certificate from different saves", b.Meta.ID)
	}

	return nil
}
