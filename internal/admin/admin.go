// Package admin is zoku's admin listener: a JSON API under /api/v1/ (bearer
// token, RFC 9457 problem documents, an OpenAPI 3.1 document at
// /api/v1/openapi.json), Prometheus /metrics from its own registry, the Go
// runtime's profiles under /debug/pprof/, and a dashboard page at / that shows every certificate's health and, for
// nodes that share one storage, the whole fleet: every certificate's state
// on every node.
//
// Guarantees:
//   - Every API call, /metrics and the profiles need the bearer token, compared in
//     constant time. The dashboard page and its assets are public; the data
//     they show comes from the API with the token.
//   - Certificate, upstream and target gauges are computed at scrape time
//     from the live manager, router and targets, so they are never stale: a
//     certificate that expired shows as expired (traefik#12126 showed green).
//   - No token appears in a log line or an error.
//
// The admin is built in two steps so its hooks (OnCertEvent, OnRequest,
// OnReload, OnDeploy, ServerErrorLog) can be handed to the engine and the
// router before they exist: New does no I/O, Start attaches the sources and
// listens. Every hook is safe on a nil *Admin (admin disabled).
package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/router"
	"github.com/zoku/zoku/internal/storage"
)

// Certificates is the certificate manager as the admin sees it;
// *certmgr.Manager is one.
type Certificates interface {
	Statuses() []certmgr.Status
	RenewNow(name string) error
	Revoke(ctx context.Context, name string, reason uint) error
}

// Routes is the running router as the admin sees it; *router.Router is one.
type Routes interface {
	Snapshot() ([]router.RouteInfo, []router.ServiceInfo)
	Config() *config.Config
}

// TCPRoutes is a router that also routes TCP; *router.Router is one. The
// admin finds it on Routes by a type assertion.
type TCPRoutes interface {
	TCPSnapshot() ([]router.TCPRouteInfo, []router.TCPServiceInfo)
}

// Targets are the load balancers zoku deploys certificates to. Targets
// lists them with their last deploy; Deploy deploys one now and returns
// when it is done.
type Targets interface {
	Targets() []TargetStatus
	Deploy(ctx context.Context, name string) error
}

var (
	_ Certificates = (*certmgr.Manager)(nil)
	_ Routes       = (*router.Router)(nil)
	_ TCPRoutes    = (*router.Router)(nil)
)

// TargetStatus is one deploy target as the API shows it (see
// certmgr.NodeTarget, its one definition).
type TargetStatus = certmgr.NodeTarget

// Sources are what the admin reports on. Any may be nil: the API then
// answers with empty lists (routes, services, targets) or 503.
type Sources struct {
	Certs   Certificates
	Routes  Routes
	Targets Targets
	// Tokens, when set and Options.TokenFile is empty, keeps a generated
	// token in the storage every node shares (key "admin.token"), so one
	// token opens every node's API.
	Tokens TokenStore
	// Fleet is every node on the shared storage (GET /api/v1/fleet).
	Fleet Fleet
}

// TokenStore is where a generated token is kept when there is no token
// file: storage.Backend is one.
type TokenStore interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
}

// tokenKey is the storage key of a generated token.
const tokenKey = "admin.token"

// Options configure an Admin. The zero value listens on 127.0.0.1:9180
// and needs Token or TokenFile.
type Options struct {
	// Address is host:port; empty means config.DefaultAdminAddress.
	Address string
	// Token is the bearer token. When empty, TokenFile is read, or created
	// with a new random token when missing.
	Token string
	// TokenFile is where a generated token is kept (<storage>/admin.token).
	TokenFile string
	// Logger for the admin's lines and certificate events; nil discards.
	Logger *slog.Logger
	// Getenv resolves ${ENV} in POST /api/v1/config/validate; nil means
	// os.Getenv.
	Getenv func(string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Admin is the admin listener and the metrics registry.
type Admin struct {
	opts    Options
	log     *slog.Logger
	certLog *slog.Logger
	metrics *metrics

	mu    sync.Mutex
	src   Sources // set by Start, read by handlers after
	token []byte  // SHA-256 of the token; set by Start
	srv   *http.Server
	ln    net.Listener
	done  chan struct{}
}

// New returns an Admin whose hooks work at once. It does no I/O; call
// Start to listen.
func New(opts Options) *Admin {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Address == "" {
		opts.Address = config.DefaultAdminAddress
	}
	a := &Admin{
		opts: opts, log: opts.Logger.With("component", "admin"),
		certLog: opts.Logger.With("component", "certificates"),
	}
	a.metrics = newMetrics(a)
	return a
}

// Start resolves the token (generating and writing one when needed),
// listens on Options.Address and serves until Close. It fails on a
// non-loopback address without an explicit token.
func (a *Admin) Start(ctx context.Context, src Sources) error {
	tok, err := a.resolveToken(ctx, src.Tokens)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.opts.Address)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("admin.address: %s is already in use; stop what holds it or change admin.address", a.opts.Address)
		}
		return fmt.Errorf("admin.address: cannot listen on %s (%w); change admin.address", a.opts.Address, err)
	}
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          a.ServerErrorLog(a.log),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	a.mu.Lock()
	a.src, a.token, a.srv, a.ln, a.done = src, hashToken(tok), srv, ln, make(chan struct{})
	a.mu.Unlock()
	go func() {
		defer close(a.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped", "error", err)
		}
	}()
	a.log.Info("admin API, /metrics and dashboard listening", "url", a.URL()+"/")
	return nil
}

