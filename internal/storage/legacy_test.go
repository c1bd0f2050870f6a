package storage

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var regenLegacy = flag.Bool("regen-legov4", false, "rewrite testdata/legov4 with fresh throwaway keys")

// Paths of the lego v4 fixture, relative to testdata/legov4. The tree has the
// shape of a lego v4 --path after `lego --email you@example.test -d
// '*.example.test' run` against Let's Encrypt staging.
const (
	legacyServer     = "https://acme-staging-v02.api.letsencrypt.org/directory"
	legacyEmail      = "you@example.test"
	legacyAcctDir    = "accounts/acme-staging-v02.api.letsencrypt.org/you@example.test"
	legacyAcctJSON   = legacyAcctDir + "/account.json"
	legacyAcctKey    = legacyAcctDir + "/keys/you@example.test.key"
	legacyCertID     = "*.example.test"
	legacyCertBase   = "certificates/_.example.test"
	legacyAccountURL = "https://acme-staging-v02.api.letsencrypt.org/acme/acct/1234567"
	legacyCertURL    = "https://acme-staging-v02.api.letsencrypt.org/acme/cert/fa4c0e1d2b3a"
)

// TestRegenerateLegacyFixture rewrites the fixture when run with
// -regen-legov4; the keys in it are throwaway test keys.
func TestRegenerateLegacyFixture(t *testing.T) {
	if !*regenLegacy {
		t.Skip("fixture regeneration runs only with -regen-legov4")
	}

	root := filepath.Join("testdata", "legov4")
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}

	acctKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	sec1, err := x509.MarshalECPrivateKey(acctKey)
	if err != nil {
		t.Fatal(err)
	}

	ca := newTestCA(t, "Example Test Issuer")
	leaf, _, leafKey := ca.issue(t, legacyCertID, "example.test")

	files := map[string]string{
		legacyAcctKey: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})),
		legacyAcctJSON: "{\n\t\"email\": \"" + legacyEmail + "\",\n\t\"registration\": {\n\t\t\"body\": {\n" +
			"\t\t\t\"status\": \"valid\",\n\t\t\t\"contact\": [\n\t\t\t\t\"mailto:" + legacyEmail + "\"\n\t\t\t]\n\t\t},\n" +
			"\t\t\"uri\": \"" + legacyAccountURL + "\"\n\t}\n}",
		legacyCertBase + ".crt":        string(leaf) + string(ca.pem),
		legacyCertBase + ".issuer.crt": string(ca.pem),
		legacyCertBase + ".key":        string(leafKey),
		legacyCertBase + ".json": "{\n\t\"domain\": \"" + legacyCertID + "\",\n\t\"certUrl\": \"" + legacyCertURL +
			"\",\n\t\"certStableUrl\": \"" + legacyCertURL + "\"\n}",
	}

	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}

		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// legacyStore copies the v4 fixture into a temp folder and opens it.
func legacyStore(t *testing.T) (*Store, map[string]string) {
	t.Helper()

	root := filepath.Join(t.TempDir(), "lego")
	copyTree(t, filepath.Join("testdata", "legov4"), root)

	s, err := Open(root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}

	s.now = func() time.Time { return time.Unix(1700000000, 0) }

	return s, snapshot(t, root)
}

func TestLoadLegacyAccount(t *testing.T) {
	s, _ := legacyStore(t)

	tests := []struct {
		name      string
		accountID string
	}{
		{name: "by email", accountID: legacyEmail},
		{name: "by AccountID(email, \"\")", accountID: AccountID(legacyEmail, "")},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := s.LoadAccount(context.Background(), legacyServer, tt.accountID)
			if err != nil {
				t.Fatalf("LoadAccount: %v", err)
			}

			checks := []struct{ field, got, want string }{
				{"ID", a.ID, legacyEmail},
				{"Email", a.Email, legacyEmail},
				{"Server", a.Server, legacyServer},
				{"KeyType", string(a.KeyType), "EC384"},
				{"Registration.Location", a.Registration.Location, legacyAccountURL},
				{"Registration.Status", a.Registration.Status, "valid"},
				{"Registration.Contact", strings.Join(a.Registration.Contact, ","), "mailto:" + legacyEmail},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
				}
			}

			if !a.Legacy {
				t.Errorf("Legacy: got false, want true")
			}

			if a.GetPrivateKey() == nil {
				t.Errorf("GetPrivateKey: got nil, want the v4 key")
			}
		})
	}
}

func TestSaveLegacyAccountArchivesV4(t *testing.T) {
	s, before := legacyStore(t)

	a, err := s.LoadAccount(context.Background(), legacyServer, legacyEmail)
	if err != nil {
		t.Fatalf("LoadAccount: %v", err)
	}

	if err := s.SaveAccount(context.Background(), a); err != nil {
		t.Fatalf("SaveAccount: %v", err)
	}

	after := snapshot(t, s.Root())
	archive := "archives/lego-v4/1700000000/"

	for _, rel := range []string{legacyAcctJSON, legacyAcctKey} {
		if got, want := after[filepath.FromSlash(archive+rel)], before[filepath.FromSlash(rel)]; got != want {
			t.Errorf("archived %s: got %d bytes, want the original %d bytes", rel, len(got), len(want))
		}
	}

	if got, want := after[filepath.FromSlash(legacyAcctKey)], before[filepath.FromSlash(legacyAcctKey)]; got != want {
		t.Errorf("v4 keys/ file changed; it must stay in place untouched")
	}

	v5Key := after[filepath.FromSlash(legacyAcctDir+"/you@example.test.key")]
	if pemType(v5Key) != "PRIVATE KEY" {
		t.Errorf("v5 key: got %.30q, want a PKCS#8 PEM", v5Key)
	}

	reloaded, err := s.LoadAccount(context.Background(), legacyServer, legacyEmail)
	if err != nil {
		t.Fatalf("LoadAccount after save: %v", err)
	}

	if reloaded.Legacy {
		t.Errorf("Legacy after save: got true, want false")
	}

	if got, want := reloaded.Registration.Location, legacyAccountURL; got != want {
		t.Errorf("Registration.Location after save: got %q, want %q", got, want)
	}

	if !publicKeyMatches(reloaded.Key, a.Key.Public()) {
		t.Errorf("key after save: got a different key, want the v4 key")
	}
}

