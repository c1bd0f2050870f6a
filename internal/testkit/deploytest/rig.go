package deploytest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	// A runner built here knows every target type zoku ships, as zoku's does.
	_ "github.com/zoku/zoku/internal/deploy/builtin"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
)

// ListenTCP opens a TCP listener on a free loopback port; it fails the
// test when it cannot.
func ListenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// FileOf duplicates a TCP or unix listener's socket as a file, for
// handing it to a child process through exec.Cmd.ExtraFiles.
func FileOf(t testing.TB, ln net.Listener) *os.File {
	t.Helper()
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Port is the port number of a host:port address; it fails the test when
// addr has none.
func Port(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Stop ends a started child process: SIGTERM, then SIGKILL after 10 s.
// done must be closed once cmd.Wait has returned; Stop waits for it. A
// process that never started, or has already exited, is left alone.
func Stop(cmd *exec.Cmd, done <-chan struct{}) {
	if cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Runner builds a deploy.Runner for cfg that orders from ca through a
// certificate manager (the runner orders what is due itself, as `zoku
// deploy` does), keeps its state in store and logs at debug level to logs;
// tune may change the options first. The runner is closed when the test
// ends; a build error fails the test.
func Runner(t testing.TB, cfg *config.Config, ca *embedca.CA, store *storage.Store, logs io.Writer, tune ...func(*deploy.Options)) *deploy.Runner {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := certmgr.ACMEIssuerConfig{
		Client: acmeclient.Config{Server: ca.DirectoryURL(), HTTPClient: ca.HTTPClient(), Logger: logger},
		Store:  store, Register: acmeclient.RegisterOptions{AcceptTOS: true}, Reregister: true,
	}
	mgr := certmgr.New(certmgr.Options{Store: store, Cache: certmgr.NewCache(), Logger: logger})
	newIssuer := func(_ string, s acmeclient.Solvers) certmgr.Issuer {
		c := base
		c.Client.Solvers = s
		return certmgr.NewACMEIssuer(c)
	}
	o := deploy.Options{Config: cfg, Logger: logger, Store: store, Engine: mgr, NewIssuer: newIssuer, OrderDue: true}
	for _, f := range tune {
		f(&o)
	}
	run, err := deploy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Close() })
	return run
}

// RunOnce runs every target of a one-target runner, with a two-minute
// deadline, and returns the single result and the run's error. It fails
// the test when there is not exactly one result.
func RunOnce(t testing.TB, run *deploy.Runner, o deploy.RunOptions) (deploy.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run.RunOnce(ctx, o)
	if len(res) != 1 {
		t.Fatalf("got %d results, want 1 (err %v)", len(res), err)
	}
	return res[0], err
}

// MustRun is RunOnce that fails the test unless the run succeeds with the
// action want.
func MustRun(t testing.TB, run *deploy.Runner, o deploy.RunOptions, want deploy.Action) deploy.Result {
	t.Helper()
	res, err := RunOnce(t, run, o)
	if err != nil || res.Action != want {
		t.Fatalf("run: got %q (err %v), want %q", res.Action, err, want)
	}
	return res
}
