package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// quickstart is examples/quickstart.yaml with free ports, its storage in
// dir and the admin listener off: the README's first command, in a test.
type quickstart struct {
	cfgPath, storage string
}

func newQuickstart(t *testing.T, dir string) quickstart {
	t.Helper()
	src, err := os.ReadFile("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	q := quickstart{cfgPath: filepath.Join(dir, "quickstart.yaml"), storage: filepath.Join(dir, ".zoku")}
	text := strings.NewReplacer(
		"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"127.0.0.1:8443", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"storage: ./.zoku", "storage: "+q.storage,
	).Replace(string(src))
	if !strings.Contains(text, q.storage) {
		t.Fatal("examples/quickstart.yaml no longer sets storage: ./.zoku")
	}
	must(t, os.WriteFile(q.cfgPath, []byte(text+"\nadmin:\n  disabled: true\n"), 0o600))
	return q
}

// run starts `zoku run` on the quickstart, waits for demo.localhost's
// certificate, runs the curl line zoku prints, and stops. It fails the
// test when curl does not get the demo page. It returns the kind of the
// certificate event and what zoku logged.
func (q quickstart) run(t *testing.T, curl string) (certmgr.EventKind, string) {
	t.Helper()
	kind, logs, err := q.runCurl(t, curl, false)
	if err != nil {
		t.Fatal(err)
	}
	return kind, logs
}

// runCurl is run with curl's error returned; plain drops --cacert from
// the printed line, so curl relies on the system trust store.
func (q quickstart) runCurl(t *testing.T, curl string, plain bool) (certmgr.EventKind, string, error) {
	t.Helper()
	cfg, err := config.Load(q.cfgPath, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	events := make(chan certmgr.Event, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	env := Env{Stdout: &out, Stderr: io.Discard, Getenv: os.Getenv}
	srv, err := startServer(ctx, env, q.cfgPath, cfg, logger, engineOptions{onEvent: func(e certmgr.Event) { events <- e }})
	if err != nil {
		t.Fatalf("zoku run: %v", err)
	}
	defer srv.close()
	var kind certmgr.EventKind
	deadline := time.After(time.Minute)
	for kind == "" {
		select {
		case e := <-events:
			if e.Name != "demo.localhost" {
				continue
			}
			if e.Err != nil {
				t.Fatalf("certificate for demo.localhost: %v", e.Err)
			}
			kind = e.Kind
		case <-deadline:
			t.Fatalf("no certificate for demo.localhost within a minute; log:\n%s", logs.String())
		}
	}
	printQuickstart(env, cfg, srv.eng)
	_, line, ok := strings.Cut(out.String(), "check it: ")
	if !ok {
		t.Fatalf("zoku printed no curl line:\n%s", out.String())
	}
	args := strings.Fields(strings.TrimPrefix(strings.SplitN(line, "\n", 2)[0], "curl "))
	if plain {
		if len(args) < 3 || args[0] != "--cacert" {
			t.Fatalf("printed curl line %q does not start with --cacert", line)
		}
		args = args[2:]
	}
	cmd := exec.CommandContext(ctx, curl, append([]string{"--silent", "--show-error", "--max-time", "10"}, args...)...)
	body, err := cmd.CombinedOutput()
	if err != nil || string(body) != "Hello from zoku\n" {
		return kind, logs.String(), fmt.Errorf("curl %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(body))
	}
	return kind, logs.String(), nil
}

// TestQuickstartSurvivesRestarts is issue 11 item 8's "Done means": the
// README's first command works on every run in the same folder, with the
// curl line it prints, whatever port the embedded CA gets; and a stored
// certificate from a root that is gone is ordered again before it is
// served, with `zoku list` saying so first.
func TestQuickstartSurvivesRestarts(t *testing.T) {
	curl := need.Binary(t, "curl", "apt-get install -y curl")
	q := newQuickstart(t, t.TempDir())
	rootPath := filepath.Join(q.storage, "embedded-ca", "root.pem")

	if kind, _ := q.run(t, curl); kind != certmgr.EventObtained {
		t.Fatalf("first run: event %q, want %q", kind, certmgr.EventObtained)
	}
	root1, err := os.ReadFile(rootPath)
	must(t, err)

	// Pebble's usual port taken, as by another zoku: nothing changes.
	if ln, err := net.Listen("tcp", "127.0.0.1:14000"); err == nil {
		t.Cleanup(func() { _ = ln.Close() })
	}
	if kind, _ := q.run(t, curl); kind != certmgr.EventLoaded {
		t.Fatalf("second run: event %q, want the stored certificate (%q)", kind, certmgr.EventLoaded)
	}
	root2, err := os.ReadFile(rootPath)
	must(t, err)
	if !bytes.Equal(root1, root2) {
		t.Fatal("root.pem changed across a restart")
	}
	hosts, _ := filepath.Glob(filepath.Join(q.storage, "accounts", "*"))
	if len(hosts) != 1 || filepath.Base(hosts[0]) != embedca.StableHost {
		t.Errorf("account folders %v, want one: accounts/%s", hosts, embedca.StableHost)
	}

	// A root that is gone (deleted, or from before roots were kept): a
	// new root appears, and the stored certificate no longer chains.
	must(t, os.RemoveAll(filepath.Dir(rootPath)))
	ca, err := embedca.Start(t.Context(), embedca.Options{StateDir: filepath.Dir(rootPath)})
	must(t, err)
	must(t, ca.Close())
	list := mustZoku(t, "list", "--path", q.storage)
	if !strings.Contains(list.stdout, "untrusted") {
		t.Errorf("zoku list does not flag the certificate of the old root:\n%s", list.stdout)
	}
	listJSON := mustZoku(t, "list", "--json", "--path", q.storage)
	if !strings.Contains(listJSON.stdout, "does not chain to the embedded CA's root.pem") || !strings.Contains(listJSON.stdout, `"state": "untrusted"`) {
		t.Errorf("zoku list --json does not say why:\n%s", listJSON.stdout)
	}
	kind, logs := q.run(t, curl)
	if kind != certmgr.EventObtained {
		t.Fatalf("run with a new root: event %q, want a new certificate (%q)", kind, certmgr.EventObtained)
	}
	if !strings.Contains(logs, "stored certificate not served") {
		t.Errorf("zoku did not log why it ordered again:\n%s", logs)
	}
	if list := mustZoku(t, "list", "--path", q.storage); strings.Contains(list.stdout, "untrusted") {
		t.Errorf("zoku list still flags the new certificate:\n%s", list.stdout)
	}
}

// lockedBuffer collects what the server's goroutines log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEmbeddedRevokeAndRenewAcrossRuns: each command is its own run of the
// embedded CA. A certificate from an earlier run is revoked by the account
// that ordered it, and `zoku renew` orders again a certificate whose root
// is gone, whatever its dates.
func TestEmbeddedRevokeAndRenewAcrossRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".zoku")
	base := []string{"--server", "embedded", "--accept-tos", "--email", "x@example.test", "--path", dir}
	for _, name := range []string{"gone.example.test", "stale.example.test"} {
		mustZoku(t, append([]string{"obtain", "--http", "--http.port", port(t), "-d", name}, base...)...)
	}

	r := mustZoku(t, append([]string{"revoke", "-d", "gone.example.test"}, base...)...)
	if !strings.Contains(r.stdout, "gone.example.test: revoked") {
		t.Errorf("revoke stdout: %s", r.stdout)
	}

	stateDir := embedca.StateDirIn(dir)
	must(t, os.RemoveAll(stateDir))
	ca, err := embedca.Start(t.Context(), embedca.Options{StateDir: stateDir})
	must(t, err)
	must(t, ca.Close())
	r = mustZoku(t, append([]string{"renew", "--http", "--http.port", port(t), "-d", "stale.example.test"}, base...)...)
	if !strings.Contains(r.stdout, "stale.example.test: renewed (it does not chain to the embedded CA's root)") {
		t.Errorf("renew stdout: %s", r.stdout)
	}
	root, err := embedca.LoadRoot(stateDir)
	must(t, err)
	verifyIssued(t, dir, "stale.example.test", poolOf(root), "stale.example.test")
}
