package cli

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// Every failure mode exits 1 with one clear line and leaves a populated
// store exactly as it was.
func TestFailuresLeaveStorageAsItWas(t *testing.T) {
	hp := port(t)
	_, ps, _ := net.SplitHostPort(hp)
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps)})
	dir := t.TempDir()
	base := []string{"--server", ca.DirectoryURL(), "--accept-tos", "--email", "f@example.test", "--path", dir}
	mustZoku(t, append([]string{"obtain", "--http", "--http.port", hp, "-d", "ok.example.test"}, base...)...)
	before := snapshot(t, dir)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IIJ_DPF_API_TOKEN", "")
	t.Setenv("IIJ_DPF_DPM_SERVICE_CODE", "")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"invalid domain", []string{"obtain", "--http", "--http.port", hp, "-d", "bad_name!.example"}, "invalid domain"},
		{"duplicate domain", []string{"obtain", "--http", "--http.port", hp, "-d", "a.example.test", "-d", "A.example.test"}, "given twice"},
		{"wildcard without dns-01", []string{"obtain", "--http", "--http.port", hp, "-d", "*.example.test"}, "add --dns"},
		{"no challenge", []string{"obtain", "-d", "x.example.test"}, "no challenge selected"},
		{"bad key type", []string{"obtain", "--http", "-d", "x.example.test", "--key-type", "ed25519"}, "unknown --key-type"},
		{"CA unreachable", []string{"obtain", "--http", "--http.port", hp, "-d", "x.example.test", "--server", "https://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + "/dir"}, "unreachable"},
		{"validation fails (CA problem document)", []string{"obtain", "--http", "--http.port", port(t), "-d", "refused.example.test"}, "the CA refused"},
		{"port in use", []string{"obtain", "--http", "--http.port", busy.Addr().String(), "-d", "x.example.test"}, "already in use"},
		{"unwritable path", []string{"obtain", "--http", "--http.port", hp, "-d", "x.example.test", "--path", filepath.Join(file, "store")}, "not writable"},
		{"unknown dns provider", []string{"obtain", "--dns", "nosuchdns", "-d", "x.example.test"}, "unknown provider"},
		{"seed's iij provider", []string{"obtain", "--dns", "iij", "-d", "*.example.test"}, "IIJ_DPF_API_TOKEN"},
		{"missing provider variables", []string{"obtain", "--dns", "iijdpf", "-d", "x.example.test"}, "IIJ_DPF_DPM_SERVICE_CODE"},
		{"renew unknown name", []string{"renew", "-d", "nope.example.test"}, "no stored certificate"},
		{"bad server", []string{"obtain", "--http", "-d", "x.example.test", "--server", "ftp://x"}, "--server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.args[:1]...), base...)
			args = append(args, tc.args[1:]...) // later flags win: a test may override --server/--path
			r := zoku(t, "", false, args...)
			wantFailure(t, r, tc.want)
			sameTree(t, before, snapshot(t, dir))
		})
	}
}

func TestSeedIIJCommandLine(t *testing.T) {
	// Seed 000's lego command line, word for word but for the binary's name
	// (and --path, to keep the test's files in its own folder).
	fresh := filepath.Join(t.TempDir(), ".zoku")
	r := zoku(t, "", false, "--path", fresh, "--dns", "iij", "--server", "https://acme-staging-v02.api.letsencrypt.org/directory",
		"--domains", "*.ike.iij.jp", "--email", "you@example.test", "run")
	wantFailure(t, r, "iijdpf")
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a refused command line created %s", fresh)
	}
	for _, v := range []string{"May 2023", "IIJ_DPF_API_TOKEN", "IIJ_DPF_DPM_SERVICE_CODE"} {
		if !strings.Contains(r.stderr, v) {
			t.Errorf("iij advice lacks %q: %s", v, r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"obtain", "renew", "revoke", "list", "version"} {
		t.Run(cmd, func(t *testing.T) {
			r := zoku(t, "", false, cmd, "--help")
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: zoku "+cmd) {
				t.Fatalf("exit %d, stdout:\n%s", r.code, r.stdout)
			}
		})
	}
	if r := zoku(t, "", false, "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
		t.Fatalf("unknown command: exit %d, %q", r.code, r.stderr)
	}
	if r := zoku(t, "", false, "obtain", "--no-such-flag"); r.code != 2 || !strings.Contains(r.stderr, "no-such-flag") {
		t.Fatalf("unknown flag: exit %d, %q", r.code, r.stderr)
	}
}
