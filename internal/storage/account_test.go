package storage

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
)

const pebbleDir = "https://127.0.0.1:14000/dir"

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	return k
}

func TestSaveLoadAccount(t *testing.T) {
	tests := []struct {
		name, email, id, wantDir string
	}{
		{name: "email only", email: "me@example.test", wantDir: "me@example.test"},
		{name: "explicit id", email: "me@example.test", id: "prod", wantDir: "prod"},
		{name: "neither", wantDir: DefaultAccountID},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTestStore(t)
			key := newECKey(t)
			a := &Account{
				ID: tt.id, Email: tt.email, Server: pebbleDir, Key: key,
				Registration: &acme.ExtendedAccount{Account: acme.Account{Status: "valid"}, Location: "https://127.0.0.1:14000/my-account/1"},
			}

			if err := s.SaveAccount(context.Background(), a); err != nil {
				t.Fatalf("SaveAccount: %v", err)
			}

			dir := filepath.Join(s.Root(), "accounts", "127.0.0.1_14000", tt.wantDir)
			for _, f := range []string{"account.json", tt.wantDir + ".key"} {
				info, err := os.Stat(filepath.Join(dir, f))
				if err != nil {
					t.Fatalf("stat %s: %v", f, err)
				}

				if got := info.Mode().Perm(); got != 0o600 {
					t.Errorf("%s mode: got %o, want 600", f, got)
				}
			}

			for d := dir; d != s.Root(); d = filepath.Dir(d) {
				if info, err := os.Stat(d); err != nil || info.Mode().Perm() != 0o700 {
					t.Errorf("%s mode: got %v (err %v), want 700", d, info.Mode().Perm(), err)
				}
			}

			keyPEM, _ := os.ReadFile(filepath.Join(dir, tt.wantDir+".key"))
			if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
				t.Errorf("key file: want a PKCS#8 PRIVATE KEY block")
			}

			got, err := s.LoadAccount(context.Background(), pebbleDir, AccountID(tt.email, tt.id))
			if err != nil {
				t.Fatalf("LoadAccount: %v", err)
			}

			checks := []struct{ field, got, want string }{
				{"ID", got.ID, tt.wantDir},
				{"Email", got.GetEmail(), tt.email},
				{"Server", got.Server, pebbleDir},
				{"KeyType", string(got.KeyType), "EC256"},
				{"Location", got.GetRegistration().Location, a.Registration.Location},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
				}
			}

			if got.Legacy || !publicKeyMatches(got.GetPrivateKey(), key.Public()) {
				t.Errorf("Legacy %v / key match: want false and the saved key", got.Legacy)
			}
		})
	}
}

func TestLoadAccountMissing(t *testing.T) {
	s := openTestStore(t)
	key := newECKey(t)
	dir := filepath.Join(s.Root(), "accounts", "127.0.0.1_14000", "keyonly@example.test")

	if err := mkdirAll(dir); err != nil {
		t.Fatal(err)
	}

	keyPEM, err := encodePKCS8(key)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(dir, "keyonly@example.test.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("nothing stored", func(t *testing.T) {
		if _, err := s.LoadAccount(context.Background(), pebbleDir, "nobody@example.test"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %v, want an error wrapping fs.ErrNotExist", err)
		}
	})

	t.Run("key without account.json", func(t *testing.T) {
		a, err := s.LoadAccount(context.Background(), pebbleDir, "keyonly@example.test")
		if err != nil {
			t.Fatalf("LoadAccount: %v", err)
		}

		if a.Registration != nil || !publicKeyMatches(a.Key, key.Public()) {
			t.Errorf("got Registration %v and a different key; want nil and the stored key", a.Registration)
		}
	})
}

