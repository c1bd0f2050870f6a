// Package nginx deploys certificates to nginx: the full chain and the key
// are written atomically, the configuration is tested (nginx -t loads the
// certificate and key, so a mismatched pair fails here), nginx is reloaded,
// and the served certificate is checked over TLS with SNI until the new
// one answers. When the test, the reload or the check fails, the previous
// files are put back (and nginx reloaded with them), so the old
// certificate stays in service.
//
// The check matters because a reload is asynchronous, and because an error
// that only the master process meets while applying the new configuration
// (a busy port, say) still exits 0: the master keeps the old configuration
// and says so only in its log.
package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
	"github.com/zoku/zoku/internal/storage"
)

// Options configure a Target.
type Options struct {
	// Name is the target's name, for log lines.
	Name string
	// CertFile (full chain) and KeyFile are where nginx reads the
	// certificate; "{name}" becomes the certificate's file-safe name.
	CertFile, KeyFile string
	// TestCommand checks the configuration ([nginx -t -q]).
	TestCommand []string
	// ReloadCommand reloads ([nginx -s reload]); when empty, PIDFile's
	// process gets SIGHUP.
	ReloadCommand []string
	// PIDFile holds the master's pid (/run/nginx.pid on Debian); after a
	// reload, zoku waits until the master's old workers stop taking
	// connections. Unreadable, only the TLS check runs.
	PIDFile string
	// Timeout bounds each command; zero means 60 s.
	Timeout time.Duration
	// VerifyAddress is the TLS listener to check (required), with SNI
	// VerifyServerName (default: the certificate's main name), for at
	// most VerifyTimeout (zero: 30 s).
	VerifyAddress, VerifyServerName string
	VerifyTimeout                   time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Target is one nginx.
type Target struct {
	opts Options
	log  *slog.Logger
}

// New checks opts; it does no I/O.
func New(opts Options) (*Target, error) {
	switch {
	case opts.CertFile == "" || opts.KeyFile == "":
		return nil, errors.New("nginx: certFile and keyFile are required")
	case len(opts.TestCommand) == 0:
		return nil, errors.New("nginx: testCommand is required")
	case len(opts.ReloadCommand) == 0 && opts.PIDFile == "":
		return nil, errors.New("nginx: reloadCommand or pidFile is required")
	case opts.VerifyAddress == "":
		return nil, errors.New("nginx: verify.address is required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Target{opts: opts, log: opts.Logger.With("component", "deploy", "target", opts.Name)}, nil
}

// Paths returns the certificate and key file of the certificate id.
func (t *Target) Paths(id string) (cert, key string) {
	n := storage.SanitizedName(id)
	return strings.ReplaceAll(t.opts.CertFile, "{name}", n), strings.ReplaceAll(t.opts.KeyFile, "{name}", n)
}

func (t *Target) sni(domains []string) string {
	if t.opts.VerifyServerName != "" {
		return t.opts.VerifyServerName
	}
	return probe.ServerName(domains)
}

// Serving returns the serial nginx serves for the certificate called name.
func (t *Target) Serving(ctx context.Context, name string) (*big.Int, error) {
	sni := t.sni([]string{name})
	leaf, err := probe.Leaf(ctx, t.opts.VerifyAddress, sni)
	if err != nil {
		return nil, fmt.Errorf("nginx: TLS check of %s (SNI %q): %w; is nginx running?", t.opts.VerifyAddress, sni, err)
	}
	return leaf.SerialNumber, nil
}

// Check runs the test command.
func (t *Target) Check(ctx context.Context) error {
	return t.run(ctx, t.opts.TestCommand)
}

// Deploy writes, tests, reloads and checks; see the package doc.
func (t *Target) Deploy(ctx context.Context, b *storage.Bundle) error {
	p, err := certfile.Split(b)
	if err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	certPath, keyPath := t.Paths(b.Meta.ID)
	cb, err := certfile.Save(certPath)
	if err != nil {
		return fmt.Errorf("nginx: read %s: %w", certPath, err)
	}
	kb, err := certfile.Save(keyPath)
	if err != nil {
		return fmt.Errorf("nginx: read %s: %w", keyPath, err)
	}
	restore := func() error {
		return errors.Join(cb.Restore(), kb.Restore())
	}
	// The key first: nginx never reads a new chain with an old key that
	// a concurrent reload could pick up (it would fail its own test).
	if err := certfile.WriteAtomic(keyPath, p.KeyPEM, 0o600); err != nil {
		_ = restore()
		return fmt.Errorf("nginx: write %s: %w", keyPath, err)
	}
	if err := certfile.WriteAtomic(certPath, p.FullchainPEM, 0o644); err != nil {
		_ = restore()
		return fmt.Errorf("nginx: write %s: %w", certPath, err)
	}
	if err := t.run(ctx, t.opts.TestCommand); err != nil {
		return t.fail(ctx, restore, false, fmt.Errorf("the new files fail the configuration test: %w", err))
	}
	master := t.masterPID()
	old := children(master)
	if err := t.reload(ctx); err != nil {
		return t.fail(ctx, restore, false, err)
	}
	spec := probe.Spec{Address: t.opts.VerifyAddress, ServerName: t.sni(b.Meta.Domains), Timeout: t.verifyTimeout()}
	if master > 0 {
		if err := waitRetired(ctx, old, spec.Timeout); err != nil {
			return t.fail(ctx, restore, true, fmt.Errorf("reloaded, but %w", err))
		}
	} else {
		t.log.Debug("nginx's pid file is unreadable; checking over TLS only", "pid_file", t.opts.PIDFile)
	}
	if err := probe.Wait(ctx, spec, p.Leaf); err != nil {
		return t.fail(ctx, restore, true, fmt.Errorf("reloaded, but %w", err))
	}
	t.log.Info("certificate in service", "cert_name", b.Meta.ID, "file", certPath, "serial", certfile.SerialHex(p.Leaf.SerialNumber))
	return nil
}

// fail puts the previous files back (and, after a reload, reloads again
// so nginx serves them) and returns cause.
func (t *Target) fail(ctx context.Context, restore func() error, reloaded bool, cause error) error {
	ctx = context.WithoutCancel(ctx)
	if err := restore(); err != nil {
		t.log.Error("could not put the previous files back", "error", err)
		return fmt.Errorf("nginx: %w; restoring the previous files failed too: %w", cause, err)
	}
	if reloaded {
		if err := t.run(ctx, t.opts.TestCommand); err == nil {
			old := children(t.masterPID())
			if err := t.reload(ctx); err != nil {
				t.log.Error("reload with the previous files failed", "error", err)
			} else if err := waitRetired(ctx, old, t.verifyTimeout()); err != nil {
				t.log.Error("reload with the previous files", "error", err)
			}
		}
	}
	return fmt.Errorf("nginx: %w; the previous files are back", cause)
}

func (t *Target) verifyTimeout() time.Duration {
	if t.opts.VerifyTimeout > 0 {
		return t.opts.VerifyTimeout
	}
	return 30 * time.Second
}

func (t *Target) reload(ctx context.Context) error {
	if len(t.opts.ReloadCommand) > 0 {
		if err := t.run(ctx, t.opts.ReloadCommand); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		return nil
	}
	b, err := os.ReadFile(t.opts.PIDFile)
	if err != nil {
		return fmt.Errorf("reload: read the pid file: %w; is nginx running?", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("reload: pid file %s holds no process id", t.opts.PIDFile)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload: signal nginx (pid %d): %w", pid, err)
	}
	return nil
}

// run runs argv (no shell) with the timeout; a failure carries the last
// lines the command printed.
func (t *Target) run(ctx context.Context, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s timed out after %s", strings.Join(argv, " "), t.opts.Timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, lastLines(out.String()))
	}
	return nil
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 2 {
		lines = lines[len(lines)-2:]
	}
	return strings.Join(lines, " / ")
}
