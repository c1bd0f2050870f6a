package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// The README's "Done means" command: the embedded CA, HTTP-01 on a
// loopback port, two names, a chain that verifies against root.pem.
func TestObtainEmbeddedHTTP01(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".zoku")
	r := mustZoku(t, "obtain", "--server", "embedded", "--accept-tos", "--email", "you@example.test",
		"--http", "--http.port", port(t), "-d", "a.example.test", "-d", "b.example.test", "--path", dir)
	rootPEM, err := os.ReadFile(filepath.Join(dir, "embedded-ca", "root.pem"))
	if err != nil {
		t.Fatalf("root.pem: %v", err)
	}
	verifyIssued(t, dir, "a.example.test", poolOf(parseCerts(t, rootPEM)...), "a.example.test", "b.example.test")
	for _, want := range []string{"a.example.test.crt", "root.pem", "openssl verify"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, l := range []string{"account", "ordering certificate", "validated", "certificate issued", "certificate saved"} {
		if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(l)) {
			t.Errorf("progress output lacks a %q line:\n%s", l, r.stderr)
		}
	}
	checkModes(t, dir)
}

// checkModes asserts 0700 folders and 0600 keys everywhere in the store.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir() && fi.Mode().Perm() != 0o700:
			t.Errorf("folder %s has mode %o, want 700", p, fi.Mode().Perm())
		case strings.HasSuffix(p, ".key") && fi.Mode().Perm() != 0o600:
			t.Errorf("key %s has mode %o, want 600", p, fi.Mode().Perm())
		}
		return nil
	})
}

func TestObtainChallenges(t *testing.T) {
	tests := []struct {
		name    string
		args    func(t *testing.T, ca *embedca.Options) []string
		domains []string
	}{
		{
			name: "tls-alpn-01",
			args: func(t *testing.T, o *embedca.Options) []string {
				p := port(t)
				_, ps, _ := net.SplitHostPort(p)
				o.TLSPort = atoi(ps)
				return []string{"--tls", "--tls.port", p}
			},
			domains: []string{"tls.example.test"},
		},
		{
			name: "http-01 with IP identifier",
			args: func(t *testing.T, o *embedca.Options) []string {
				p := port(t)
				_, ps, _ := net.SplitHostPort(p)
				o.HTTPPort = atoi(ps)
				return []string{"--http", "--http.port", p}
			},
			domains: []string{"ip.example.test", "127.0.0.1"},
		},
		{
			name: "dns-01 wildcard and apex",
			args: func(t *testing.T, o *embedca.Options) []string {
				o.DNSServer = testenv.DNS(t).Addr()
				return dnsFlags(t)
			},
			domains: []string{"*.wild.example.test", "wild.example.test"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts embedca.Options
			extra := tc.args(t, &opts)
			ca := testCA(t, opts)
			dir := t.TempDir()
			args := append([]string{"obtain", "--server", ca.DirectoryURL(), "--accept-tos", "--email", "t@example.test", "--path", dir}, extra...)
			for _, d := range tc.domains {
				args = append(args, "-d", d)
			}
			mustZoku(t, args...)
			verifyIssued(t, dir, tc.domains[0], ca.RootPool(), tc.domains...)
		})
	}
}

func TestObtainWithUserCSR(t *testing.T) {
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps)})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "csr.example.test"}, DNSNames: []string{"csr.example.test", "www.csr.example.test"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrFile := filepath.Join(t.TempDir(), "req.csr")
	if err := os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mustZoku(t, "obtain", "--server", ca.DirectoryURL(), "--accept-tos", "--path", dir, "--http", "--http.port", hp, "--csr", csrFile)
	leaf := verifyIssued(t, dir, "csr.example.test", ca.RootPool(), "csr.example.test", "www.csr.example.test")
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatal("certificate does not carry the CSR's public key")
	}
}

// Pebble's fault knobs: half of all nonces rejected, no VA sleep. lego
// retries badNonce; the order must still succeed.
func TestObtainWithBadNonces(t *testing.T) {
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps), NonceRejectPercent: 50})
	dir := t.TempDir()
	mustZoku(t, "obtain", "--server", ca.DirectoryURL(), "--accept-tos", "--path", dir, "--http", "--http.port", hp, "-d", "nonce.example.test")
	verifyIssued(t, dir, "nonce.example.test", ca.RootPool(), "nonce.example.test")
}

func TestEAB(t *testing.T) {
	const kid, hmac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps), RequireEAB: true, EABKeys: map[string]string{kid: hmac}})
	base := []string{"obtain", "--server", ca.DirectoryURL(), "--accept-tos", "--http", "--http.port", hp, "-d", "eab.example.test"}

	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		r := zoku(t, "", false, append(base, "--path", dir)...)
		wantFailure(t, r, "external account binding")
		sameTree(t, map[string]string{}, snapshot(t, dir))
	})
	t.Run("wrong", func(t *testing.T) {
		dir := t.TempDir()
		hmacFile := filepath.Join(t.TempDir(), "hmac")
		if err := os.WriteFile(hmacFile, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := zoku(t, "", false, append(base, "--path", dir, "--eab", "--kid", kid, "--hmac-file", hmacFile)...)
		wantFailure(t, r, "external account binding rejected")
		if strings.Contains(r.stderr, "AAAAAAAA") {
			t.Fatal("the HMAC key leaked into the error output")
		}
		sameTree(t, map[string]string{}, snapshot(t, dir))
	})
	t.Run("right", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("LEGO_EAB_HMAC", hmac)
		mustZoku(t, append(base, "--path", dir, "--eab", "--kid", kid)...)
		verifyIssued(t, dir, "eab.example.test", ca.RootPool(), "eab.example.test")
	})
}

