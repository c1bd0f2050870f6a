// Package haproxy deploys certificates to HAProxy without a reload: the
// PEM (chain and key) is written atomically to disk, so a later reload or
// restart loads the same one, then swapped in memory through the Runtime
// API (set ssl cert / commit ssl cert, and for a new name new ssl cert and
// add ssl crt-list).
//
// HAProxy 2.6 (Debian bookworm) has a bug in that API: while a transaction
// for one certificate is open, "set ssl cert" for another answers
// "Transaction updated for certificate <first>" and puts the new PEM into
// the first one's transaction (fixed upstream in 3.1-dev, commit
// 984d2cfb6). The defences here: an open transaction of anyone else is
// aborted first, the reply must name our certificate, one deploy at a time
// (a lock file between processes), and the serial HAProxy reports after
// the commit must be the new one. Anything wrong puts the old certificate
// back, in memory and on disk.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
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
	// Socket is the admin socket: an absolute path or host:port.
	Socket string
	// MasterCLI prefixes every command with "@1 ".
	MasterCLI bool
	// CrtDir holds the <name>.pem files; HAProxy must load it with
	// "crt <CrtDir>/" (or a crt-list naming files in it).
	CrtDir string
	// CrtList is the crt-list (file, or the directory) a new certificate
	// is added to; empty means CrtDir.
	CrtList string
	// LockFile serialises deploys between processes; empty means
	// <CrtDir>/.zoku.lock.
	LockFile string
	// VerifyAddress, when set, is checked over TLS after the commit (SNI
	// VerifyServerName, default the certificate's main name).
	VerifyAddress, VerifyServerName string
	VerifyTimeout                   time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Target is one HAProxy.
type Target struct {
	opts Options
	rt   *runtime
	log  *slog.Logger
}

