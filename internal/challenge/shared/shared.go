// Package shared keeps challenge answers in the storage every process or
// node of one zoku installation shares, so whichever of them the CA reaches
// can answer a challenge another one presented (HTTP-01 tokens, the key
// authorizations of TLS-ALPN-01).
package shared

import (
	"context"
	"log/slog"
	"time"
)

// Store is the part of zoku's storage the solvers use; storage.Backend
// satisfies it. Load of a missing key returns an error wrapping
// fs.ErrNotExist.
type Store interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// Key prefixes of the answers of each challenge type.
const (
	HTTP01Prefix    = "challenges/http-01"
	TLSALPN01Prefix = "challenges/tls-alpn-01"
)

// Timeout bounds each storage call a solver makes on a validation's path.
const Timeout = 3 * time.Second

// Answers keeps the answers of one challenge type under a key prefix. The
// zero value (nil Store) keeps nothing and finds nothing.
type Answers struct {
	// Store is the shared storage; nil turns sharing off.
	Store Store
	// Prefix is the key prefix, e.g. "challenges/http-01".
	Prefix string
	// Logger receives storage failures; nil discards.
	Logger *slog.Logger
}

func (a *Answers) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// Put shares value under name. A failure is logged, not returned: the
// process that presented the answer can still be reached itself.
func (a *Answers) Put(ctx context.Context, name, value string) {
	if a == nil || a.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
	defer cancel()
	if err := a.Store.Store(ctx, a.Prefix+"/"+name, []byte(value)); err != nil {
		a.log().Warn("challenge answer not shared with other nodes; only this one can answer it", "prefix", a.Prefix, "error", err)
	}
}

// Get returns the value shared under name.
func (a *Answers) Get(ctx context.Context, name string) (string, bool) {
	if a == nil || a.Store == nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	v, err := a.Store.Load(ctx, a.Prefix+"/"+name)
	if err != nil {
		return "", false
	}
	return string(v), true
}

// Drop removes name if it still holds value (a late clean-up of an earlier
// attempt does not remove a newer answer).
func (a *Answers) Drop(ctx context.Context, name, value string) {
	if a == nil || a.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
	defer cancel()
	if cur, ok := a.Get(ctx, name); ok && cur != value {
		return
	}
	if err := a.Store.Delete(ctx, a.Prefix+"/"+name); err != nil {
		a.log().Warn("shared challenge answer not removed", "prefix", a.Prefix, "error", err)
	}
}
