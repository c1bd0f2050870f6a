// Package exec drives any appliance that a command can drive. A Target
// runs a deploy command with the hook variables of lego v5 (LEGO_HOOK_*),
// lego v4 (LEGO_CERT_*), certbot (RENEWED_LINEAGE, RENEWED_DOMAINS) and
// acme.sh (CERT_PATH, ...), so existing scripts run unchanged. A Challenge
// runs a present/cleanup pair with certbot's manual-hook variables
// (CERTBOT_DOMAIN, CERTBOT_VALIDATION, CERTBOT_TOKEN, ...) to put HTTP-01
// answers on the appliance.
//
// Commands run through /bin/sh -c in their own process group, bounded by a
// timeout that stops the whole group.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/deploy/internal/order"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
	"github.com/zoku/zoku/internal/hook"
	"github.com/zoku/zoku/internal/storage"
)

// Options configure a Target.
type Options struct {
	// Name is the target's name, for log lines.
	Name string
	// Command is the deploy command (a shell command line).
	Command string
	// Timeout bounds it; zero means hook.DefaultTimeout.
	Timeout time.Duration
	// Store is where the certificate is kept; the certbot-style lineage
	// folder is written under its root.
	Store *storage.Store
	// AccountID, AccountEmail and Server describe the ACME account for
	// the LEGO_HOOK_ACCOUNT_* variables.
	AccountID, AccountEmail, Server string
	// VerifyAddress, when set, is checked over TLS after the command.
	VerifyAddress, VerifyServerName string
	VerifyTimeout                   time.Duration
	// Output receives the command's output; nil discards.
	Output io.Writer
	// Logger; nil discards.
	Logger *slog.Logger
}

// Target runs a command per new certificate.
type Target struct {
	opts Options
	log  *slog.Logger
}

// New checks opts; it does no I/O.
func New(opts Options) (*Target, error) {
	if strings.TrimSpace(opts.Command) == "" || opts.Store == nil {
		return nil, errors.New("exec: a command and the store are required")
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Target{opts: opts, log: opts.Logger.With("component", "deploy", "target", opts.Name)}, nil
}

// Deploy writes the lineage folder and runs the command; with a verify
// address, it then checks the served certificate. A command cannot be
// undone, so a failed check is reported, not rolled back.
func (t *Target) Deploy(ctx context.Context, b *storage.Bundle) error {
	lineage, err := hook.WriteLineage(t.opts.Store.Root(), b)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	ev := hook.Event{
		Name: b.Meta.ID, Domains: b.Meta.Domains, KeyType: string(b.Meta.KeyType),
		Paths: t.opts.Store.CertPaths(b.Meta.ID), Lineage: lineage,
		AccountID: t.opts.AccountID, AccountEmail: t.opts.AccountEmail, Server: t.opts.Server,
	}
	if err := hook.Run(ctx, t.opts.Command, ev, t.opts.Timeout, t.opts.Output, t.opts.Output); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if t.opts.VerifyAddress == "" {
		return nil
	}
	p, err := certfile.Split(b)
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	sni := t.opts.VerifyServerName
	if sni == "" {
		sni = probe.ServerName(b.Meta.Domains)
	}
	if err := probe.Wait(ctx, probe.Spec{Address: t.opts.VerifyAddress, ServerName: sni, Timeout: t.opts.VerifyTimeout}, p.Leaf); err != nil {
		return fmt.Errorf("exec: the command succeeded, but %w", err)
	}
	return nil
}

// Challenge answers HTTP-01 with a certbot-style manual hook pair.
type Challenge struct {
	// PresentCommand and CleanupCommand are shell command lines.
	PresentCommand, CleanupCommand string
	// Timeout bounds each; zero means hook.DefaultTimeout.
	Timeout time.Duration
	// Output receives their standard error; nil discards.
	Output io.Writer

	mu      sync.Mutex
	outputs map[string]string // guarded by mu; present's stdout by token
}

var _ challenge.Provider = (*Challenge)(nil)

// Present runs the present command with CERTBOT_DOMAIN, CERTBOT_IDENTIFIER,
// CERTBOT_VALIDATION (the key authorization), CERTBOT_TOKEN,
// CERTBOT_REMAINING_CHALLENGES and CERTBOT_ALL_DOMAINS.
func (c *Challenge) Present(ctx context.Context, domain, token, keyAuth string) error {
	out, err := c.run(ctx, c.PresentCommand, certbotEnv(ctx, domain, token, keyAuth, ""))
	if err != nil {
		return fmt.Errorf("exec: challenge present hook for %s: %w", domain, err)
	}
	c.mu.Lock()
	if c.outputs == nil {
		c.outputs = map[string]string{}
	}
	c.outputs[token] = out
	c.mu.Unlock()
	return nil
}

// CleanUp runs the cleanup command with the same variables and
// CERTBOT_AUTH_OUTPUT (what present printed).
func (c *Challenge) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	c.mu.Lock()
	out := c.outputs[token]
	delete(c.outputs, token)
	c.mu.Unlock()
	if _, err := c.run(ctx, c.CleanupCommand, certbotEnv(ctx, domain, token, keyAuth, out)); err != nil {
		return fmt.Errorf("exec: challenge cleanup hook for %s: %w", domain, err)
	}
	return nil
}

// certbotEnv builds certbot's manual-hook variables. REMAINING_CHALLENGES
// counts the order's names after this one (lego validates HTTP-01 one
// name after another).
func certbotEnv(ctx context.Context, domain, token, keyAuth, authOutput string) []string {
	all := order.Domains(ctx)
	if len(all) == 0 {
		all = []string{domain}
	}
	remaining := 0
	for i, d := range all {
		if d == domain {
			remaining = len(all) - i - 1
		}
	}
	env := []string{
		"CERTBOT_DOMAIN=" + domain, "CERTBOT_IDENTIFIER=" + domain,
		"CERTBOT_VALIDATION=" + keyAuth, "CERTBOT_TOKEN=" + token,
		"CERTBOT_REMAINING_CHALLENGES=" + strconv.Itoa(remaining),
		"CERTBOT_ALL_DOMAINS=" + strings.Join(all, ","), "CERTBOT_ALL_IDENTIFIERS=" + strings.Join(all, ","),
	}
	if authOutput != "" {
		env = append(env, "CERTBOT_AUTH_OUTPUT="+authOutput)
	}
	return env
}

// run runs command through /bin/sh -c with env added; it returns what the
// command printed on stdout (64 KiB at most). The error names no variable.
func (c *Challenge) run(ctx context.Context, command string, env []string) (string, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = hook.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: 64 << 10}
	cmd.Stderr = c.Output
	if cmd.Stderr == nil {
		cmd.Stderr = io.Discard
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("timed out after %s", timeout)
	}
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		return "", fmt.Errorf("exited with status %d", ee.ExitCode())
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}

// limitWriter keeps the first n bytes and discards the rest.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