func TestTermsOfService(t *testing.T) {
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps)})
	base := []string{"obtain", "--server", ca.DirectoryURL(), "--http", "--http.port", hp, "-d", "tos.example.test"}
	t.Run("no terminal, no flag", func(t *testing.T) {
		dir := t.TempDir()
		r := zoku(t, "", false, append(base, "--path", dir)...)
		wantFailure(t, r, "--accept-tos")
		sameTree(t, map[string]string{}, snapshot(t, dir))
	})
	t.Run("terminal says no", func(t *testing.T) {
		dir := t.TempDir()
		r := zoku(t, "n\n", true, append(base, "--path", dir)...)
		wantFailure(t, r, "terms of service")
		if !strings.Contains(r.stderr, "Do you accept") {
			t.Fatalf("no prompt shown:\n%s", r.stderr)
		}
	})
	t.Run("terminal says yes", func(t *testing.T) {
		dir := t.TempDir()
		r := zoku(t, "y\n", true, append(base, "--path", dir)...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
}

// wantFailure asserts exit 1 and one error line containing want.
func wantFailure(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("exit code %d, want 1\nstderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	// A prompt without an echoed answer may share the line.
	if _, after, ok := strings.Cut(last, "zoku "); !ok || !strings.Contains(after, want) {
		t.Fatalf("last stderr line %q does not contain %q\nfull stderr:\n%s", last, want, r.stderr)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// dnsFlags points lego's httpreq provider at a test endpoint that writes
// into the test DNS server, and returns the DNS-01 flags that use it.
func dnsFlags(t *testing.T) []string {
	dns := testenv.DNS(t)
	t.Setenv("HTTPREQ_ENDPOINT", testenv.HTTPReqEndpoint(t))
	t.Setenv("HTTPREQ_POLLING_INTERVAL", "1")
	t.Setenv("HTTPREQ_PROPAGATION_TIMEOUT", "30")
	return []string{"--dns", "httpreq", "--dns.resolvers", dns.Addr(), "--dns.propagation.disable-ans"}
}

// dnsEnv starts a CA that resolves through the test DNS server and returns
// --server plus the DNS-01 flags.
func dnsEnv(t *testing.T) []string {
	ca := testCA(t, embedca.Options{DNSServer: testenv.DNS(t).Addr()})
	return append([]string{"--server", ca.DirectoryURL()}, dnsFlags(t)...)
}

// --profile asks for a profile the CA lists; --preferred-chain picks the
// alternate chain by its root's name; --log-format json switches the
// progress lines to slog JSON.
func TestObtainProfileChainAndJSONLog(t *testing.T) {
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps), AlternateRoots: 1, Profiles: map[string]time.Duration{"shortlived": 6 * 24 * time.Hour}})
	roots := ca.Roots()
	if len(roots) < 2 {
		t.Fatalf("want an alternate root, have %d roots", len(roots))
	}
	alt := roots[1].Subject.CommonName
	dir := t.TempDir()
	r := mustZoku(t, "obtain", "--server", ca.DirectoryURL(), "--accept-tos", "--path", dir, "--http", "--http.port", hp,
		"-d", "profile.example.test", "--profile", "shortlived", "--preferred-chain", alt, "--log-format", "json")
	leaf := verifyIssued(t, dir, "profile.example.test", ca.RootPool(), "profile.example.test")
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 7*24*time.Hour {
		t.Errorf("lifetime %s, want the 6-day shortlived profile", life)
	}
	chain, err := leaf.Verify(x509.VerifyOptions{Roots: poolOf(roots[1]), Intermediates: poolOf(issuersOf(t, dir, "profile.example.test")...)})
	if err != nil || chain[0][len(chain[0])-1].Subject.CommonName != alt {
		t.Errorf("chain does not lead to the preferred root %q: %v", alt, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["msg"] == nil {
			t.Fatalf("--log-format json printed a non-JSON line: %q", line)
		}
	}
}

func issuersOf(t *testing.T, dir, name string) []*x509.Certificate {
	st, err := storage.Open(dir)
	must(t, err)
	b, err := st.LoadCertificate(context.Background(), name)
	must(t, err)
	return parseCerts(t, b.Certificate)[1:]
}

// The embedded CA forgets its accounts when the process ends: a second run
// on the same storage registers the stored key again and orders.
func TestObtainEmbeddedTwiceOnSameStorage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".zoku")
	for _, name := range []string{"one.example.test", "two.example.test"} {
		mustZoku(t, "obtain", "--server", "embedded", "--accept-tos", "--email", "you@example.test",
			"--http", "--http.port", port(t), "-d", name, "--path", dir)
	}
	accounts, _ := filepath.Glob(filepath.Join(dir, "accounts", "*", "you@example.test", "account.json"))
	if len(accounts) != 1 {
		t.Fatalf("want one account kept across runs, have %v", accounts)
	}
}
