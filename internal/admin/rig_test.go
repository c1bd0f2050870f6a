package admin

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/challenge/shared"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/router"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// testToken is the bearer token of every rig.
const testToken = "test-token-0123456789"

// rig is a running admin over real parts: Pebble in-process, a certmgr
// manager that obtained real certificates, a router with live routes and a
// proxied backend, and a deploy target that writes PEM files to a folder.
type rig struct {
	adm     *Admin
	url     string
	ca      *embedca.CA
	mgr     *certmgr.Manager
	fleet   *certmgr.Fleet
	rt      *router.Router
	store   *storage.Store
	targets *dirTargets
	events  chan certmgr.Event
	logs    *syncBuffer
	names   []string
	// stopManager stops the manager's loop and storage watch (safe to
	// call twice); its certificates stay in service.
	stopManager func()
}

// rigOptions adjust newRig.
type rigOptions struct {
	now func() time.Time // admin and fleet clock; nil means time.Now
	// store, when set, is the storage (another node's, shared); nil
	// means a new folder.
	store *storage.Store
	// ca, when set, is the CA to order from (another node's); nil starts
	// one.
	ca *embedca.CA
	// holder names the node; empty means "node-a".
	holder string
}

// syncBuffer is a bytes.Buffer safe for the loggers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newRig obtains a certificate for each name from Pebble and starts the
// admin on 127.0.0.1:0.
func newRig(t *testing.T, o rigOptions, names ...string) *rig {
	t.Helper()
	acmeclient.SetLegoLogger(slog.New(slog.DiscardHandler))
	sol := http01.NewSolver()
	hsrv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hsrv.Close() })
	r := &rig{names: names, logs: &syncBuffer{}, events: make(chan certmgr.Event, 64)}
	if o.holder == "" {
		o.holder = "node-a"
	}
	r.ca, r.store = o.ca, o.store
	if r.ca == nil {
		r.ca = testenv.StartCA(t, embedca.Options{HTTPPort: hsrv.Port()})
	}
	if r.store == nil {
		r.store = openStore(t, t.TempDir(), o.holder)
	}
	// Challenge answers live in the storage too: with several nodes, the
	// CA validates on the first node's port, and that node answers what
	// another one presented.
	sol.Shared = &shared.Answers{Store: r.store.Backend(), Prefix: "challenges/http-01"}
	client := certmgr.NewACMEIssuer(certmgr.ACMEIssuerConfig{
		Client: acmeclient.Config{Server: r.ca.DirectoryURL(), HTTPClient: r.ca.HTTPClient(), Solvers: acmeclient.Solvers{HTTP01: sol}},
		Store:  r.store, Register: acmeclient.RegisterOptions{AcceptTOS: true},
	})
	logger := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.adm = New(Options{Address: "127.0.0.1:0", Token: testToken, Logger: logger, Now: o.now,
		Getenv: func(k string) string { return map[string]string{"TEST_EAB_HMAC": "c2VjcmV0LWhtYWMtdmFsdWU"}[k] }})

	r.mgr = certmgr.New(certmgr.Options{
		Issuer: r.adm.InstrumentIssuer(client), Store: r.store, Cache: certmgr.NewCache(), Logger: logger, Holder: o.holder,
		OnEvent: func(e certmgr.Event) {
			r.adm.OnCertEvent(e)
			select {
			case r.events <- e:
			default: // nobody waits for this one
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.mgr.Run(ctx); close(done) }()
	r.stopManager = func() { cancel(); <-done }
	t.Cleanup(r.stopManager)

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "backend\n") }))
	t.Cleanup(backend.Close)
	var routes strings.Builder
	for i, n := range names {
		fmt.Fprintf(&routes, "  r%d: {host: %s, service: app}\n", i, n)
	}
	cfg, err := config.Parse("rig.yaml", []byte(fmt.Sprintf(`
entryPoints:
  web: {address: "127.0.0.1:0"}
certificates:
  acme:
    eab: {kid: test-kid, hmac: "${TEST_EAB_HMAC}"}
admin:
  token: %s
routes:
%s  banner: {host: static.example.test, service: banner}
services:
  app: {servers: [{url: %q}]}
  banner: {static: {body: "hello\n"}}
tcpRoutes:
  db: {sni: db.example.test, tls: passthrough, service: db, entryPoints: [web]}
tcpServices:
  db: {servers: [{address: %q}]}
`, testToken, routes.String(), backend.URL, strings.TrimPrefix(backend.URL, "http://"))), r.adm.opts.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	r.rt = router.New(router.Deps{Logger: logger, Certs: r.mgr, OnRequest: r.adm.OnRequest, OnHandOver: r.adm.OnHandOver})
	if err := r.rt.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = r.rt.Shutdown(sctx)
	})

	r.targets = &dirTargets{dir: t.TempDir(), store: r.store, adm: r.adm, certs: names}
	sets := make([]certmgr.Set, 0, len(names))
	for _, n := range names {
		sets = append(sets, certmgr.Set{Name: n, Domains: []string{n}})
	}
	r.mgr.Manage(context.Background(), sets)
	for range names {
		// A node on storage another node filled loads what it stored.
		if e := r.next(t); e.Kind != certmgr.EventObtained && e.Kind != certmgr.EventLoaded {
			t.Fatalf("event %s for %s (error %v), want obtained or loaded", e.Kind, e.Name, e.Err)
		}
	}
	r.fleet = certmgr.NewFleet(certmgr.FleetOptions{Manager: r.mgr, Version: "test", AdminURL: r.adm.URL, Logger: logger, Now: o.now,
		Targets: r.targets.Targets})
	r.fleet.Start(context.Background())
	t.Cleanup(func() { _ = r.fleet.Close() })
	if err := r.adm.Start(context.Background(), Sources{Certs: r.mgr, Routes: r.rt, Targets: r.targets, Fleet: r.fleet}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.adm.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	r.url = r.adm.URL()
	return r
}

