package dns01_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/challenge/dns01"
	"github.com/zoku/zoku/internal/testkit/bindtest"
	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// These tests issue real certificates from Pebble (in-process) that
// validates DNS-01 against a real BIND9 (child process), with lego's real
// providers writing the records. They set lego's process-wide resolver,
// so none runs in parallel.

// The README's "Done means": one certificate for a wildcard and its apex
// through RFC 2136 with TSIG, configured the way `--dns rfc2136` is: lego's
// variables in the process environment.
func TestWildcardAndApexRFC2136(t *testing.T) {
	bind := bindtest.Start(t)
	useLegoResolver(t, bind.Addr())
	for name, value := range dnsupdateEnv(bind, "example.test") {
		t.Setenv(name, value)
	}
	s := newSolver(t, checkConfig(bind, dns01.ProviderSpec{Code: "rfc2136"}), nil)
	if got := s.Sequential(); got != 0 {
		t.Errorf("Sequential: got %s, want 0 (DNSUPDATE_SEQUENCE_INTERVAL=0)", got)
	}
	mustOrder(t, bind.Addr(), s, "*.example.test", "example.test")
	noTXT(t, bind, "_acme-challenge.example.test")
}

// Two zones, two providers with their own credentials, one order:
// example.test through dnsupdate with example.test's key, other.test
// through httpreq (whose endpoint writes with other.test's key). The
// process environment holds a wrong TSIG secret that must not leak into the
// spec that has its own.
func TestTwoZonesTwoProviders(t *testing.T) {
	bind := bindtest.Start(t)
	useLegoResolver(t, bind.Addr())
	t.Setenv("DNSUPDATE_TSIG_SECRET", "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==")
	t.Setenv("HTTPREQ_ENDPOINT", "http://127.0.0.1:1")
	url, calls := httpreqToBIND(t, bind, "other.test")

	s := newSolver(t, checkConfig(bind,
		dns01.ProviderSpec{Code: "dnsupdate", Zones: []string{"example.test"}, Env: dnsupdateEnv(bind, "example.test")},
		dns01.ProviderSpec{Code: "httpreq", Zones: []string{"other.test"}, Env: map[string]string{"HTTPREQ_ENDPOINT": url}},
	), nil)
	if got := os.Getenv("DNSUPDATE_TSIG_SECRET"); got != "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==" {
		t.Errorf("process DNSUPDATE_TSIG_SECRET after NewSolver: changed, want it restored")
	}
	mustOrder(t, bind.Addr(), s, "a.example.test", "b.other.test", "*.other.test")
	if got := calls(); got["/present"] != 2 || got["/cleanup"] != 2 {
		t.Errorf("httpreq calls: got %v, want 2 presents and 2 cleanups (b.other.test and its wildcard)", got)
	}
	noTXT(t, bind, "_acme-challenge.a.example.test", "_acme-challenge.b.other.test", "_acme-challenge.other.test")
}

// CNAME delegation (acme-dns style): _acme-challenge.app.example.test points
// into other.test, so the record is written there with other.test's
// provider. example.test's provider is an exec script that fails, so using
// it would fail the order.
func TestCNAMEDelegation(t *testing.T) {
	bind := bindtest.Start(t,
		bindtest.Zone{Name: "example.test", Records: []string{"_acme-challenge.app CNAME app.acme.other.test."}},
		bindtest.Zone{Name: "other.test"})
	useLegoResolver(t, bind.Addr())
	failing := writeScript(t, "fail.sh", "#!/bin/sh\necho 'example.test provider must not be used' >&2\nexit 1\n")
	logs := &logBuffer{}
	s := newSolver(t, checkConfig(bind,
		dns01.ProviderSpec{Code: "exec", Zones: []string{"example.test"}, Env: map[string]string{"EXEC_PATH": failing, "EXEC_SEQUENCE_INTERVAL": "0"}},
		dns01.ProviderSpec{Code: "dnsupdate", Zones: []string{"other.test"}, Env: dnsupdateEnv(bind, "other.test")},
	), logs)
	mustOrder(t, bind.Addr(), s, "app.example.test")
	if !strings.Contains(logs.String(), "fqdn=app.acme.other.test provider=dnsupdate cname_from=_acme-challenge.app.example.test") {
		t.Errorf("log lacks the delegated write:\n%s", logs)
	}
	noTXT(t, bind, "app.acme.other.test")
}

// The propagation check gives up after its timeout and names the server
// that still lacked the record; the record is removed all the same.
func TestPropagationTimeout(t *testing.T) {
	bind := bindtest.Start(t)
	useLegoResolver(t, bind.Addr())
	lagging := testenv.DNS(t).Addr() // challtestsrv: never sees the record
	cfg := checkConfig(bind, dns01.ProviderSpec{Code: "dnsupdate", Env: dnsupdateEnv(bind, "example.test")})
	cfg.Resolvers = append(cfg.Resolvers, lagging)
	cfg.RequireAllResolvers = true
	cfg.PropagationTimeout = time.Second
	s := newSolver(t, cfg, nil)

	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	_, err := order(t, ctx, bind.Addr(), s, "slow.example.test")
	want := fmt.Sprintf("dns-01: _acme-challenge.slow.example.test: TXT not visible at %s after 1s", lagging)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("obtain: got %v, want an error containing %q", err, want)
	}
	noTXT(t, bind, "_acme-challenge.slow.example.test")
}

