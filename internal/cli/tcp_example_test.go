package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// TestTCPPassthroughExample runs examples/tcp-passthrough.yaml as it is
// (only its ports swapped for free ones and its storage put in a test
// folder) with the embedded CA, waits for its certificates, and runs every
// command its comments give, checking what each one shows.
func TestTCPPassthroughExample(t *testing.T) {
	need.Binary(t, "curl", "apt-get install -y curl")
	need.Binary(t, "openssl", "apt-get install -y openssl")
	src, err := os.ReadFile("../../examples/tcp-passthrough.yaml")
	must(t, err)
	dir := t.TempDir()
	storage := filepath.Join(dir, ".zoku")
	var pairs []string
	for _, port := range []string{"8080", "8443", "9443", "8022"} {
		if !bytes.Contains(src, []byte("127.0.0.1:"+port)) {
			t.Fatalf("examples/tcp-passthrough.yaml no longer uses port %s; update this test", port)
		}
		free := fmt.Sprint(testenv.FreePort(t))
		pairs = append(pairs, "127.0.0.1:"+port, "127.0.0.1:"+free, ":"+port+":127.0.0.1", ":"+free+":127.0.0.1", ".localhost:"+port+"/", ".localhost:"+free+"/")
	}
	pairs = append(pairs, "storage: ./.zoku", "storage: "+storage, ".zoku/", storage+"/")
	text := strings.NewReplacer(pairs...).Replace(string(src))
	cfgPath := filepath.Join(dir, "tcp-passthrough.yaml")
	must(t, os.WriteFile(cfgPath, []byte(text+"\nadmin:\n  disabled: true\n"), 0o600))
	cfg, err := config.Load(cfgPath, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}

	var logs lockedBuffer
	events := make(chan certmgr.Event, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}
	srv, err := startServer(ctx, env, cfgPath, cfg, slog.New(slog.NewTextHandler(&logs, nil)), engineOptions{onEvent: func(e certmgr.Event) { events <- e }})
	if err != nil {
		t.Fatalf("zoku run: %v", err)
	}
	defer srv.close()
	want := map[string]bool{"app.localhost": true, "passthrough.localhost": true, "terminated.localhost": true}
	deadline := time.After(time.Minute)
	for len(want) > 0 {
		select {
		case e := <-events:
			if e.Err != nil {
				t.Fatalf("certificate for %s: %v", e.Name, e.Err)
			}
			delete(want, e.Name)
		case <-deadline:
			t.Fatalf("no certificates for %v within a minute; log:\n%s", want, logs.String())
		}
	}

	// The commands of the example's comments, in order, and what each
	// must show.
	var cmds []string
	for _, line := range strings.Split(text, "\n") {
		if c, ok := strings.CutPrefix(line, "#   "); ok && (strings.HasPrefix(c, "curl ") || strings.HasPrefix(c, "openssl ")) {
			cmds = append(cmds, c)
		}
	}
	shows := []string{
		"Verify return code: 0 (ok)",                  // openssl: the inner entry point's certificate
		"TLS passed through to the inner entry point", // curl through the passthrough route
		"TLS terminated by zoku, plain TCP behind",    // curl through the terminate route
		`alt-svc: h3=":`,                              // the edge's HTTP route, advertising HTTP/3
		"TLS terminated by zoku, plain TCP behind",    // the catch-all, to the web entry point
	}
	if len(cmds) != len(shows) {
		t.Fatalf("examples/tcp-passthrough.yaml gives %d commands, this test checks %d; keep them in step:\n%s", len(cmds), len(shows), strings.Join(cmds, "\n"))
	}
	for i, c := range cmds {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(cctx, "/bin/sh", "-c", c+" </dev/null")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		ccancel()
		if !strings.Contains(strings.ToLower(string(out)), strings.ToLower(shows[i])) {
			t.Errorf("%s\n(exit %v) printed:\n%s\nwant %q", c, err, out, shows[i])
		}
	}
}
