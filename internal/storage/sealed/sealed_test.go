package sealed_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"

	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/storage/sealed"
	"github.com/zoku/zoku/internal/storage/storagetest"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
)

func TestConformanceFiles(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*testing.T]string{}
	k := testKey(t, 1)
	storagetest.Run(t, storagetest.Options{
		Open: func(t *testing.T) storage.Backend {
			mu.Lock()
			d, ok := dirs[t]
			if !ok {
				d = t.TempDir()
				dirs[t] = d
			}
			mu.Unlock()
			f, err := storage.OpenFiles(d, storage.FilesOptions{PollInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return sealed.Wrap(f, sealed.Options{Key: k})
		},
	})
}

func TestConformanceEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	k := testKey(t, 1)
	storagetest.Run(t, storagetest.Options{
		Open: func(t *testing.T) storage.Backend {
			s, err := etcdstore.Open(t.Context(), etcdstore.Options{Endpoints: []string{srv.HostPort()}, Prefix: "sealed/" + t.Name(), LeaseTTL: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return sealed.Wrap(s, sealed.Options{Key: k})
		},
		Expire: func(t *testing.T, l storage.Lease) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := etcdstore.ExpireLease(ctx, l); err != nil {
				t.Fatalf("expire lease: %v", err)
			}
		},
	})
}

func TestIsSecret(t *testing.T) {
	for key, want := range map[string]bool{
		"certificates/a.example.key":                             true,
		"certificates/a.example.pem":                             true,
		"certificates/a.example.pfx":                             true,
		"certificates/a.example.crt":                             false,
		"certificates/a.example.issuer.crt":                      false,
		"certificates/a.example.json":                            false,
		"accounts/ca_443/me@example.com/me@example.com.key":      true,
		"accounts/ca_443/me@example.com/keys/me@example.com.key": true,
		"accounts/ca_443/me@example.com/account.json":            false,
		"archives/certificates/a.example_1700000000.zip":         true,
		"archives/lego-v4/1700000000/certificates/a.key":         true,
		"archives/accounts/1700000000/ca_443/me/me.key":          true,
		"embedded-ca/root-key.pem":                               false,
		"challenges/http-01/token":                               false,
		"deploy/state.json":                                      false,
	} {
		if got := sealed.IsSecret(key); got != want {
			t.Errorf("IsSecret(%q) = %v, want %v", key, got, want)
		}
	}
}

// testAccount is an account with a fresh EC key.
func testAccount(t *testing.T) *storage.Account {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &storage.Account{Email: "me@example.com", Server: "https://ca.example:14000/dir", Key: key,
		Registration: &acme.ExtendedAccount{Account: acme.Account{Status: "valid"}, Location: "https://ca.example:14000/acct/1"}}
}

// TestStoreOverSealedFiles runs lego's layout over the wrapper: the files
// that hold keys are sealed on disk (0600 in 0700 folders), everything
// else is as lego writes it, and the store reads it all back.
func TestStoreOverSealedFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	f, err := storage.OpenFiles(dir, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k := testKey(t, 3)
	st := storage.New(sealed.Wrap(f, sealed.Options{Key: k}))
	b := deploytest.Bundle(t, "a.example", false)
	b.WritePEM = true
	if err := st.SaveCertificate(ctx, b); err != nil {
		t.Fatal(err)
	}
	acct := testAccount(t)
	if err := st.SaveAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if st.Root() != dir {
		t.Errorf("Root() through the wrapper = %q, want %q", st.Root(), dir)
	}
	if p := st.CertPaths("a.example").Key; p != filepath.Join(dir, "certificates", "a.example.key") {
		t.Errorf("CertPaths through the wrapper: key %q", p)
	}
	for rel, wantSealed := range map[string]bool{
		"certificates/a.example.key":                                  true,
		"certificates/a.example.pem":                                  true,
		"certificates/a.example.crt":                                  false,
		"certificates/a.example.json":                                 false,
		"accounts/ca.example_14000/me@example.com/me@example.com.key": true,
		"accounts/ca.example_14000/me@example.com/account.json":       false,
	} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := sealed.IsSealed(raw); got != wantSealed {
			t.Errorf("%s sealed on disk: %v, want %v", rel, got, wantSealed)
		}
		if wantSealed && bytes.Contains(raw, []byte("PRIVATE KEY")) {
			t.Errorf("%s shows a private key on disk", rel)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", rel, fi.Mode().Perm())
		}
		di, _ := os.Stat(filepath.Dir(p))
		if di.Mode().Perm() != 0o700 {
			t.Errorf("folder of %s has mode %v, want 0700", rel, di.Mode().Perm())
		}
	}
	got, err := st.LoadCertificate(ctx, "a.example")
	if err != nil {
		t.Fatalf("LoadCertificate through the wrapper: %v", err)
	}
	if !bytes.Equal(got.PrivateKey, b.PrivateKey) {
		t.Error("the key read back differs from the key saved")
	}
	if a, err := st.LoadAccount(ctx, acct.Server, "me@example.com"); err != nil || !a.Key.Public().(*ecdsa.PublicKey).Equal(acct.Key.Public()) {
		t.Errorf("LoadAccount through the wrapper: %v", err)
	}

	// An archived set is one sealed zip, which opens to lego's zip.
	zipPath, err := st.ArchiveCertificate(ctx, "a.example", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if !sealed.IsSealed(raw) {
		t.Errorf("the archive %s is not sealed", zipPath)
	}
	rel, _ := filepath.Rel(dir, zipPath)
	plain, err := sealed.Open(k, filepath.ToSlash(rel), raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zip.NewReader(bytes.NewReader(plain), int64(len(plain))); err != nil {
		t.Errorf("the opened archive is not a zip: %v", err)
	}
}

// TestReadWithWrongOrNoKey: a storage sealed with one key, read with
// another or with none, fails with one line naming the file and the key
// ID it needs; the backend underneath shows only ciphertext.
func TestReadWithWrongOrNoKey(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	open := func(k *sealed.Key) *storage.Store {
		f, err := storage.OpenFiles(dir, storage.FilesOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return storage.New(sealed.Wrap(f, sealed.Options{Key: k}))
	}
	right, wrong := testKey(t, 4), testKey(t, 5)
	b := deploytest.Bundle(t, "b.example", false)
	if err := open(right).SaveCertificate(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		key      *sealed.Key
		sentinel error
		want     string
	}{
		{"wrong key", wrong, sealed.ErrWrongKey, "certificates/b.example.key is encrypted with storage key " + right.ID() + ", but the key configured is " + wrong.ID()},
		{"no key", nil, sealed.ErrNoKey, "certificates/b.example.key is encrypted with storage key " + right.ID() + "; configure that key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := open(tc.key).LoadCertificate(ctx, "b.example")
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("LoadCertificate: %v, want one line with %q", err, tc.want)
			}
		})
	}
}

// TestPlainThenSealed: a folder written without encryption stays
// readable once a key is configured, and a value is sealed when it is
// next written.
func TestPlainThenSealed(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	f, err := storage.OpenFiles(dir, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := deploytest.Bundle(t, "c.example", false)
	if err := storage.New(f).SaveCertificate(ctx, b); err != nil {
		t.Fatal(err)
	}
	st := storage.New(sealed.Wrap(f, sealed.Options{Key: testKey(t, 6)}))
	got, err := st.LoadCertificate(ctx, "c.example")
	if err != nil || !bytes.Equal(got.PrivateKey, b.PrivateKey) {
		t.Fatalf("reading a plain folder with a key: %v", err)
	}
	if err := st.SaveCertificate(ctx, got); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "certificates", "c.example.key"))
	if !sealed.IsSealed(raw) {
		t.Error("the key is not sealed after it was written again")
	}
}

