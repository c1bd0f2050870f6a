package legocli_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/cli"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// result is one invocation of the binary as lego.
type result struct {
	code           int
	stdout, stderr string
	pauses         []time.Duration // lego's random pauses and ARI waits, not slept
}

// legoRun runs args as the binary called "lego" (a link to zoku) would,
// in-process, bounded in time; sleeps are recorded instead of slept.
func legoRun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		out, errb bytes.Buffer
		mu        sync.Mutex
		pauses    []time.Duration
	)
	env := cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: os.Getenv, Program: "/usr/local/bin/lego",
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			pauses = append(pauses, d)
			return nil
		},
	}
	code := cli.Run(ctx, args, env)
	return result{code: code, stdout: out.String(), stderr: errb.String(), pauses: pauses}
}

// mustLego runs lego and fails the test unless it exits 0.
func mustLego(t *testing.T, args ...string) result {
	t.Helper()
	r := legoRun(t, "", args...)
	if r.code != 0 {
		t.Fatalf("lego %s: exit %d\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r
}

// testCA starts Pebble in-process and makes lego's HTTP client trust it the
// way a private CA's user does (LEGO_CA_CERTIFICATES).
func testCA(t *testing.T, opts embedca.Options) *embedca.CA {
	t.Helper()
	ca := testenv.StartCA(t, opts)
	f := filepath.Join(t.TempDir(), "ca-tls.pem")
	if err := os.WriteFile(f, ca.TLSCertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEGO_CA_CERTIFICATES", f)
	return ca
}

// httpCA starts a CA that validates HTTP-01 on a free loopback port and
// returns it with the address lego's --http.address should take.
func httpCA(t *testing.T) (*embedca.CA, string) {
	t.Helper()
	p := testenv.FreePort(t)
	ca := testCA(t, embedca.Options{HTTPPort: p})
	return ca, net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// leafOf reads the first certificate of a PEM file.
func leafOf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func serialOf(t *testing.T, path string) string {
	return leafOf(t, path).SerialNumber.Text(16)
}

// zokuRun runs zoku's own command line in-process.
func zokuRun(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Run(ctx, args, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: os.Getenv, Program: "zoku"})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}
