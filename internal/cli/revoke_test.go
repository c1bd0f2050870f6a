package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		if e.Issuer == "" || e.NotAfter.IsZero() || e.ARIStart == nil || e.NextRenewal.IsZero() || !strings.Contains(e.Why, "ARI") {
			t.Errorf("incomplete list entry: %+v", e)
		}
	}
	// Sorted by name: gone (rsa2048), keep (ec256).
	if entries[0].Name != "gone.example.test" || entries[0].KeyType != "RSA2048" || entries[1].KeyType != "EC256" {
		t.Errorf("entries %s/%s, %s/%s; want gone.example.test/RSA2048, keep.example.test/EC256", entries[0].Name, entries[0].KeyType, entries[1].Name, entries[1].KeyType)
	}
	text := mustZoku(t, "list", "--path", dir).stdout
	for _, want := range []string{"keep.example.test", "gone.example.test", "ARI WINDOW", "Pebble Intermediate"} {
		if !strings.Contains(text, want) {
			t.Errorf("list lacks %q:\n%s", want, text)
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
