package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/embedca"
)

func runAs(program string, args ...string) result {
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: os.Getenv, Program: program})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// `zoku lego --help` and `lego --help` through a link print lego's command
// list; zoku's own help mentions the personality.
func TestLegoPersonalityDispatch(t *testing.T) {
	for _, tc := range []struct {
		program string
		args    []string
	}{
		{"zoku", []string{"lego", "--help"}},
		{"/usr/local/bin/lego", []string{"--help"}},
		{"lego", []string{"help"}},
	} {
		r := runAs(tc.program, tc.args...)
		if r.code != 0 {
			t.Fatalf("%s %v: exit %d %s", tc.program, tc.args, r.code, r.stderr)
		}
		for _, cmd := range []string{"run", "certificates", "accounts", "archives", "dnshelp", "migrate"} {
			if !strings.Contains(r.stdout, "   "+cmd+" ") {
				t.Errorf("%s %v: command %s missing from:\n%s", tc.program, tc.args, cmd, r.stdout)
			}
		}
	}
	if r := runAs("zoku", "--help"); !strings.Contains(r.stdout, "lego") {
		t.Errorf("zoku --help does not mention lego:\n%s", r.stdout)
	}
	// lego v4's shape reaches the personality from zoku too.
	r := runAs("zoku", "--email", "x@example.test", "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("v4 shape: exit %d %q", r.code, r.stderr)
	}
}

// zoku's own commands: --help prints once; an unknown flag or a stray
// argument is one line on stderr with a hint, nothing on stdout, exit 2;
// help spells flags --flag.
func TestZokuUsage(t *testing.T) {
	for _, cmd := range []string{"obtain", "renew", "revoke", "list", "deploy", "version"} {
		r := runAs("zoku", cmd, "--help")
		if r.code != 0 || strings.Count(r.stdout, "Usage: zoku "+cmd) != 1 {
			t.Errorf("%s --help: exit %d, usage printed %d times", cmd, r.code, strings.Count(r.stdout, "Usage: zoku "+cmd))
		}
		if cmd != "version" && !strings.Contains(r.stdout, "\n  --") {
			t.Errorf("%s --help does not spell flags --flag:\n%s", cmd, r.stdout)
		}
		for _, bad := range [][]string{{"--no-such-flag"}, {"stray"}} {
			r := runAs("zoku", append([]string{cmd}, bad...)...)
			if r.code != 2 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "run 'zoku "+cmd+" --help'") {
				t.Errorf("%s %v: exit %d stdout %d bytes stderr %q", cmd, bad, r.code, len(r.stdout), r.stderr)
			}
		}
	}
}

// zoku obtain takes lego v5's names for what it shares with lego, and a
// deploy hook that runs on the first issuance too (lego runs one then).
func TestObtainLegoNamesAndDeployHook(t *testing.T) {
	hp := port(t)
	_, ps, _ := strings.Cut(hp, ":")
	ca := testCA(t, embedca.Options{HTTPPort: atoi(ps)})
	dir, out := t.TempDir(), t.TempDir()
	r := mustZoku(t, "obtain", "-s", ca.DirectoryURL(), "-a", "-m", "names@example.test", "--path", dir,
		"--http", "--http.address", hp, "--dns.timeout", "10", "--log.format", "colored", "--log.level", "debug",
		"-d", "names.example.test", "-c", "named", "--pem", "--pfx",
		"--pre-hook", `echo "$LEGO_HOOK_CERT_DOMAINS" > `+out+`/pre`,
		"--deploy-hook", `echo "$LEGO_HOOK_CERT_NAME $LEGO_HOOK_CERT_PFX_PATH" > `+out+`/deploy`,
		"--post-hook", `touch `+out+`/post`)
	_ = r
	for _, ext := range []string{".crt", ".key", ".pem", ".pfx"} {
		if _, err := os.Stat(dir + "/certificates/named" + ext); err != nil {
			t.Errorf("%s missing: %v", ext, err)
		}
	}
	if got, _ := os.ReadFile(out + "/pre"); strings.TrimSpace(string(got)) != "names.example.test" {
		t.Errorf("pre hook saw %q", got)
	}
	if got, _ := os.ReadFile(out + "/deploy"); strings.TrimSpace(string(got)) != "named "+dir+"/certificates/named.pfx" {
		t.Errorf("deploy hook saw %q", got)
	}
	if _, err := os.Stat(out + "/post"); err != nil {
		t.Errorf("post hook did not run: %v", err)
	}
}

// lego's variables are never ignored silently by zoku's own commands.
func TestLegoVariablesNoted(t *testing.T) {
	t.Setenv("LEGO_PATH", t.TempDir())
	r := runAs("zoku", "list", "--path", t.TempDir())
	if r.code != 0 || !strings.Contains(r.stderr, "LEGO_PATH set") || !strings.Contains(r.stderr, "zoku lego run") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}
