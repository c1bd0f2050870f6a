package legocli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The accounts, certificates and archives commands, in the order a user
// meets them: register, list, roll the key over (orders still work),
// recover the account from its key alone, revoke a certificate, list and
// restore its archive.
func TestAccountsCertificatesArchives(t *testing.T) {
	ca, addr := httpCA(t)
	dir := t.TempDir()
	const email = "acc@example.test"
	acct := []string{"--server", ca.DirectoryURL(), "--email", email, "--path", dir}
	host := strings.NewReplacer(":", "_", "/", "_").Replace(strings.SplitN(strings.TrimPrefix(ca.DirectoryURL(), "https://"), "/", 2)[0])
	accDir := filepath.Join(dir, "accounts", host, email)

	r := mustLego(t, append([]string{"accounts", "register", "-a"}, acct...)...)
	url := strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, ": ")+2:])
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("register printed no account URL:\n%s", r.stdout)
	}
	r = mustLego(t, "accounts", "list", "--path", dir, "--json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 1 || listed[0]["id"] != email {
		t.Fatalf("accounts list --json: %v\n%s", err, r.stdout)
	}

	oldKey, _ := os.ReadFile(filepath.Join(accDir, email+".key"))
	r = legoRun(t, "\n", append([]string{"accounts", "keyrollover", "--key-type", "EC384"}, acct...)...)
	if r.code != 0 {
		t.Fatalf("keyrollover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	newKey, _ := os.ReadFile(filepath.Join(accDir, email+".key"))
	if string(newKey) == string(oldKey) {
		t.Fatal("keyrollover left the key as it was")
	}
	// The CA knows the new key: an order signs with it.
	mustLego(t, append([]string{"run", "--http", "--http.address", addr, "-d", "acc.example.test"}, acct...)...)

	// Recover the account from its key alone.
	keyCopy := filepath.Join(t.TempDir(), "account.key")
	if err := os.WriteFile(keyCopy, newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(accDir); err != nil {
		t.Fatal(err)
	}
	r = legoRun(t, "y\n", append([]string{"accounts", "recover", "--private-key", keyCopy}, acct...)...)
	if r.code != 0 {
		t.Fatalf("recover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	raw, err := os.ReadFile(filepath.Join(accDir, "account.json"))
	if err != nil || !strings.Contains(string(raw), url) {
		t.Fatalf("recovered account.json lacks the account URL %s: %v\n%s", url, err, raw)
	}

	r = mustLego(t, "certificates", "list", "--path", dir, "--json")
	var certs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &certs); err != nil || len(certs) != 1 || certs[0]["name"] != "acc.example.test" {
		t.Fatalf("certificates list --json: %v\n%s", err, r.stdout)
	}
	mustLego(t, append([]string{"certificates", "revoke", "-c", "acc.example.test", "--reason", "4"}, acct...)...)
	if _, err := os.Stat(filepath.Join(dir, "certificates", "acc.example.test.crt")); err == nil {
		t.Fatal("revoke left the certificate in place (no --keep)")
	}
	r = mustLego(t, "archives", "list", "--path", dir)
	if !strings.Contains(r.stdout, "acc.example.test_") {
		t.Fatalf("archives list:\n%s", r.stdout)
	}
	r = legoRun(t, "1\n", "archives", "restore", "--path", dir)
	if r.code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "certificates", "acc.example.test.crt")); err != nil {
		t.Fatalf("restore did not bring the certificate back: %v", err)
	}
	r = mustLego(t, "archives", "list", "--path", dir)
	if !strings.Contains(r.stdout, "No archives") {
		t.Errorf("the restored archive is still listed:\n%s", r.stdout)
	}
}

// Revoking with an account the folder does not have is refused before
// anything is sent, naming the fix.
func TestRevokeUnknownAccount(t *testing.T) {
	ca, _ := httpCA(t)
	r := legoRun(t, "", "certificates", "revoke", "--server", ca.DirectoryURL(), "-m", "nobody@example.test", "--path", t.TempDir(), "-c", "x.example.test")
	if r.code != 1 || !strings.Contains(r.stderr, "not registered") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// Flags of features zoku lacks are refused with the reason; none is
// silently ignored.
func TestUnavailableFlagsSayWhy(t *testing.T) {
	for _, args := range [][]string{
		{"run", "-d", "x.test", "--http", "--http.s3-bucket", "b"},
		{"run", "-d", "x.test", "--http", "--http.memcached-host", "127.0.0.1:11211"},
		{"certificates", "list", "--config", "lego.yml"},
	} {
		r := legoRun(t, "", append(args, "--path", t.TempDir())...)
		if r.code != 1 || !strings.Contains(r.stderr, "is not supported: ") {
			t.Errorf("%v: exit %d %q", args, r.code, r.stderr)
		}
	}
}