// New checks opts; it does no I/O.
func New(opts Options) (*Target, error) {
	if opts.Socket == "" || !filepath.IsAbs(opts.CrtDir) {
		return nil, errors.New("haproxy: socket and an absolute crtDir are required")
	}
	if opts.CrtList == "" {
		opts.CrtList = opts.CrtDir
	}
	if opts.LockFile == "" {
		opts.LockFile = filepath.Join(opts.CrtDir, ".zoku.lock")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Target{opts: opts, rt: newRuntime(opts.Socket, opts.MasterCLI), log: opts.Logger.With("component", "deploy", "target", opts.Name)}, nil
}

// CertPath is the file (and HAProxy's name) of the certificate called id.
func (t *Target) CertPath(id string) string {
	return filepath.Join(t.opts.CrtDir, storage.SanitizedName(id)+".pem")
}

// Check makes sure the admin socket answers with admin level.
func (t *Target) Check(ctx context.Context) error {
	out, err := t.rt.cmd(ctx, "show ssl cert", nil)
	if err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	if !strings.Contains(out, "# filename") {
		return fmt.Errorf("haproxy: show ssl cert: %s; the socket needs 'level admin'", firstLines(out))
	}
	return nil
}

// Serving returns the serial HAProxy has loaded for the certificate
// called name, or nil when HAProxy does not know it.
func (t *Target) Serving(ctx context.Context, name string) (*big.Int, error) {
	out, err := t.rt.cmd(ctx, "show ssl cert "+t.CertPath(name), nil)
	if err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	s := field(out, "Serial")
	if s == "" {
		return nil, nil
	}
	n, ok := certfile.ParseSerial(s)
	if !ok {
		return nil, fmt.Errorf("haproxy: show ssl cert: unreadable serial %q", s)
	}
	return n, nil
}

// Deploy writes b's PEM and swaps it in; see the package doc.
func (t *Target) Deploy(ctx context.Context, b *storage.Bundle) error {
	p, err := certfile.Split(b)
	if err != nil {
		return fmt.Errorf("haproxy: %w", err)
	}
	pem := append(append([]byte(nil), p.FullchainPEM...), p.KeyPEM...)
	name := t.CertPath(b.Meta.ID)
	unlock, err := t.lock()
	if err != nil {
		return err
	}
	defer unlock()
	backup, err := certfile.Save(name)
	if err != nil {
		return fmt.Errorf("haproxy: read the current %s: %w", name, err)
	}
	if err := certfile.WriteAtomic(name, pem, 0o600); err != nil {
		return fmt.Errorf("haproxy: write %s: %w", name, err)
	}
	sni := t.opts.VerifyServerName
	if sni == "" {
		sni = probe.ServerName(b.Meta.Domains)
	}
	if err := t.hotUpdate(ctx, name, pem, backup.Data(), p, sni); err != nil {
		if rerr := backup.Restore(); rerr != nil {
			t.log.Error("could not put the previous file back", "file", name, "error", rerr)
		}
		return fmt.Errorf("haproxy: %w", err)
	}
	t.log.Info("certificate in service", "cert_name", b.Meta.ID, "file", name, "serial", certfile.SerialHex(p.Leaf.SerialNumber))
	return nil
}

// lock takes the lock file (no waiting: another deploy is running).
func (t *Target) lock() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(t.opts.LockFile), 0o700); err != nil {
		return nil, fmt.Errorf("haproxy: lock file: %w", err)
	}
	f, err := os.OpenFile(t.opts.LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("haproxy: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("haproxy: another deploy to this HAProxy is running (lock %s held); try again later", t.opts.LockFile)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

func (t *Target) hotUpdate(ctx context.Context, name string, pem, oldPEM []byte, p *certfile.Parts, sni string) error {
	out, err := t.rt.cmd(ctx, "show ssl cert", nil)
	if err != nil {
		return err
	}
	list := parseCertList(out)
	for _, tx := range list.transactions {
		// Someone's half-done transaction would swallow ours (2.6 bug).
		t.log.Warn("aborting an open certificate transaction of another client", "cert", tx)
		if _, err := t.rt.cmd(ctx, "abort ssl cert "+tx, nil); err != nil {
			return err
		}
	}
	isNew := !list.names[name]
	if isNew {
		if err := t.create(ctx, name); err != nil {
			return err
		}
	}
	if err := t.setCommit(ctx, name, pem); err != nil {
		if isNew {
			t.forget(ctx, name, false)
		}
		return err
	}
	if isNew {
		crtList := strings.TrimSuffix(t.opts.CrtList, "/")
		out, err := t.rt.cmd(ctx, "add ssl crt-list "+crtList+" "+name, nil)
		if err == nil && !strings.Contains(out, "Success!") {
			err = fmt.Errorf("add ssl crt-list %s: %s", crtList, firstLines(out))
		}
		if err != nil {
			t.forget(ctx, name, false)
			return err
		}
	}
	verr := t.verify(ctx, name, p, sni)
	if verr == nil {
		return nil
	}
	if isNew {
		t.forget(ctx, name, true)
	} else if len(oldPEM) > 0 {
		if err := t.setCommit(ctx, name, oldPEM); err != nil {
			t.log.Error("could not put the previous certificate back in memory", "file", name, "error", err)
		} else {
			t.log.Info("the previous certificate is back in service", "file", name)
		}
	}
	return verr
}

// create makes an empty certificate store for a new name, after checking
// that the crt-list it will join is loaded.
func (t *Target) create(ctx context.Context, name string) error {
	crtList := strings.TrimSuffix(t.opts.CrtList, "/")
	out, err := t.rt.cmd(ctx, "show ssl crt-list", nil)
	if err != nil {
		return err
	}
	found := false
	for l := range strings.SplitSeq(out, "\n") {
		if strings.TrimSuffix(strings.TrimSpace(l), "/") == crtList {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%s is not a crt-list HAProxy loaded, so a new certificate cannot be added; load it on the bind line (crt %s/ or crt-list FILE) and reload HAProxy once", crtList, crtList)
	}
	out, err = t.rt.cmd(ctx, "new ssl cert "+name, nil)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "New empty certificate store '"+name+"'") {
		return fmt.Errorf("new ssl cert %s: %s", name, firstLines(out))
	}
	return nil
}

// setCommit stages pem for name and commits it; any reply that does not
// name our certificate aborts.
func (t *Target) setCommit(ctx context.Context, name string, pem []byte) error {
	out, err := t.rt.cmd(ctx, "set ssl cert "+name, pem)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Transaction created for certificate "+name+"!") && !strings.Contains(out, "Transaction updated for certificate "+name+"!") {
		for l := range strings.SplitSeq(out, "\n") {
			if _, other, ok := strings.Cut(l, " for certificate "); ok {
				other = strings.TrimSuffix(strings.TrimSpace(other), "!")
				if other != name {
					_, _ = t.rt.cmd(ctx, "abort ssl cert "+other, nil)
				}
			}
		}
		_, _ = t.rt.cmd(ctx, "abort ssl cert "+name, nil)
		return fmt.Errorf("set ssl cert %s: unexpected reply %q (a transaction of another certificate was open?); aborted", name, firstLines(out))
	}
	out, err = t.rt.cmd(ctx, "commit ssl cert "+name, nil)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Success!") {
		_, _ = t.rt.cmd(ctx, "abort ssl cert "+name, nil)
		return fmt.Errorf("commit ssl cert %s: %s", name, firstLines(out))
	}
	return nil
}

// forget removes a certificate this deploy added (from the crt-list when
// it got there).
func (t *Target) forget(ctx context.Context, name string, listed bool) {
	if listed {
		_, _ = t.rt.cmd(ctx, "del ssl crt-list "+strings.TrimSuffix(t.opts.CrtList, "/")+" "+name, nil)
	}
	_, _ = t.rt.cmd(ctx, "abort ssl cert "+name, nil)
	_, _ = t.rt.cmd(ctx, "del ssl cert "+name, nil)
}

// verify compares the serial HAProxy loaded with ours, then, if set, what
// the frontend serves.
func (t *Target) verify(ctx context.Context, name string, p *certfile.Parts, sni string) error {
	out, err := t.rt.cmd(ctx, "show ssl cert "+name, nil)
	if err != nil {
		return err
	}
	got, ok := certfile.ParseSerial(field(out, "Serial"))
	if !ok || got.Cmp(p.Leaf.SerialNumber) != 0 {
		return fmt.Errorf("after the commit HAProxy reports serial %q for %s, not %s", field(out, "Serial"), name, certfile.SerialHex(p.Leaf.SerialNumber))
	}
	if t.opts.VerifyAddress == "" {
		return nil
	}
	return probe.Wait(ctx, probe.Spec{Address: t.opts.VerifyAddress, ServerName: sni, Timeout: t.opts.VerifyTimeout}, p.Leaf)
}
