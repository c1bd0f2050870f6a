// Package exec drives any appliance that a command can drive. A Target
// runs a deploy command with the hook variables of lego v5 (LEGO_HOOK_*),
// lego v4 (LEGO_CERT_*), certbot (RENEWED_LINEAGE, RENEWED_DOMAINS) and
// acme.sh (CERT_PATH, ...), so existing scripts run unchanged (through
// /bin/sh -c in their own process group, bounded by a timeout that stops
// the whole group). The challenge.exec hook pair, which any target may
// use, is package deploy's.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
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