// Pebble validates through challtestsrv, which never has the record, while
// the propagation check sees it in BIND: validation fails after the record
// was provably written, and the record must be gone afterwards.
func TestCleanupAfterFailedValidation(t *testing.T) {
	bind := bindtest.Start(t)
	useLegoResolver(t, bind.Addr())
	logs := &logBuffer{}
	s := newSolver(t, checkConfig(bind, dns01.ProviderSpec{Code: "dnsupdate", Env: dnsupdateEnv(bind, "example.test")}), logs)

	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	_, err := order(t, ctx, testenv.DNS(t).Addr(), s, "fail.example.test")
	if err == nil {
		t.Fatal("obtain: got a certificate, want a failed validation")
	}
	if !strings.Contains(logs.String(), "TXT record visible") {
		t.Fatalf("the record was never seen in BIND, so the test proves nothing; log:\n%s", logs)
	}
	noTXT(t, bind, "_acme-challenge.fail.example.test")
}

// Cancelling the order (Ctrl-C) while it waits for propagation still
// removes the record.
func TestCleanupOnCancel(t *testing.T) {
	bind := bindtest.Start(t)
	useLegoResolver(t, bind.Addr())
	cfg := checkConfig(bind, dns01.ProviderSpec{Code: "dnsupdate", Env: dnsupdateEnv(bind, "example.test")})
	cfg.Resolvers = append(cfg.Resolvers, testenv.DNS(t).Addr()) // never sees it: the check keeps waiting
	cfg.RequireAllResolvers = true
	s := newSolver(t, cfg, nil)

	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	const name = "_acme-challenge.cancel.example.test"
	seen := make(chan error, 1)
	go func() {
		// Cancel once the record is in BIND: bounded in probes and time.
		deadline := time.Now().Add(time.Minute)
		for i := 0; i < 6000 && time.Now().Before(deadline); i++ {
			if v, err := bind.TXT(name); err == nil && len(v) > 0 {
				cancel()
				seen <- nil
				return
			}
			select {
			case <-ctx.Done():
				seen <- errors.New("order ended before the record appeared")
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		seen <- errors.New("record never appeared in BIND")
		cancel()
	}()
	_, err := order(t, ctx, bind.Addr(), s, "cancel.example.test")
	if werr := <-seen; werr != nil {
		t.Fatal(werr)
	}
	if err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("obtain: got %v, want a cancelled order", err)
	}
	noTXT(t, bind, name)
	if err := s.CleanUpAll(context.Background()); err != nil {
		t.Errorf("CleanUpAll after lego's cleanup: %v, want nothing left to do", err)
	}
}

// lego's exec provider runs a script that updates BIND with nsupdate.
func TestExecProviderScript(t *testing.T) {
	nsupdate := need.Binary(t, "nsupdate", "apt-get install -y bind9-dnsutils")
	bind := bindtest.Start(t)
	useLegoResolver(t, bind.Addr())
	calls := filepath.Join(t.TempDir(), "calls")
	script := writeScript(t, "nsupdate.sh", `#!/bin/sh
# exec provider hook: present|cleanup <fqdn> <value>
set -eu
case "$1" in
present) op="update add $2 60 TXT \"$3\"" ;;
cleanup) op="update delete $2 TXT \"$3\"" ;;
*) exit 2 ;;
esac
printf 'server 127.0.0.1 %s\nzone example.test\n%s\nsend\n' "$ZOKU_TEST_DNS_PORT" "$op" | "$ZOKU_TEST_NSUPDATE" -k "$ZOKU_TEST_KEY_FILE"
echo "$1 $2" >> "$ZOKU_TEST_CALLS"
`)
	// The script runs with the process environment (lego's exec provider
	// passes it on), so its own settings go there.
	t.Setenv("ZOKU_TEST_DNS_PORT", fmt.Sprint(bind.Port()))
	t.Setenv("ZOKU_TEST_NSUPDATE", nsupdate)
	t.Setenv("ZOKU_TEST_KEY_FILE", bind.Key("example.test").File)
	t.Setenv("ZOKU_TEST_CALLS", calls)
	s := newSolver(t, checkConfig(bind, dns01.ProviderSpec{Code: "exec", Env: map[string]string{
		"EXEC_PATH": script, "EXEC_SEQUENCE_INTERVAL": "0",
	}}), nil)
	mustOrder(t, bind.Addr(), s, "exec.example.test", "*.exec.example.test")
	data, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	const fqdn = "_acme-challenge.exec.example.test."
	want := strings.Repeat("present "+fqdn+"\ncleanup "+fqdn+"\n", 2)
	if string(data) != want {
		t.Errorf("script calls:\n got %q\nwant %q", data, want)
	}
	noTXT(t, bind, fqdn)
}

// writeScript writes an executable script into a test folder.
func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}