// TestSwappedValues: a sealed value copied under another key of the same
// storage does not open there.
func TestSwappedValues(t *testing.T) {
	ctx := t.Context()
	f, err := storage.OpenFiles(t.TempDir(), storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := sealed.Wrap(f, sealed.Options{Key: testKey(t, 9)})
	if err := w.Store(ctx, "certificates/a.key", []byte("key of a")); err != nil {
		t.Fatal(err)
	}
	raw, err := f.Load(ctx, "certificates/a.key")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Store(ctx, "certificates/b.key", raw); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Load(ctx, "certificates/b.key"); !errors.Is(err, sealed.ErrCorrupt) || !strings.Contains(err.Error(), "certificates/b.key") {
		t.Errorf("Load of a value moved from a.key to b.key: %v, want ErrCorrupt naming b.key", err)
	}
	// A batch seals as Store does.
	if err := w.StoreAll(ctx, []storage.Op{{Key: "accounts/h/id/id.key", Value: []byte("k")}, {Key: "accounts/h/id/account.json", Value: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := f.Load(ctx, "accounts/h/id/id.key"); !sealed.IsSealed(raw) {
		t.Error("StoreAll did not seal the account key")
	}
	if raw, _ := f.Load(ctx, "accounts/h/id/account.json"); string(raw) != "{}" {
		t.Errorf("StoreAll changed account.json: %q", raw)
	}
}