// openStore opens the file storage at dir for the node holder (its name
// in lock files).
func openStore(t *testing.T, dir, holder string) *storage.Store {
	t.Helper()
	f, err := storage.OpenFiles(dir, storage.FilesOptions{Holder: holder})
	if err != nil {
		t.Fatal(err)
	}
	return storage.New(f)
}

// next waits (one minute at most) for the next certificate event.
func (r *rig) next(t *testing.T) certmgr.Event {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(time.Minute):
		t.Fatal("no certificate event within a minute")
		return certmgr.Event{}
	}
}

// leaf returns the stored certificate of name.
func (r *rig) leaf(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	b, err := r.store.LoadCertificate(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := b.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// call sends one request to the admin listener with token (none when
// empty) and returns the response with its body read.
func call(t *testing.T, base, method, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// dirTargets is a real deploy target: Deploy copies each certificate's
// PEM files from storage into a folder, as an exec or file target would.
type dirTargets struct {
	dir   string
	store *storage.Store
	adm   *Admin
	certs []string

	mu   sync.Mutex
	last TargetStatus
}

var _ Targets = (*dirTargets)(nil)

func (d *dirTargets) Targets() []TargetStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.last
	st.Name, st.Type, st.Certificates = "lb1", "exec", slices.Clone(d.certs)
	return []TargetStatus{st}
}

func (d *dirTargets) Deploy(ctx context.Context, name string) error {
	if name != "lb1" {
		return fmt.Errorf("no target %q", name)
	}
	start := time.Now()
	var (
		err     error
		leaf    *x509.Certificate
		serials []string
	)
	for _, c := range d.certs {
		var b *storage.Bundle
		if b, err = d.store.LoadCertificate(context.Background(), c); err != nil {
			break
		}
		if err = os.WriteFile(filepath.Join(d.dir, c+".pem"), append(b.Certificate, b.PrivateKey...), 0o600); err != nil {
			break
		}
		if leaf, err = b.Leaf(); err != nil {
			break
		}
		serials = append(serials, leaf.SerialNumber.Text(16))
	}
	now := time.Now()
	d.mu.Lock()
	d.last.LastDeploy = now
	if err != nil {
		d.last.LastResult, d.last.LastError = "failed", err.Error()
		d.last.Failures++
	} else {
		d.last.LastResult, d.last.LastError, d.last.Failures = "ok", "", 0
		// One serial per certificate, in their order, as deploy.TargetStatus.
		d.last.LastSuccess, d.last.ServedSerial = now, strings.Join(serials, ",")
	}
	d.last.NextRun = now.Add(time.Hour)
	d.mu.Unlock()
	d.adm.OnDeploy(DeployEvent{Target: name, Domain: strings.Join(d.certs, ","), Leaf: leaf, Duration: time.Since(start), Err: err})
	return err
}
