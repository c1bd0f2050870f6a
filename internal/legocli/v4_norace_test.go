//go:build !race

package legocli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/bindtest"
)

// Seed 000's lego v4 line, with the DNS provider swapped for RFC 2136
// against a real BIND9 (the seed's `iij` is gone from lego v5; see
// docs/lego.md): the first run issues the wildcard, the same line again
// does not, and v4's `renew` renews only when fewer than --days are left.
// (The renewal sends ARI "replaces": this test runs without -race.)
func TestNoRaceSeedLineV4RFC2136(t *testing.T) {
	bind := bindtest.Start(t)
	ca := testCA(t, embedca.Options{DNSServer: bind.Addr()})
	k := bind.Key("example.test")
	t.Setenv("RFC2136_NAMESERVER", bind.Addr())
	t.Setenv("RFC2136_TSIG_KEY", k.Name)
	t.Setenv("RFC2136_TSIG_SECRET", k.Secret)
	t.Setenv("RFC2136_TSIG_ALGORITHM", k.Algorithm)
	t.Setenv("RFC2136_SEQUENCE_INTERVAL", "0")
	t.Setenv("RFC2136_POLLING_INTERVAL", "1")
	dir := t.TempDir()
	// lego --dns iij --domains '*.example' --email you@example.com run, on the test CA and DNS.
	global := []string{"--server", ca.DirectoryURL(), "--accept-tos", "--path", dir,
		"--dns", "rfc2136", "--dns.resolvers", bind.Addr(), "--dns.propagation-disable-ans",
		"--domains", "*.example.test", "--email", "you@example.test"}

	mustLego(t, append(global, "run")...)
	crt := filepath.Join(dir, "certificates", "_.example.test.crt")
	leaf := leafOf(t, crt)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "*.example.test" {
		t.Fatalf("names %v, want the wildcard", leaf.DNSNames)
	}
	serial := leaf.SerialNumber.Text(16)

	r := mustLego(t, append(global, "run")...)
	if serialOf(t, crt) != serial || !strings.Contains(r.stdout, "not due") {
		t.Fatalf("v4's run line re-issued or said nothing:\n%s", r.stdout)
	}
	r = mustLego(t, append(global, "renew", "--days", "30")...)
	if serialOf(t, crt) != serial {
		t.Fatal("renew --days 30 renewed a certificate with ~90 days left")
	}
	r = mustLego(t, append(global, "renew", "--days", "120", "--renew-hook", "true")...)
	if serialOf(t, crt) == serial {
		t.Fatalf("renew --days 120 did not renew:\n%s\n%s", r.stdout, r.stderr)
	}
	if len(r.pauses) != 1 {
		t.Errorf("pauses %v: v4's renew pauses at random unless --no-random-sleep", r.pauses)
	}
}
