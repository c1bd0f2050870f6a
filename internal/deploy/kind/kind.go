// Package kind is the registry of deploy target types. Each type (the
// netscaler, haproxy, nginx and exec packages, or any other) registers
// itself from its own package with one call to Register: the section of
// the configuration it reads, that section's defaults and checks, and the
// constructor of the running target. The configuration learns the schema
// half (config.RegisterTargetKind); package deploy builds targets through
// Lookup. Adding a type therefore touches its own package only, plus the
// import that links it into the program (package deploy/builtin).
package kind

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/storage"
)

// Target is what a constructor builds: deploy.Target. It may also
// implement deploy's optional interfaces (Inspector, Responder, Checker,
// Releaser).
type Target interface {
	// Deploy puts b in service and checks that it is served. When it
	// fails, the certificate that was in service before must still be.
	Deploy(ctx context.Context, b *storage.Bundle) error
}

// Verify is the target's verify section with its defaults applied; Address
// is empty when the target has none.
type Verify struct {
	Address, ServerName string
	Timeout             time.Duration
}

// Env is what a constructor gets besides its section.
type Env struct {
	// Name is the target's name (its key under targets:).
	Name string
	// Certificates are the names of each certificate the target needs,
	// normalised, the main name first.
	Certificates [][]string
	// Verify is the TLS check after a deploy.
	Verify Verify
	// Store keeps the certificates (exec writes a lineage folder there).
	Store *storage.Store
	// AccountID, AccountEmail and Server describe the ACME account, for
	// hook variables.
	AccountID, AccountEmail, Server string
	// Output receives what commands print; never nil.
	Output io.Writer
	// Logger; never nil.
	Logger *slog.Logger
}

// Kind describes one type of target whose section is the struct S (its
// yaml, toml and json tags are the section's keys; config.Duration and
// config.Secret fields are read as elsewhere in the file).
type Kind[S any] struct {
	// Name is the value of type: and the key of the section.
	Name string
	// Responder: the type answers HTTP-01 itself (its Target implements
	// deploy.Responder); challenge.responder is allowed and the default.
	Responder bool
	// Required, when set, refuses a target without the section, with this
	// hint after "<target> has no <name> section; ". Otherwise a missing
	// section is a zero S, given to Defaults.
	Required string
	// Defaults fills s's documented defaults; t is the whole target (its
	// common keys normalised), which Defaults may also fill (Verify).
	// Nil means none.
	Defaults func(t *config.Target, s *S)
	// Validate checks s after Defaults; errors made with k.Errorf name the
	// file, line and column. Nil means nothing to check.
	Validate func(k *config.TargetCheck, t *config.Target, s *S) error
	// New builds the target from a validated section; it does no network
	// I/O. Required.
	New func(env Env, s *S) (Target, error)
}

// Builder makes a running target from a configured one.
type Builder func(env Env, t *config.Target) (Target, error)

var registry = struct {
	sync.RWMutex
	m map[string]Builder
}{m: map[string]Builder{}}

// Register adds k, to the configuration and to the builders. It is meant
// for init functions and panics when the name is taken or unusable, or
// New is missing.
func Register[S any](k Kind[S]) {
	if k.New == nil {
		panic(fmt.Sprintf("deploy/kind: %q has no New", k.Name))
	}
	section := func(t *config.Target) *S {
		s, _ := t.Settings.(*S)
		return s
	}
	ck := config.TargetKind{
		Name:       k.Name,
		NewSection: func() any { return new(S) },
		Responder:  k.Responder,
		Required:   k.Required,
	}
	if k.Defaults != nil {
		ck.Defaults = func(t *config.Target) {
			if s := section(t); s != nil {
				k.Defaults(t, s)
			}
		}
	}
	if k.Validate != nil {
		ck.Validate = func(c *config.TargetCheck, t *config.Target) error {
			s := section(t)
			if s == nil {
				return c.Errorf(c.Section, "%s is missing", c.Section)
			}
			return k.Validate(c, t, s)
		}
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[k.Name]; dup {
		panic(fmt.Sprintf("deploy/kind: %q registered twice", k.Name))
	}
	config.RegisterTargetKind(ck) // panics on a bad name, before the builder is kept
	registry.m[k.Name] = func(env Env, t *config.Target) (Target, error) {
		s := section(t)
		if s == nil {
			return nil, fmt.Errorf("the %s section is missing (a config not loaded by config.Load?)", k.Name)
		}
		return k.New(env, s)
	}
}

// Lookup returns the builder of the kind named name.
func Lookup(name string) (Builder, bool) {
	registry.RLock()
	defer registry.RUnlock()
	b, ok := registry.m[name]
	return b, ok
}
