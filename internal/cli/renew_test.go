//go:build !race

// Renewal sends ARI "replaces", and Pebble has a data race in its
// replacement bookkeeping (wfe.validateReplacementOrder vs
// db.UpdateReplacedOrder) that the race detector reports. These tests run
// in the README's non-race pass (go test -run NoRace).

package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
)

// renewEnv is a CA and a store holding one certificate.
type renewEnv struct {
	ca   *embedca.CA
	dir  string
	base []string
}

func newRenewEnv(t *testing.T, name string) renewEnv {
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps)})
	dir := t.TempDir()
	base := []string{"--server", ca.DirectoryURL(), "--accept-tos", "--email", "r@example.test", "--path", dir, "--http", "--http.port", hp}
	mustZoku(t, append([]string{"obtain", "-d", name}, base...)...)
	return renewEnv{ca: ca, dir: dir, base: base}
}

func (e renewEnv) load(t *testing.T, name string) *storage.Bundle {
	t.Helper()
	st, err := storage.Open(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.LoadCertificate(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNoRaceRenewForceRunsHookWithAllVariables(t *testing.T) {
	const name = "hook.example.test"
	e := newRenewEnv(t, name)
	old := e.load(t, name)
	out := filepath.Join(t.TempDir(), "hook.env")
	hookCmd := "env | grep -E '^(LEGO_|RENEWED_|CERT_|CA_CERT_|Le_)' | sort > " + out
	r := mustZoku(t, append([]string{"renew", "--force", "--deploy-hook", hookCmd}, e.base...)...)
	if !strings.Contains(r.stdout, name+": renewed") {
		t.Fatalf("stdout: %s", r.stdout)
	}
	nb := e.load(t, name)
	if bytes.Equal(old.PrivateKey, nb.PrivateKey) {
		t.Fatal("renewal reused the key; a fresh key is the default")
	}
	ol, _ := old.Leaf()
	nl, _ := nb.Leaf()
	if ol.SerialNumber.Cmp(nl.SerialNumber) == 0 {
		t.Fatal("serial unchanged after renewal")
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("hook did not run: %v", err)
	}
	vars := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		vars[k] = v
	}
	p := storage.Paths{}
	st, _ := storage.Open(e.dir)
	p = st.CertPaths(name)
	want := map[string]string{
		"LEGO_HOOK_CERT_NAME": name, "LEGO_HOOK_CERT_DOMAINS": name, "LEGO_HOOK_CERT_PATH": p.Cert,
		"LEGO_HOOK_CERT_KEY_PATH": p.Key, "LEGO_HOOK_ISSUER_CERT_PATH": p.Issuer, "LEGO_HOOK_ACCOUNT_EMAIL": "r@example.test",
		"LEGO_CERT_DOMAIN": name, "LEGO_CERT_PATH": p.Cert, "LEGO_CERT_KEY_PATH": p.Key, "LEGO_ISSUER_CERT_PATH": p.Issuer,
		"RENEWED_DOMAINS": name, "Le_Domain": name,
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	for _, k := range []string{"RENEWED_LINEAGE", "CERT_PATH", "CERT_KEY_PATH", "CA_CERT_PATH", "CERT_FULLCHAIN_PATH"} {
		if vars[k] == "" {
			t.Errorf("%s not set", k)
			continue
		}
		if k == "RENEWED_LINEAGE" {
			continue
		}
		if _, err := os.Stat(vars[k]); err != nil {
			t.Errorf("%s=%s: %v", k, vars[k], err)
		}
	}
	leafOnly, _ := os.ReadFile(vars["CERT_PATH"])
	if got := len(parseCerts(t, leafOnly)); got != 1 {
		t.Errorf("CERT_PATH (acme.sh) holds %d certificates, want the leaf only", got)
	}
}

func TestNoRaceRenewReuseKey(t *testing.T) {
	const name = "reuse.example.test"
	e := newRenewEnv(t, name)
	old := e.load(t, name)
	mustZoku(t, append([]string{"renew", "--force", "--reuse-key"}, e.base...)...)
	if !bytes.Equal(old.PrivateKey, e.load(t, name).PrivateKey) {
		t.Fatal("--reuse-key changed the key")
	}
}

// ARI decides: a fresh certificate is not due; once the CA moves its
// window into the past, it is, and the renewal names it in "replaces".
func TestNoRaceRenewByARI(t *testing.T) {
	const name = "ari.example.test"
	e := newRenewEnv(t, name)
	r := mustZoku(t, append([]string{"renew"}, e.base...)...)
	if !strings.Contains(r.stdout, "not due") || !strings.Contains(r.stdout, "ARI window") {
		t.Fatalf("a fresh certificate should wait for its ARI window:\n%s", r.stdout)
	}
	old := e.load(t, name)
	now := time.Now()
	if err := e.ca.SetRenewalInfo(old.Certificate, now.Add(-2*time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	r = mustZoku(t, append([]string{"renew"}, e.base...)...)
	if !strings.Contains(r.stdout, name+": renewed (ARI window") {
		t.Fatalf("want a renewal because of the ARI window:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "replaces=true") {
		t.Fatalf("renewal did not send replaces:\n%s", r.stderr)
	}
	nb := e.load(t, name)
	if nb.Meta.RenewalInfo == nil || !nb.Meta.RenewalInfo.WindowStart.After(now) {
		t.Fatalf("renewal info of the new certificate not stored: %+v", nb.Meta.RenewalInfo)
	}
}

func TestNoRaceRenewDays(t *testing.T) {
	const name = "days.example.test"
	e := newRenewEnv(t, name)
	r := mustZoku(t, append([]string{"renew", "--days", "30"}, e.base...)...)
	if !strings.Contains(r.stdout, "not due") {
		t.Fatalf("90-day certificate renewed with --days 30:\n%s", r.stdout)
	}
	r = mustZoku(t, append([]string{"renew", "--days", "100"}, e.base...)...)
	if !strings.Contains(r.stdout, "renewed (--days 100)") {
		t.Fatalf("--days 100 did not renew:\n%s", r.stdout)
	}
}

// A certificate from another CA (here: the embedded CA of an earlier run,
// whose roots are gone) is renewed although that CA's certificate ID means
// nothing to the new one: the refused "replaces" is dropped and the order
// goes through (lego#2474).
func TestNoRaceRenewCertificateFromAnotherCA(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--server", "embedded", "--accept-tos", "--email", "x@example.test", "--path", dir}
	mustZoku(t, append([]string{"obtain", "--http", "--http.port", port(t), "-d", "other.example.test"}, base...)...)
	r := mustZoku(t, append([]string{"renew", "--force", "--http", "--http.port", port(t)}, base...)...)
	if !strings.Contains(r.stdout, "other.example.test: renewed") || !strings.Contains(r.stderr, "ordering again without it") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}
