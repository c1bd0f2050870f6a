package embedca_test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/lego"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// stableClient is a lego client that talks to ca through
// StableDirectoryURL, with key as its account key, registered and
// answering HTTP-01 on port.
func stableClient(t *testing.T, ca *embedca.CA, key crypto.Signer, port int) (*lego.Client, *testUser) {
	t.Helper()
	u := &testUser{key: key}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = embedca.StableDirectoryURL
	cfg.HTTPClient = ca.HTTPClient()
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("lego.NewClient(%s): %v", embedca.StableDirectoryURL, err)
	}
	register(t, client, u)
	if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(port))); err != nil {
		t.Fatalf("SetHTTP01Provider: %v", err)
	}
	return client, u
}

func accountKey(t *testing.T) crypto.Signer {
	t.Helper()
	key, err := certcrypto.GeneratePrivateKey(certcrypto.EC256)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestStateDirKeepsRootAcrossRestarts is the heart of issue 11 item 8: a
// root trusted once stays trusted. Three runs on one folder: the root
// file never changes, and every run's certificate (the earlier ones too)
// chains to it, with the chain length Pebble was asked for.
func TestStateDirKeepsRootAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "embedded-ca")
	key := accountKey(t)
	var (
		rootPEM []byte
		bundles [][]byte
	)
	for run := range 3 {
		port := testenv.FreePort(t)
		ca, err := embedca.Start(t.Context(), embedca.Options{StateDir: dir, HTTPPort: port, ChainLength: 2})
		if err != nil {
			t.Fatalf("run %d: Start: %v", run, err)
		}
		client, u := stableClient(t, ca, key, port)
		if !strings.HasPrefix(u.reg.Location, "https://"+embedca.StableHost+"/") {
			t.Errorf("run %d: account URL %q, want one on %s whatever the port", run, u.reg.Location, embedca.StableHost)
		}
		res := obtain(t, client, "", "run"+strconv.Itoa(run)+".keep.embedca.test")
		bundles = append(bundles, res.Certificate)
		if n := strings.Count(string(res.Certificate), "BEGIN CERTIFICATE"); n != 3 {
			t.Errorf("run %d: bundle holds %d certificates, want leaf + 2 intermediates", run, n)
		}
		got, err := os.ReadFile(filepath.Join(dir, embedca.RootFile))
		if err != nil {
			t.Fatal(err)
		}
		if rootPEM == nil {
			rootPEM = got
		} else if string(got) != string(rootPEM) {
			t.Fatalf("run %d: %s changed across a restart", run, embedca.RootFile)
		}
		if string(ca.RootsPEM()) != string(rootPEM) {
			t.Errorf("run %d: RootsPEM differs from %s", run, embedca.RootFile)
		}
		for i, b := range bundles {
			if err := ca.VerifyChain(b); err != nil {
				t.Errorf("run %d: certificate of run %d: %v", run, i, err)
			}
		}
		if err := ca.Close(); err != nil {
			t.Fatal(err)
		}
	}

	root, err := embedca.LoadRoot(dir)
	if err != nil {
		t.Fatalf("LoadRoot: %v", err)
	}
	for i, b := range bundles {
		if err := embedca.VerifyChain(b, root); err != nil {
			t.Errorf("certificate of run %d against LoadRoot: %v", i, err)
		}
	}
	if want := "zoku embedded root " + embedca.ShortID(root); root.Subject.CommonName != want {
		t.Errorf("root CN = %q, want %q", root.Subject.CommonName, want)
	}
	for _, c := range []struct {
		name string
		want fs.FileMode
	}{{"", 0o700 | fs.ModeDir}, {embedca.RootFile, 0o600}, {"root-key.pem", 0o600}, {"issued", 0o700 | fs.ModeDir}} {
		fi, err := os.Stat(filepath.Join(dir, c.name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("mode of %q = %v, want %v", c.name, fi.Mode(), c.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestCheckStored tells certificates of the current root from those of a
// root that is gone, and leaves other CAs' certificates alone.
func TestCheckStored(t *testing.T) {
	t.Parallel()
	ca, client := httpCA(t, embedca.Options{StateDir: t.TempDir()})
	mine := obtain(t, client, "", "mine.check.embedca.test").Certificate
	other, otherClient := httpCA(t, embedca.Options{StateDir: t.TempDir()})
	foreign := obtain(t, otherClient, "", "foreign.check.embedca.test").Certificate

	tests := []struct {
		name    string
		server  string
		chain   []byte
		foreign bool
	}{
		{"own certificate, stable URL", embedca.StableDirectoryURL, mine, false},
		{"other root, stable URL", embedca.StableDirectoryURL, foreign, true},
		{"other root, old port URL", "https://127.0.0.1:14000/dir", foreign, true},
		{"other root, another CA's URL", "https://acme-v02.api.letsencrypt.org/directory", foreign, false},
		{"other root, loopback URL that is no directory", "https://127.0.0.1:8443/acme", foreign, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ca.CheckStored(tc.server, tc.chain)
			if got := errors.Is(err, embedca.ErrForeignChain); got != tc.foreign {
				t.Fatalf("CheckStored = %v, want foreign %t", err, tc.foreign)
			}
		})
	}
	if err := other.VerifyChain(foreign); err != nil {
		t.Errorf("the other CA's own certificate: %v", err)
	}
	if err := embedca.VerifyChain([]byte("no pem")); err == nil || errors.Is(err, embedca.ErrForeignChain) {
		t.Errorf("VerifyChain(garbage) = %v, want a parse error", err)
	}
}

// TestBadRootKeyFile: a damaged root file stops Start with one line naming
// the file and the fix, leaks nothing of the key, and is left as it was.
func TestBadRootKeyFile(t *testing.T) {
	t.Parallel()
	good := t.TempDir()
	testenv.StartCA(t, embedca.Options{StateDir: good})
	data, err := os.ReadFile(filepath.Join(good, "root-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyBlock, rest := pem.Decode(data)
	certBlock, _ := pem.Decode(rest)
	otherDir := t.TempDir()
	testenv.StartCA(t, embedca.Options{StateDir: otherDir})
	otherData, err := os.ReadFile(filepath.Join(otherDir, "root-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	_, otherRest := pem.Decode(otherData)
	otherCert, _ := pem.Decode(otherRest)

	enc := func(blocks ...*pem.Block) []byte {
		var out []byte
		for _, b := range blocks {
			out = append(out, pem.EncodeToMemory(b)...)
		}
		return out
	}
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"not PEM", []byte("garbage\n"), "PRIVATE KEY and a CERTIFICATE"},
		{"key only", enc(keyBlock), "PRIVATE KEY and a CERTIFICATE"},
		{"mismatched pair", enc(keyBlock, otherCert), "do not match"},
		{"key does not parse", enc(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}, certBlock), "key does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "root-key.pem")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			ca, err := embedca.Start(t.Context(), embedca.Options{StateDir: dir})
			if err == nil {
				_ = ca.Close()
				t.Fatal("Start = nil error, want one about the root file")
			}
			msg := err.Error()
			for _, want := range []string{path, tc.want, "move it away"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "BEGIN") {
				t.Errorf("error %q is not one line or shows file content", msg)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(tc.content) {
				t.Error("Start changed the damaged root file")
			}
			if _, err := os.Stat(filepath.Join(dir, embedca.RootFile)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s written despite the bad root: %v", embedca.RootFile, err)
			}
		})
	}
}

func TestLoadRootErrors(t *testing.T) {
	t.Parallel()
	if _, err := embedca.LoadRoot(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadRoot(empty folder) = %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, embedca.RootFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := embedca.LoadRoot(dir); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("LoadRoot(junk) = %v, want a no-certificate error", err)
	}
}

// TestRevokeCertificateOfEarlierRun: Pebble forgets its certificates at
// exit, yet the account that ordered one (same key, registered again)
// can revoke it after a restart; another account cannot, and a
// certificate this CA never issued stays unknown.
func TestRevokeCertificateOfEarlierRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := accountKey(t)
	port := testenv.FreePort(t)
	first, err := embedca.Start(t.Context(), embedca.Options{StateDir: dir, HTTPPort: port})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := stableClient(t, first, key, port)
	old := obtain(t, client, "", "old.revoke.embedca.test")
	kept := obtain(t, client, "", "kept.revoke.embedca.test")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	_, strangerClient := httpCA(t, embedca.Options{})
	stranger := obtain(t, strangerClient, "", "stranger.revoke.embedca.test")

	port = testenv.FreePort(t)
	ca := testenv.StartCA(t, embedca.Options{StateDir: dir, HTTPPort: port})
	owner, _ := stableClient(t, ca, key, port)
	other, _ := stableClient(t, ca, accountKey(t), port)

	revoke := func(c *lego.Client, res *certificate.Resource) error {
		return c.Certificate.RevokeWithReason(t.Context(), res.Certificate, nil)
	}
	var prob *acme.ProblemDetails
	if err := revoke(other, kept); !errors.As(err, &prob) || prob.Type != acme.UnauthorizedErrorType {
		t.Errorf("revoke by another account = %v, want %s", err, acme.UnauthorizedErrorType)
	}
	if err := revoke(owner, old); err != nil {
		t.Fatalf("revoke by the ordering account after a restart: %v", err)
	}
	if err := revoke(owner, old); !errors.As(err, &prob) || prob.Type != acme.AlreadyRevokedErrorType {
		t.Errorf("second revoke = %v, want %s", err, acme.AlreadyRevokedErrorType)
	}
	if err := revoke(owner, stranger); err == nil || !strings.Contains(err.Error(), "Unable to find") {
		t.Errorf("revoke of a certificate this CA never issued = %v, want Pebble's not-found", err)
	}
	leaf, err := x509.ParseCertificate(mustDecode(t, old.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	info, err := owner.Certificate.GetRenewalInfo(t.Context(), leaf)
	if err != nil {
		t.Fatalf("GetRenewalInfo of the revoked certificate: %v", err)
	}
	if !info.SuggestedWindow.End.Before(time.Now()) {
		t.Errorf("renewal window of a revoked certificate = %+v, want one that has passed", info.SuggestedWindow)
	}
}

func mustDecode(t *testing.T, pemBytes []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}
