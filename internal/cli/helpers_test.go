package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// result is what one zoku invocation did.
type result struct {
	code           int
	stdout, stderr string
}

// zoku runs the command line in-process, as the binary would, bounded in time.
func zoku(t *testing.T, stdin string, terminal bool, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	env := Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: os.Getenv, IsTerminal: func() bool { return terminal },
	}
	code := Run(ctx, args, env)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustZoku runs zoku and fails the test unless it exits 0.
func mustZoku(t *testing.T, args ...string) result {
	t.Helper()
	r := zoku(t, "", false, args...)
	if r.code != 0 {
		t.Fatalf("zoku %s: exit %d\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r
}

// testCA starts an in-process Pebble for one test and makes lego's default
// HTTP client trust its TLS certificate the way a user of a private CA
// does: through LEGO_CA_CERTIFICATES.
func testCA(t testing.TB, opts embedca.Options) *embedca.CA {
	t.Helper()
	ca := testenv.StartCA(t, opts)
	pemFile := filepath.Join(t.TempDir(), "ca-tls.pem")
	if err := os.WriteFile(pemFile, ca.TLSCertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEGO_CA_CERTIFICATES", pemFile)
	return ca
}

// verifyIssued checks the stored certificate's chain against roots and its names.
func verifyIssued(t *testing.T, path, name string, roots *x509.CertPool, wantNames ...string) *x509.Certificate {
	t.Helper()
	st, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.LoadCertificate(context.Background(), name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	certs := parseCerts(t, b.Certificate)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	for _, n := range wantNames {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: strings.TrimPrefix(n, "*."), CurrentTime: time.Now()}); err != nil && !strings.HasPrefix(n, "*.") {
			t.Fatalf("certificate for %s does not verify: %v", n, err)
		}
		if !hasName(leaf, n) {
			t.Fatalf("certificate names %v, want %q among them", leaf.DNSNames, n)
		}
	}
	return leaf
}

func hasName(c *x509.Certificate, n string) bool {
	for _, d := range c.DNSNames {
		if d == n {
			return true
		}
	}
	for _, ip := range c.IPAddresses {
		if ip.String() == n {
			return true
		}
	}
	return false
}

func parseCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no certificate in PEM")
	}
	return out
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// snapshot maps every file under dir to its content, to prove a failed
// command left storage as it was. The lock files under .locks/ are the
// backend's bookkeeping (who held which lock last), not stored state.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".locks" {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[rel] = string(b)
		return nil
	})
	return m
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	var diff []string
	for k, v := range before {
		if a, ok := after[k]; !ok || a != v {
			diff = append(diff, "changed or removed: "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "added: "+k)
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Fatalf("storage changed by a failed command:\n%s", strings.Join(diff, "\n"))
	}
}

// port returns a free loopback address for a challenge listener.
func port(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