func TestAccountRefusals(t *testing.T) {
	s := openTestStore(t)
	key := newECKey(t)

	tests := []struct {
		name string
		a    *Account
		want string
	}{
		{"no key", &Account{Email: "a@example.test", Server: pebbleDir}, "no private key"},
		{"server without host", &Account{Email: "a@example.test", Server: "pebble", Key: key}, "no host"},
		{"id escapes its folder", &Account{ID: "../x", Server: pebbleDir, Key: key}, "cannot be used as a folder name"},
		{"nil", nil, "nil account"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SaveAccount(context.Background(), tt.a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SaveAccount: got %v, want an error containing %q", err, tt.want)
			}
		})
	}

	if files := snapshot(t, s.Root()); len(files) != 0 {
		t.Errorf("refused saves wrote %d files, want 0", len(files))
	}
}

func TestSaveAccountArchivesReplacedKey(t *testing.T) {
	s := openTestStore(t)
	s.now = func() time.Time { return time.Unix(1700000000, 0) }

	first := &Account{Email: "me@example.test", Server: pebbleDir, Key: newECKey(t)}
	if err := s.SaveAccount(context.Background(), first); err != nil {
		t.Fatal(err)
	}

	before := snapshot(t, s.Root())

	// Saving with the same key archives nothing.
	if err := s.SaveAccount(context.Background(), first); err != nil {
		t.Fatal(err)
	}

	if _, err := os.Stat(filepath.Join(s.Root(), "archives")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("same key: archives folder exists (err %v), want none", err)
	}

	second := &Account{Email: "me@example.test", Server: pebbleDir, Key: newECKey(t)}
	if err := s.SaveAccount(context.Background(), second); err != nil {
		t.Fatal(err)
	}

	middle := snapshot(t, s.Root())

	// A third key within the same second must not overwrite the first archive.
	third := &Account{Email: "me@example.test", Server: pebbleDir, Key: newECKey(t)}
	if err := s.SaveAccount(context.Background(), third); err != nil {
		t.Fatal(err)
	}

	after := snapshot(t, s.Root())

	for _, tc := range []struct {
		stamp string
		files map[string]string
	}{
		{"1700000000", before},
		{"1700000000-1", middle},
	} {
		for rel, content := range tc.files {
			if strings.HasPrefix(rel, "archives") {
				continue
			}

			archived := filepath.Join("archives", "accounts", tc.stamp, rel)
			if after[archived] != content {
				t.Errorf("%s: not archived byte-identical at %s", rel, archived)
			}
		}
	}
}

func TestParsePrivateKeyFormats(t *testing.T) {
	ec := newECKey(t)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)

	tests := []struct {
		name   string
		pem    []byte
		key    crypto.Signer
		format keyFormat
	}{
		{"PKCS#8 EC", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), ec, formatPKCS8},
		{"SEC1 EC", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ec, formatSEC1},
		{"SEC1 with EC PARAMETERS first", append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), ec, formatSEC1},
		{"PKCS#1 RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), rsaKey, formatPKCS1},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, format, err := parsePrivateKey(tt.pem)
			if err != nil {
				t.Fatalf("parsePrivateKey: %v", err)
			}

			if format != tt.format || !publicKeyMatches(got, tt.key.Public()) {
				t.Errorf("got format %d, want %d and the same key", format, tt.format)
			}
		})
	}
}

func TestConcurrentAccounts(t *testing.T) {
	s := openTestStore(t)

	const n = 20

	keys := make([]*ecdsa.PrivateKey, n)
	for i := range keys {
		keys[i] = newECKey(t)
	}

	var wg sync.WaitGroup

	errs := make(chan error, 2*n)

	for i := range n {
		wg.Go(func() {
			a := &Account{Email: fmt.Sprintf("user%d@example.test", i%5), Server: pebbleDir, Key: keys[i]}
			if err := s.SaveAccount(context.Background(), a); err != nil {
				errs <- err
			}
		})

		wg.Go(func() {
			a, err := s.LoadAccount(context.Background(), pebbleDir, fmt.Sprintf("user%d@example.test", i%5))
			if errors.Is(err, fs.ErrNotExist) {
				return
			}

			if err == nil && a.Key == nil {
				err = errors.New("loaded account without key")
			}

			if err != nil {
				errs <- err
			}
		})
	}

	wg.Wait()
	close(errs)

	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
}