// URL returns http://host:port of the running listener ("" before Start,
// and on a nil Admin: admin.disabled).
func (a *Admin) URL() string {
	if a == nil {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return "http://" + a.ln.Addr().String()
}

// Close stops the listener, lets requests in flight finish (5 s at most)
// and waits for the server goroutine. It is safe on a nil or unstarted
// Admin.
func (a *Admin) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	srv, done := a.srv, a.done
	a.srv = nil
	a.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
	}
	<-done
	if err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}

// sources returns what Start attached.
func (a *Admin) sources() Sources {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.src
}

// resolveToken returns the configured token, the one in TokenFile, or a
// new one written to TokenFile (0600). The path is logged, the token never.
func (a *Admin) resolveToken(ctx context.Context, shared TokenStore) (string, error) {
	if a.opts.Token != "" {
		return a.opts.Token, nil
	}
	if !config.IsLoopback(a.opts.Address) {
		return "", fmt.Errorf("admin: %s is reachable from other machines and no admin.token is set; set admin.token or listen on 127.0.0.1", a.opts.Address)
	}
	path := a.opts.TokenFile
	if path == "" && shared != nil {
		return a.sharedToken(ctx, shared)
	}
	if path == "" {
		return "", errors.New("admin: no admin.token and no file to keep a generated one; set admin.token")
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if tok := strings.TrimSpace(string(data)); tok != "" {
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
				a.log.Warn("admin token file is readable by other users; run chmod 600 on it", "path", path, "mode", fi.Mode().Perm().String())
			}
			a.log.Info("admin token read from file", "path", path)
			return tok, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("admin: cannot read the token file %s (%v); remove what is in its place, fix its permissions, or set admin.token", path, unwrapPathErr(err))
	}
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	if err := storage.WriteFile(path, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("admin: write generated token: %w; set admin.token or make the storage folder writable", err)
	}
	a.log.Info("admin token generated; send it as Authorization: Bearer <token>", "path", path)
	return tok, nil
}

// sharedToken reads the generated token from shared storage, or stores a
// new one there. Two nodes starting at once may each store one; both read
// it back, so the one stored last wins for both.
func (a *Admin) sharedToken(ctx context.Context, st TokenStore) (string, error) {
	if data, err := st.Load(ctx, tokenKey); err == nil {
		if tok := strings.TrimSpace(string(data)); tok != "" {
			a.log.Info("admin token read from the shared storage", "key", tokenKey)
			return tok, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("admin: read the token from storage: %w; set admin.token", err)
	}
	tok, err := newToken()
	if err != nil {
		return "", err
	}
	if err := st.Store(ctx, tokenKey, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("admin: keep the generated token in storage: %w; set admin.token", err)
	}
	data, err := st.Load(ctx, tokenKey)
	if err != nil {
		return "", fmt.Errorf("admin: read the token from storage: %w; set admin.token", err)
	}
	a.log.Info("admin token generated and kept in the shared storage; every node uses it", "key", tokenKey)
	return strings.TrimSpace(string(data)), nil
}

// newToken returns 32 random bytes, base64url without padding.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin: generate token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// MergeCertificates shows several managers as one (the router's and the
// deploy targets'): statuses of all, sorted by name; RenewNow and Revoke
// go to the first that manages the name.
func MergeCertificates(ms ...Certificates) Certificates {
	var live multiCerts
	for _, m := range ms {
		if m != nil {
			live = append(live, m)
		}
	}
	if len(live) == 1 {
		return live[0]
	}
	return live
}

type multiCerts []Certificates

func (mc multiCerts) Statuses() []certmgr.Status {
	var out []certmgr.Status
	for _, m := range mc {
		out = append(out, m.Statuses()...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (mc multiCerts) RenewNow(name string) error {
	for _, m := range mc {
		if err := m.RenewNow(name); !errors.Is(err, certmgr.ErrNotManaged) {
			return err
		}
	}
	return certmgr.ErrNotManaged
}

func (mc multiCerts) Revoke(ctx context.Context, name string, reason uint) error {
	for _, m := range mc {
		if err := m.Revoke(ctx, name, reason); !errors.Is(err, certmgr.ErrNotManaged) {
			return err
		}
	}
	return certmgr.ErrNotManaged
}

// unwrapPathErr drops the path from a file error (the message names it).
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
