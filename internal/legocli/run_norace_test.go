//go:build !race

package legocli_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// These renewals send ARI's "replaces"; Pebble has a data race there, so
// they run in the pass without the race detector.

// Renewal in lego's way: --renew-days beyond the lifetime makes it due; a
// non-terminal run pauses at random first (here recorded, not slept), and
// --no-random-sleep does not; the .pem and .pfx of a --pem --pfx setup
// hold the new certificate afterwards, also when the renewal came from
// `zoku renew`, which was not told about them.
func TestNoRaceRenewWhenDueKeepsPEMAndPFXInStep(t *testing.T) {
	ca, addr := httpCA(t)
	dir := t.TempDir()
	base := []string{"run", "--server", ca.DirectoryURL(), "--accept-tos", "--email", "you@example.test",
		"--path", dir, "--http", "--http.address", addr, "-d", "pfx.example.test", "--pem", "--pfx"}
	mustLego(t, base...)
	crt := filepath.Join(dir, "certificates", "pfx.example.test.crt")
	checkBundleFiles(t, dir, "pfx.example.test", "changeit")
	s0 := serialOf(t, crt)

	r := mustLego(t, append(base, "--renew-days", "400")...)
	s1 := serialOf(t, crt)
	if s1 == s0 {
		t.Fatal("--renew-days 400 did not renew a 90-day certificate")
	}
	if len(r.pauses) != 1 || r.pauses[0] < 0 || r.pauses[0] >= 8*time.Minute {
		t.Errorf("pauses %v, want one random pause under 8 minutes before the renewal", r.pauses)
	}
	checkBundleFiles(t, dir, "pfx.example.test", "changeit")

	r = mustLego(t, append(base, "--renew-force", "--no-random-sleep")...)
	if len(r.pauses) != 0 {
		t.Errorf("--no-random-sleep paused %v", r.pauses)
	}
	s2 := serialOf(t, crt)
	if s2 == s1 {
		t.Fatal("--renew-force did not renew")
	}
	checkBundleFiles(t, dir, "pfx.example.test", "changeit")

	// zoku's own renew, told nothing of .pem or .pfx, keeps them in step.
	z := zokuRun(t, "renew", "--server", ca.DirectoryURL(), "--email", "you@example.test", "--path", dir,
		"--http", "--http.port", addr, "--force")
	if z.code != 0 {
		t.Fatalf("zoku renew: exit %d\n%s", z.code, z.stderr)
	}
	if serialOf(t, crt) == s2 {
		t.Fatal("zoku renew --force did not renew")
	}
	checkBundleFiles(t, dir, "pfx.example.test", "changeit")
}

// checkBundleFiles checks that <name>.pem is the .crt then the .key and
// that <name>.pfx holds the same key and leaf.
func checkBundleFiles(t *testing.T, dir, name, password string) {
	t.Helper()
	base := filepath.Join(dir, "certificates", name)
	crt, _ := os.ReadFile(base + ".crt")
	key, _ := os.ReadFile(base + ".key")
	pemFile, err := os.ReadFile(base + ".pem")
	if err != nil {
		t.Fatalf("read .pem: %v", err)
	}
	if string(pemFile) != string(crt)+string(key) {
		t.Errorf("%s.pem is not the current .crt then .key", name)
	}
	raw, err := os.ReadFile(base + ".pfx")
	if err != nil {
		t.Fatalf("read .pfx: %v", err)
	}
	pk, leaf, cas, err := pkcs12.DecodeChain(raw, password)
	if err != nil {
		t.Fatalf("open .pfx: %v", err)
	}
	want := leafOf(t, base+".crt")
	if leaf.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Errorf("%s.pfx holds serial %x, want the current %x", name, leaf.SerialNumber, want.SerialNumber)
	}
	if len(cas) == 0 {
		t.Errorf("%s.pfx has no issuer", name)
	}
	blk, _ := pem.Decode(key)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !k.(*ecdsa.PrivateKey).Equal(pk) {
		t.Errorf("%s.pfx holds another key than %s.key", name, name)
	}
}
