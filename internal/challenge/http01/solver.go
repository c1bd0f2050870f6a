// Package http01 answers ACME HTTP-01 challenges (RFC 8555 §8.3).
//
// A Solver keeps key authorizations in memory and serves them at
// /.well-known/acme-challenge/<token>. It is a lego challenge.Provider, so the
// ACME client calls Present before asking the CA to validate and CleanUp after.
// The same Solver can be mounted on any number of listeners through Handler
// (the edge router does this on its own :80 entry point), or bound once, up
// front, with Listen (the CLI does this, so a busy port is reported before any
// order is placed). Unlike lego's built-in server, nothing is bound or closed
// in Present and CleanUp.
package http01

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/challenge/shared"
)

// PathPrefix is the URL path under which HTTP-01 tokens are served.
const PathPrefix = "/.well-known/acme-challenge/"

var _ challenge.Provider = (*Solver)(nil)

// Solver stores HTTP-01 key authorizations by token and serves them.
// It is safe for concurrent use; its zero value is ready to use and logs nothing.
type Solver struct {
	// Logger receives errors of the server started by Listen (for example a
	// failed accept or an oversized request). Set it before calling Listen.
	// NewSolver sets a logger that discards everything; nil does the same.
	Logger *slog.Logger
	// Shared, when set, also keeps every token in the storage that other
	// processes or nodes share, so whichever the CA reaches answers it.
	// Set it before the first Present.
	Shared *shared.Answers

	mu       sync.RWMutex      // guards keyAuths
	keyAuths map[string]string // token -> key authorization
}

// NewSolver returns an empty Solver whose Logger discards.
func NewSolver() *Solver {
	return &Solver{Logger: slog.New(slog.DiscardHandler)}
}

// Present makes keyAuth available at PathPrefix+token. domain is not used:
// tokens are unique per challenge and carry at least 128 bits of entropy
// (RFC 8555 §8.1), so the Host header is not checked, which also keeps the
// answer working behind proxies that rewrite Host.
//
// It fails if token is not in the base64url alphabet or if keyAuth is not
// "<token>.<thumbprint>"; neither value appears in the error.
func (s *Solver) Present(ctx context.Context, _, token, keyAuth string) error {
	if !validToken(token) {
		return errors.New("http-01: token is empty or not in the base64url alphabet; refusing to serve it")
	}
	if !strings.HasPrefix(keyAuth, token+".") || len(keyAuth) == len(token)+1 {
		return errors.New("http-01: key authorization is not of the form <token>.<account key thumbprint>")
	}

	s.mu.Lock()
	if s.keyAuths == nil {
		s.keyAuths = make(map[string]string)
	}
	s.keyAuths[token] = keyAuth
	s.mu.Unlock()
	s.Shared.Put(ctx, token, keyAuth)
	return nil
}

// CleanUp stops serving token. It only removes the entry if it still holds
// keyAuth, so a late CleanUp of an earlier attempt cannot remove a newer one.
// Cleaning up an unknown token is not an error.
func (s *Solver) CleanUp(ctx context.Context, _, token, keyAuth string) error {
	s.mu.Lock()
	if s.keyAuths[token] == keyAuth {
		delete(s.keyAuths, token)
	}
	s.mu.Unlock()
	s.Shared.Drop(ctx, token, keyAuth)
	return nil
}

// lookup returns the key authorization for token: presented here, or by
// another process or node on the shared storage.
func (s *Solver) lookup(ctx context.Context, token string) (string, bool) {
	s.mu.RLock()
	keyAuth, ok := s.keyAuths[token]
	s.mu.RUnlock()
	if ok {
		return keyAuth, true
	}
	keyAuth, ok = s.Shared.Get(ctx, token)
	return keyAuth, ok && strings.HasPrefix(keyAuth, token+".")
}

// Handler returns an http.Handler that answers GET and HEAD requests for
// PathPrefix+<token> with the stored key authorization as text/plain.
//
// Under PathPrefix: a token that is unknown or not base64url gets 404, and
// any method other than GET or HEAD gets 405. Every other path goes to next;
// a nil next answers 404.
func (s *Solver) Handler(next http.Handler) http.Handler {
	if next == nil {
		next = http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !validToken(token) {
			http.NotFound(w, r)
			return
		}
		keyAuth, ok := s.lookup(r.Context(), token)
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", strconv.Itoa(len(keyAuth)))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, keyAuth) // a failed write means the client went away
		}
	})
}

// validToken reports whether token is non-empty and uses only the base64url
// alphabet without padding, as RFC 8555 §8.3 requires of challenge tokens.
func validToken(token string) bool {
	if token == "" {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// logger returns the Solver's logger, or a discarding one when it is nil.
func (s *Solver) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}
