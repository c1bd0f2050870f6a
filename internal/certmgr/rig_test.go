package certmgr_test

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// ca is one Pebble with an ACME account on it.
type ca struct {
	*embedca.CA
	client *certmgr.ACMEIssuer
}

// lifecycleRig: one store, one HTTP-01 solver, any number of CAs.
type lifecycleRig struct {
	t     *testing.T
	store *storage.Store
	sol   *http01.Solver
	port  int
}

func newLifecycleRig(t *testing.T) *lifecycleRig {
	t.Helper()
	acmeclient.SetLegoLogger(slog.New(slog.DiscardHandler))
	sol := http01.NewSolver()
	srv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &lifecycleRig{t: t, store: store, sol: sol, port: srv.Port()}
}

func (r *lifecycleRig) newCA(opts embedca.Options) *ca {
	r.t.Helper()
	opts.HTTPPort = r.port
	c := testenv.StartCA(r.t, opts)
	client := certmgr.NewACMEIssuer(certmgr.ACMEIssuerConfig{
		Client: acmeclient.Config{Server: c.DirectoryURL(), HTTPClient: c.HTTPClient(), Solvers: acmeclient.Solvers{HTTP01: r.sol}},
		Store:  r.store, Register: acmeclient.RegisterOptions{AcceptTOS: true},
	})
	return &ca{CA: c, client: client}
}

// serveTLS serves handshakes with m's GetCertificate on loopback.
func serveTLS(t *testing.T, m *certmgr.Manager) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: m.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake returns the serial the server presents for name.
func handshake(addr, name string, roots *embedca.CA) (string, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots.RootPool()})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// events collects manager events on a channel.
func events(opts *certmgr.Options) chan certmgr.Event {
	ch := make(chan certmgr.Event, 256)
	opts.OnEvent = func(e certmgr.Event) { ch <- e }
	return ch
}

// waitFor waits for an event of kind for name.
func waitFor(t *testing.T, ch <-chan certmgr.Event, kind certmgr.EventKind, name string) certmgr.Event {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Kind == kind && e.Name == name {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within 90 s", kind, name)
		}
	}
}

func status(t *testing.T, m *certmgr.Manager, name string) certmgr.Status {
	t.Helper()
	for _, s := range m.Statuses() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s is not managed", name)
	return certmgr.Status{}
}
