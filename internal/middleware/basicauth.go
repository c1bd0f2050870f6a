package middleware

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"runtime"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/middleware/htpasswd"
	"github.com/zoku/zoku/internal/proxy"
)

// basicAuth checks the Basic credentials of every request against an
// htpasswd file of bcrypt hashes (read at Apply).
//
// A bcrypt check costs milliseconds of CPU by design, so: a password that
// passed is remembered (as a SHA-256 of user, password and hash, never
// the password) so that the next requests of a browser cost a hash; at
// most GOMAXPROCS checks run at once; and an unknown user is checked
// against a dummy hash of the same cost, so that answers take as long
// whether the user exists or not.
type basicAuth struct {
	users     htpasswd.Users
	dummy     []byte
	challenge []string // WWW-Authenticate
	forward   bool
	userHdr   string
	sem       chan struct{}

	mu     sync.Mutex
	passed map[[32]byte]struct{} // guarded by mu
}

// maxPassed bounds the remembered credentials; when full, all are
// forgotten (the next request of each client pays one bcrypt check).
const maxPassed = 4096

func newBasicAuth(c *config.BasicAuth, _ Env) (*basicAuth, error) {
	users, err := htpasswd.ReadFile(c.UsersFile)
	if err != nil {
		return nil, err
	}
	cost := bcrypt.MinCost
	for _, h := range users {
		if n, err := bcrypt.Cost(h); err == nil && n > cost {
			cost = n
		}
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	dummy, err := bcrypt.GenerateFromPassword(secret, cost)
	if err != nil {
		return nil, err
	}
	m := &basicAuth{
		users: users, dummy: dummy, forward: c.ForwardHeader,
		challenge: []string{`Basic realm="` + c.Realm + `", charset="UTF-8"`},
		sem:       make(chan struct{}, runtime.GOMAXPROCS(0)),
		passed:    map[[32]byte]struct{}{},
	}
	if c.UserHeader != "" {
		m.userHdr = http.CanonicalHeaderKey(c.UserHeader)
	}
	return m, nil
}

func (m *basicAuth) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		user, pass, ok := r.BasicAuth()
		if !ok || !m.check(r.Context(), user, pass) {
			w.Header()["Www-Authenticate"] = m.challenge
			plainError(w, "401 unauthorized", http.StatusUnauthorized)
			return
		}
		if !m.forward {
			delete(r.Header, "Authorization")
		}
		if m.userHdr != "" {
			r.Header[m.userHdr] = []string{user}
		}
		next(w, r, st)
	}
}

// check reports whether pass is user's password.
func (m *basicAuth) check(ctx context.Context, user, pass string) bool {
	hash, known := m.users[user]
	if !known {
		hash = m.dummy
	}
	key := passKey(user, pass, hash)
	if known {
		m.mu.Lock()
		_, ok := m.passed[key]
		m.mu.Unlock()
		if ok {
			return true
		}
	}
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	<-m.sem
	if err != nil || !known {
		return false
	}
	m.mu.Lock()
	if len(m.passed) >= maxPassed {
		clear(m.passed)
	}
	m.passed[key] = struct{}{}
	m.mu.Unlock()
	return true
}

// passKey is the SHA-256 of user, password and hash, with lengths so that
// no two triples run together.
func passKey(user, pass string, hash []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(user), []byte(pass), hash} {
		l := len(part)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(part)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
