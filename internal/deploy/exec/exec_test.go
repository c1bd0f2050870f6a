package exec_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

const domain = "app.example.test"

// execRig is "an appliance with a CLI": the challenge hooks write the
// answer where a small web server (the appliance, for the CA) serves it.
type execRig struct {
	dir, root string
	ca        *embedca.CA
	store     *storage.Store
	logs      *deploytest.Buffer
	out       *deploytest.Buffer
}

func newExecRig(t *testing.T) *execRig {
	t.Helper()
	r := &execRig{dir: t.TempDir(), logs: &deploytest.Buffer{}, out: &deploytest.Buffer{}}
	r.root = filepath.Join(r.dir, "www")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(r.root))}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.ca = testenv.StartCA(t, embedca.Options{HTTPPort: ln.Addr().(*net.TCPAddr).Port})
	if r.store, err = storage.Open(filepath.Join(r.dir, "store")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("deploy log:\n%s\noutput:\n%s", r.logs.String(), r.out.String())
		}
	})
	return r
}

func (r *execRig) runner(t *testing.T, command string) *deploy.Runner {
	t.Helper()
	chDir := filepath.Join(r.root, ".well-known", "acme-challenge")
	present := fmt.Sprintf(`mkdir -p %s && printf %%s "$CERTBOT_VALIDATION" > %s/"$CERTBOT_TOKEN" && echo "presented $CERTBOT_DOMAIN of $CERTBOT_ALL_DOMAINS, $CERTBOT_REMAINING_CHALLENGES left"`, chDir, chDir)
	cleanup := fmt.Sprintf(`rm %s/"$CERTBOT_TOKEN" && echo "$CERTBOT_AUTH_OUTPUT" >> %s/auth_output`, chDir, r.dir)
	y := fmt.Sprintf(`entryPoints:
  unused: {address: "127.0.0.1:0"}
certificates:
  acme: {server: %q, acceptTOS: true}
targets:
  box:
    type: exec
    certificates: [{main: %s}]
    challenge:
      skipSelfCheck: true
      exec: {present: %q, cleanup: %q}
    exec: {command: %q, timeout: 30s}
`, r.ca.DirectoryURL(), domain, present, cleanup, command)
	cfg, err := config.Parse("zoku.yaml", []byte(y), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return deploytest.Runner(t, cfg, r.ca, r.store, r.logs, func(o *deploy.Options) { o.Output = r.out })
}

func runOnce(t *testing.T, run *deploy.Runner) deploy.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, _ := run.RunOnce(ctx, deploy.RunOptions{})
	if len(res) != 1 {
		t.Fatalf("got %d results, want 1", len(res))
	}
	return res[0]
}

// The challenge hooks get certbot's manual-hook variables (cleanup sees
// what present printed); the deploy command gets the lego, certbot and
// acme.sh variables; a second run changes nothing and runs nothing.
func TestHooksGetTheirVariablesAndRunOnce(t *testing.T) {
	r := newExecRig(t)
	envFile := filepath.Join(r.dir, "deploy.env")
	run := r.runner(t, fmt.Sprintf(`env >> %s && echo ---- >> %s`, envFile, envFile))
	if res := runOnce(t, run); res.Action != deploy.Obtained {
		t.Fatalf("got %q (%v), want %q", res.Action, res.Err, deploy.Obtained)
	}
	auth, _ := os.ReadFile(filepath.Join(r.dir, "auth_output"))
	if want := "presented " + domain + " of " + domain + ", 0 left"; strings.TrimSpace(string(auth)) != want {
		t.Errorf("CERTBOT_AUTH_OUTPUT seen by cleanup: %q, want %q", auth, want)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	paths := r.store.CertPaths(domain)
	for _, want := range []string{
		"LEGO_HOOK_CERT_DOMAINS=" + domain, "LEGO_HOOK_CERT_PATH=" + paths.Cert, "LEGO_CERT_KEY_PATH=" + paths.Key,
		"RENEWED_DOMAINS=" + domain, "RENEWED_LINEAGE=", "CERT_FULLCHAIN_PATH=", "Le_Domain=" + domain,
	} {
		if !strings.Contains(string(env), "\n"+want) && !strings.HasPrefix(string(env), want) {
			t.Errorf("deploy command environment lacks %s", want)
		}
	}
	if res := runOnce(t, run); res.Action != deploy.UpToDate {
		t.Fatalf("second run: got %q (%v), want %q", res.Action, res.Err, deploy.UpToDate)
	}
	env2, _ := os.ReadFile(envFile)
	if strings.Count(string(env2), "----") != 1 {
		t.Errorf("the deploy command ran %d times, want once", strings.Count(string(env2), "----"))
	}
}

// A failing command is reported with its status; nothing is recorded, so
// the next run deploys the (already obtained) certificate again.
func TestFailingCommandIsRetried(t *testing.T) {
	r := newExecRig(t)
	flag := filepath.Join(r.dir, "ok")
	run := r.runner(t, fmt.Sprintf(`test -e %s || exit 3`, flag))
	res := runOnce(t, run)
	if res.Action != deploy.Failed || !strings.Contains(res.Err.Error(), "exited with status 3") {
		t.Fatalf("got %q (%v), want a failure naming status 3", res.Action, res.Err)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runOnce(t, run); res.Action != deploy.Deployed {
		t.Fatalf("second run: got %q (%v), want %q without a new order", res.Action, res.Err, deploy.Deployed)
	}
}
