package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/need"
)

// storageWithRoot returns a storage folder whose embedded CA root exists.
func storageWithRoot(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), ".zoku")
	ca, err := embedca.Start(t.Context(), embedca.Options{StateDir: embedca.StateDirIn(dir)})
	must(t, err)
	must(t, ca.Close())
	return dir
}

// TestTrustErrors: every way `zoku trust` cannot do its work gives one line
// naming the problem and the fix, and leaves the trust store folder as it
// was. No system file is touched: the store is a temporary folder.
func TestTrustErrors(t *testing.T) {
	t.Parallel()
	withRoot := storageWithRoot(t)
	cfg := filepath.Join(t.TempDir(), "zoku.yaml")
	must(t, os.WriteFile(cfg, []byte("entryPoints:\n  unused: {address: \"127.0.0.1:0\"}\ncertificates:\n  acme:\n    server: embedded\n    acceptTOS: true\n    storage: "+withRoot+"\n"), 0o600))
	failingTool := filepath.Join(t.TempDir(), "update-ca-certificates")
	must(t, os.WriteFile(failingTool, []byte("#!/bin/sh\necho 'Updating certificates...'\necho 'E: the bundle could not be written' >&2\nexit 3\n"), 0o755))

	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	found := func(string) (string, error) { return failingTool, nil }
	root, user := func() int { return 0 }, func() int { return 1000 }
	tests := []struct {
		name  string
		args  []string
		find  func(string) (string, error)
		euid  func() int
		wants []string
	}{
		{"no root yet", []string{"--path", t.TempDir()}, found, root,
			[]string{"no embedded CA root in", "--server embedded"}},
		{"uninstall without root", []string{"--path", t.TempDir(), "--uninstall"}, found, root,
			[]string{"cannot tell which root", "zoku-embedded-*.crt", "--fresh"}},
		{"tool missing", []string{"--path", withRoot}, notFound, root,
			[]string{"update-ca-certificates not found", "apt-get install ca-certificates", "update-ca-trust", "root.pem"}},
		{"not root", []string{"--path", withRoot}, found, user,
			[]string{"belongs to root", "sudo zoku trust --path " + withRoot}},
		{"not root, uninstall", []string{"--path", withRoot, "--uninstall"}, found, user,
			[]string{"sudo zoku trust --path " + withRoot + " --uninstall"}},
		{"storage from --config", []string{"--config", cfg}, found, user,
			[]string{"sudo zoku trust --path " + withRoot}},
		{"--path and --config", []string{"--config", cfg, "--path", withRoot}, found, root,
			[]string{"not both"}},
		{"tool fails", []string{"--path", withRoot}, found, root,
			[]string{"update-ca-certificates failed", "exit status 3", "E: the bundle could not be written"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := t.TempDir()
			ts := trustStore{dir: store, certsDir: t.TempDir(), tool: "update-ca-certificates", find: tc.find, euid: tc.euid}
			var out bytes.Buffer
			err := trustCommand(t.Context(), Env{Stdout: &out, Stderr: &out, Getenv: os.Getenv}, tc.args, ts)
			if err == nil {
				t.Fatalf("zoku trust %s succeeded, want an error", strings.Join(tc.args, " "))
			}
			msg := err.Error()
			for _, w := range tc.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if entries, _ := os.ReadDir(store); len(entries) != 0 {
				t.Errorf("the trust store folder holds %d files after a failure, want none", len(entries))
			}
		})
	}
}

// TestTrustRemoveLinks: --uninstall takes out the links made for zoku's
// file and nothing else, and asks for a full rebuild (--fresh) only when
// removing a hash link would hide a colliding certificate from OpenSSL.
func TestTrustRemoveLinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		links     map[string]string // name -> destination
		wantFresh bool
		wantLeft  []string
	}{
		{"own links only", map[string]string{
			"zoku-embedded-ab12cd34.pem": "{local}/zoku-embedded-ab12cd34.crt",
			"1a2b3c4d.0":                 "zoku-embedded-ab12cd34.pem",
			"other.pem":                  "/usr/share/ca-certificates/other.crt",
			"99887766.0":                 "other.pem",
		}, false, []string{"99887766.0", "other.pem"}},
		{"hash collision", map[string]string{
			"zoku-embedded-ab12cd34.pem": "{local}/zoku-embedded-ab12cd34.crt",
			"1a2b3c4d.0":                 "zoku-embedded-ab12cd34.pem",
			"1a2b3c4d.1":                 "other.pem",
			"other.pem":                  "/usr/share/ca-certificates/other.crt",
		}, true, []string{"1a2b3c4d.1", "other.pem"}},
		{"pem link to another file kept", map[string]string{
			"zoku-embedded-ab12cd34.pem": "/somewhere/else.crt",
		}, false, []string{"zoku-embedded-ab12cd34.pem"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := trustStore{dir: t.TempDir(), certsDir: t.TempDir()}
			for name, dest := range tc.links {
				must(t, os.Symlink(strings.ReplaceAll(dest, "{local}", ts.dir), filepath.Join(ts.certsDir, name)))
			}
			fresh := ts.removeLinks(filepath.Join(ts.dir, "zoku-embedded-ab12cd34.crt"))
			if fresh != tc.wantFresh {
				t.Errorf("removeLinks = %t, want %t", fresh, tc.wantFresh)
			}
			var left []string
			entries, _ := os.ReadDir(ts.certsDir)
			for _, e := range entries {
				left = append(left, e.Name())
			}
			if strings.Join(left, " ") != strings.Join(tc.wantLeft, " ") {
				t.Errorf("left %v, want %v", left, tc.wantLeft)
			}
		})
	}
}