func TestLoadLegacyCertificate(t *testing.T) {
	s, before := legacyStore(t)

	b, err := s.LoadCertificate(context.Background(), legacyCertID)
	if err != nil {
		t.Fatalf("LoadCertificate: %v", err)
	}

	checks := []struct{ field, got, want string }{
		{"ID", b.Meta.ID, legacyCertID},
		{"Domains", strings.Join(b.Meta.Domains, ","), "*.example.test,example.test"},
		{"KeyType", string(b.Meta.KeyType), "EC256"},
		{"CertURL", b.Meta.CertURL, legacyCertURL},
		{"CertStableURL", b.Meta.CertStableURL, legacyCertURL},
		{"PrivateKey", string(b.PrivateKey), before[filepath.FromSlash(legacyCertBase+".key")]},
		{"IssuerCertificate", string(b.IssuerCertificate), before[filepath.FromSlash(legacyCertBase+".issuer.crt")]},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
		}
	}

	if !b.Meta.Legacy {
		t.Errorf("Meta.Legacy: got false, want true")
	}

	list, err := s.ListCertificates(context.Background())
	if err != nil || len(list) != 1 || list[0].Meta.ID != legacyCertID {
		t.Errorf("ListCertificates: got %d bundles, err %v; want the one v4 set with ID %q", len(list), err, legacyCertID)
	}
}

func TestSaveLegacyCertificateArchivesV4(t *testing.T) {
	s, before := legacyStore(t)

	b, err := s.LoadCertificate(context.Background(), legacyCertID)
	if err != nil {
		t.Fatalf("LoadCertificate: %v", err)
	}

	if err := s.SaveCertificate(context.Background(), b); err != nil {
		t.Fatalf("SaveCertificate: %v", err)
	}

	after := snapshot(t, s.Root())

	for _, ext := range []string{".crt", ".issuer.crt", ".key", ".json"} {
		rel := filepath.FromSlash(legacyCertBase + ext)
		if got, want := after[filepath.Join("archives", "lego-v4", "1700000000", rel)], before[rel]; got != want {
			t.Errorf("archived %s: got %d bytes, want the original %d bytes", ext, len(got), len(want))
		}
	}

	if got := after[filepath.FromSlash(legacyCertBase+".key")]; pemType(got) != "PRIVATE KEY" {
		t.Errorf("new key: got %.30q, want PKCS#8", got)
	}

	reloaded, err := s.LoadCertificate(context.Background(), legacyCertID)
	if err != nil {
		t.Fatalf("LoadCertificate after save: %v", err)
	}

	if reloaded.Meta.Legacy {
		t.Errorf("Meta.Legacy after save: got true, want false")
	}

	if got, want := reloaded.Meta.ID, legacyCertID; got != want {
		t.Errorf("ID after save: got %q, want %q", got, want)
	}

	if got, want := strings.Join(reloaded.Meta.Domains, ","), "*.example.test,example.test"; got != want {
		t.Errorf("Domains after save: got %q, want %q", got, want)
	}

	leaf, err := reloaded.Leaf()
	if err != nil {
		t.Fatalf("Leaf: %v", err)
	}

	key, format, err := parsePrivateKey(reloaded.PrivateKey)
	if err != nil || format != formatPKCS8 || !publicKeyMatches(key, leaf.PublicKey) {
		t.Errorf("key after save: format %d, err %v; want a PKCS#8 key matching the leaf", format, err)
	}
}

// pemType returns the type of the first PEM block in s ("" if none).
func pemType(s string) string {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil {
		return ""
	}
	return blk.Type
}

// TestTruncatedKeyIsNotArchivedAsV4: a key file cut short (a tool killed
// mid-write) is not a lego v4 file: saving a new set replaces it without
// making a lego-v4 archive.
func TestTruncatedKeyIsNotArchivedAsV4(t *testing.T) {
	s := openTestStore(t)
	ca := newTestCA(t, "Truncation CA")
	b := ca.bundle(t, "cut.example.test")
	ctx := context.Background()
	if err := s.SaveCertificate(ctx, b); err != nil {
		t.Fatal(err)
	}
	keyPath := s.CertPaths("cut.example.test").Key
	full, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, full[:len(full)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCertificate(ctx, ca.bundle(t, "cut.example.test")); err != nil {
		t.Fatalf("SaveCertificate over a truncated key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "archives", "lego-v4")); !os.IsNotExist(err) {
		t.Errorf("a truncated key was archived as a lego v4 file (%v)", err)
	}
}
