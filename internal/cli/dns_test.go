package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/testkit/bindtest"
)

// Issue 3's command line: the embedded CA, RFC 2136 with TSIG into a real
// BIND9 on a loopback port, a wildcard and its apex in one certificate.
func TestObtainWildcardRFC2136EmbeddedBIND(t *testing.T) {
	bind := bindtest.Start(t)
	k := bind.Key("example.test")
	t.Setenv("RFC2136_NAMESERVER", bind.Addr())
	t.Setenv("RFC2136_TSIG_KEY", k.Name)
	t.Setenv("RFC2136_TSIG_SECRET", k.Secret)
	t.Setenv("RFC2136_TSIG_ALGORITHM", k.Algorithm)
	t.Setenv("RFC2136_SEQUENCE_INTERVAL", "0")
	dir := filepath.Join(t.TempDir(), ".zoku")
	r := mustZoku(t, "obtain", "--server", "embedded", "--accept-tos", "--email", "you@example.test", "--path", dir,
		"--dns", "rfc2136", "--dns.resolvers", bind.Addr(), "-d", "*.example.test", "-d", "example.test")
	rootPEM, err := os.ReadFile(filepath.Join(dir, "embedded-ca", "root.pem"))
	must(t, err)
	leaf := verifyIssued(t, dir, "*.example.test", poolOf(parseCerts(t, rootPEM)...), "*.example.test", "example.test")
	if len(leaf.DNSNames) != 2 {
		t.Fatalf("names %v", leaf.DNSNames)
	}
	if !strings.Contains(r.stdout, "_.example.test.crt") {
		t.Errorf("stdout: %s", r.stdout)
	}
	if txt, err := bind.TXT("_acme-challenge.example.test"); err != nil || len(txt) != 0 {
		t.Errorf("TXT records left behind: %v (%v)", txt, err)
	}
	if strings.Contains(r.stderr, k.Secret) {
		t.Fatal("the TSIG secret reached the output")
	}
}

func TestDNSProvidersCommand(t *testing.T) {
	r := mustZoku(t, "dns", "providers", "iijdpf")
	for _, v := range []string{"IIJ_DPF_API_TOKEN", "IIJ_DPF_DPM_SERVICE_CODE"} {
		if !strings.Contains(r.stdout, v) {
			t.Errorf("dns providers iijdpf lacks %s:\n%s", v, r.stdout)
		}
	}
	if r := zoku(t, "", false, "dns", "providers", "nosuch"); r.code != 1 {
		t.Fatalf("unknown code: exit %d", r.code)
	}
}