// storeSnapshot records the system trust store: what /etc/ssl/certs and
// the local CA folder hold (link targets and file digests).
func storeSnapshot(t *testing.T, localDir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, dir := range []string{"/etc/ssl/certs", localDir} {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if target, err := os.Readlink(p); err == nil {
				snap[p] = "-> " + target
				continue
			}
			data, err := os.ReadFile(p)
			if err != nil {
				snap[p] = "unreadable"
				continue
			}
			sum := sha256.Sum256(data)
			snap[p] = hex.EncodeToString(sum[:])
		}
	}
	return snap
}

func diffSnapshots(before, after map[string]string) []string {
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
	return diff
}

// TestTrustSystemStore installs the embedded root into this machine's
// trust store (Debian's update-ca-certificates, as root; CI runs it),
// shows that plain curl (no --cacert) then reaches a name zoku serves
// on loopback, and that --uninstall puts the store back exactly as it
// was. Cleanup restores the store even when the test fails.
func TestTrustSystemStore(t *testing.T) {
	curl := need.Binary(t, "curl", "apt-get install -y curl")
	tool := need.Binary(t, "update-ca-certificates", "apt-get install -y ca-certificates")
	if os.Geteuid() != 0 {
		need.Missing(t, "root privileges (the test writes the system trust store)", "run the tests as root, as CI does")
	}
	// The trust store is the machine's: test processes running at the same
	// time (two checkouts, two go test runs) take turns.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "zoku-trust-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	must(t, err)
	must(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { _ = lock.Close() })
	ts := systemTrustStore()
	// The store is first rebuilt as the tool would rebuild it, so that
	// "as before" means the tool's own state: a machine image may carry
	// a bundle built from other certificates, or a temporary file of an
	// interrupted run, that any package install would replace too.
	if out, err := exec.Command(tool).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	before := storeSnapshot(t, ts.dir)

	q := newQuickstart(t, t.TempDir())
	q.run(t, curl) // creates the root and the certificate
	root, err := embedca.LoadRoot(embedca.StateDirIn(q.storage))
	must(t, err)
	target := filepath.Join(ts.dir, "zoku-embedded-"+embedca.ShortID(root)+".crt")
	t.Cleanup(func() {
		// Whatever the test left (the file, or links to it), --fresh
		// clears links to missing files and rebuilds the rest.
		_, statErr := os.Stat(target)
		_, linkErr := os.Lstat(filepath.Join(ts.certsDir, strings.TrimSuffix(filepath.Base(target), ".crt")+".pem"))
		if statErr == nil || linkErr == nil {
			_ = os.Remove(target)
			if out, err := exec.Command(tool, "--fresh").CombinedOutput(); err != nil {
				t.Errorf("cleanup: %s --fresh: %v\n%s", tool, err, out)
			}
		}
		if diff := diffSnapshots(before, storeSnapshot(t, ts.dir)); len(diff) > 0 {
			t.Errorf("the system trust store differs from before the test:\n%s", strings.Join(diff, "\n"))
		}
	})

	if _, _, err := q.runCurl(t, curl, true); err == nil {
		t.Fatal("plain curl trusted the embedded root before zoku trust")
	}
	r := mustZoku(t, "trust", "--path", q.storage)
	if !strings.Contains(r.stdout, "added to the system trust store as "+target) {
		t.Errorf("zoku trust stdout: %s", r.stdout)
	}
	fi, err := os.Stat(target)
	must(t, err)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("%s has mode %o, want 644", target, fi.Mode().Perm())
	}
	if _, _, err := q.runCurl(t, curl, true); err != nil {
		t.Fatalf("plain curl after zoku trust: %v", err)
	}
	mustZoku(t, "trust", "--path", q.storage) // a second install changes nothing

	r = mustZoku(t, "trust", "--path", q.storage, "--uninstall")
	if !strings.Contains(r.stdout, "removed from the system trust store") {
		t.Errorf("zoku trust --uninstall stdout: %s", r.stdout)
	}
	if diff := diffSnapshots(before, storeSnapshot(t, ts.dir)); len(diff) > 0 {
		t.Errorf("--uninstall did not restore the trust store:\n%s", strings.Join(diff, "\n"))
	}
	if _, _, err := q.runCurl(t, curl, true); err == nil {
		t.Error("plain curl still trusts the embedded root after --uninstall")
	}
	r = mustZoku(t, "trust", "--path", q.storage, "--uninstall")
	if !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("second --uninstall stdout: %s", r.stdout)
	}
}
