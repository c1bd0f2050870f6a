package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/admin"
	"github.com/zoku/zoku/internal/embedca"
)

func TestRevokeArchivesAndListShowsCertificates(t *testing.T) {
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps)})
	dir := t.TempDir()
	base := []string{"--server", ca.DirectoryURL(), "--accept-tos", "--email", "v@example.test", "--path", dir}
	mustZoku(t, append([]string{"obtain", "--http", "--http.port", hp, "-d", "keep.example.test"}, base...)...)
	mustZoku(t, append([]string{"obtain", "--http", "--http.port", hp, "-d", "gone.example.test", "--key-type", "rsa2048"}, base...)...)

	r := mustZoku(t, "list", "--path", dir, "--json")
	var entries []listEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	if len(entries) != 2 {
		t.Fatalf("list shows %d certificates, want 2", len(entries))
	}
	for _, e := range entries {
		if e.Issuer == "" || e.NotAfter == nil || e.RenewalWindow == nil || e.NextRenewal == nil || !strings.Contains(e.NextRenewalReason, "ARI") || e.State != "valid" {
			t.Errorf("incomplete list entry: %+v", e)
		}
	}
	// Sorted by name: gone (rsa2048), keep (ec256).
	if entries[0].Name != "gone.example.test" || entries[0].KeyType != "RSA2048" || entries[1].KeyType != "EC256" {
		t.Errorf("entries %s/%s, %s/%s; want gone.example.test/RSA2048, keep.example.test/EC256", entries[0].Name, entries[0].KeyType, entries[1].Name, entries[1].KeyType)
	}
	text := mustZoku(t, "list", "--path", dir).stdout
	for _, want := range []string{"keep.example.test", "gone.example.test", "NEXT RENEWAL", "Pebble Interm"} {
		if !strings.Contains(text, want) {
			t.Errorf("list lacks %q:\n%s", want, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if n := len([]rune(line)); n > 120 {
			t.Errorf("list line of %d columns, want at most 120: %q", n, line)
		}
	}

	r = mustZoku(t, append([]string{"revoke", "-d", "gone.example.test", "--reason", "4"}, base...)...)
	if !strings.Contains(r.stdout, "revoked, files archived") {
		t.Fatalf("revoke stdout: %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "certificates", "gone.example.test.crt")); !os.IsNotExist(err) {
		t.Fatalf("revoked certificate still in place: %v", err)
	}
	zips, _ := filepath.Glob(filepath.Join(dir, "archives", "certificates", "gone.example.test_*.zip"))
	if len(zips) != 1 {
		t.Fatalf("archives: %v", zips)
	}
	// The CA says revoked: its ARI window for a revoked certificate lies in the past.
	r = zoku(t, "", false, append([]string{"revoke", "-d", "keep.example.test", "--reason", "2"}, base...)...)
	wantFailure(t, r, "--reason 2")
	if r := mustZoku(t, "list", "--path", dir); strings.Contains(r.stdout, "gone.example.test") {
		t.Fatalf("list still shows the revoked certificate:\n%s", r.stdout)
	}
}

// TestListAgreesWithTheAPI: `zoku list --json` and the admin API describe a
// certificate with the same fields and the same next renewal.
func TestListAgreesWithTheAPI(t *testing.T) {
	r := startRun(t, fmt.Sprintf(routerConfig, ""), true)
	r.waitCert(t, "a.example.test")
	var api admin.Certificate
	for _, s := range r.srv.eng.mgr.Statuses() {
		if s.Name == "a.example.test" {
			api = admin.CertificateOf(s, time.Now())
		}
	}
	out := mustZoku(t, "list", "--json", "--path", storageOf(r)).stdout
	var entries []listEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	var got *listEntry
	for i := range entries {
		if entries[i].Name == "a.example.test" {
			got = &entries[i]
		}
	}
	if got == nil || api.NextRenewal == nil || got.NextRenewal == nil {
		t.Fatalf("list %+v, API %+v", got, api)
	}
	if !got.NextRenewal.Equal(*api.NextRenewal) || got.NextRenewalReason != api.NextRenewalReason || got.State != api.State || got.Serial != api.Serial {
		t.Errorf("list says %v (%s, %s), the API %v (%s, %s)", got.NextRenewal, got.NextRenewalReason, got.State, api.NextRenewal, api.NextRenewalReason, api.State)
	}
	if (got.RenewalWindow == nil) != (api.RenewalWindow == nil) || (got.RenewalWindow != nil && *got.RenewalWindow != *api.RenewalWindow) {
		t.Errorf("renewal windows differ: list %+v, API %+v", got.RenewalWindow, api.RenewalWindow)
	}
}
