package certmgr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/storage"
)

// Issuer is the engine the manager drives; *acmeclient.Client is one.
type Issuer interface {
	Obtain(ctx context.Context, req acmeclient.ObtainRequest) (*storage.Bundle, error)
	Renew(ctx context.Context, old *storage.Bundle, opts acmeclient.RenewOptions) (*storage.Bundle, error)
	RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*storage.RenewalInfo, error)
	Revoke(ctx context.Context, b *storage.Bundle, reason *uint) error
}

// ErrNotManaged is returned for a certificate name the manager does not
// manage.
var ErrNotManaged = errors.New("certmgr: no managed certificate by that name")

// Set is one managed certificate: its storage name and its identifiers.
type Set struct {
	Name    string
	Domains []string
}

// EventKind names what happened to a certificate.
type EventKind string

// Event kinds.
const (
	EventObtained EventKind = "obtained"
	EventRenewed  EventKind = "renewed"
	EventFailed   EventKind = "failed"
	EventLoaded   EventKind = "loaded"
	EventRevoked  EventKind = "revoked"
)

// Event is emitted after each obtain, renewal, failure or load from storage.
type Event struct {
	Kind   EventKind
	Name   string
	Bundle *storage.Bundle // nil on failure
	Err    error
}

// Options configure a Manager. Issuer, Store and Cache are required.
type Options struct {
	Issuer Issuer
	Store  *storage.Store
	Cache  *Cache
	// Logger receives one line per event; nil discards.
	Logger *slog.Logger
	// KeyType of new keys; zero means EC256.
	KeyType certcrypto.KeyType
	// Profile is the ACME profile to ask for.
	Profile string
	// ReuseKey keeps keys across renewals (default: a fresh key each time).
	ReuseKey bool
	// CheckInterval bounds how long the manager sleeps between looks at
	// its certificates; zero means one minute.
	CheckInterval time.Duration
	// Workers bounds concurrent orders; zero means 8.
	Workers int
	// OnEvent, when set, is called (from manager goroutines) after each event.
	OnEvent func(Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// state is what the manager knows of one managed set.
type state struct {
	set      Set
	bundle   *storage.Bundle
	leaf     *x509.Certificate // parsed bundle leaf
	jitter   float64           // fixed point inside the ARI window, in [0,1)
	inFlight bool
	force    bool // renew at the next look, whatever the dates
	reason   string
	failures int
	retryAt  time.Time
	lastErr  error
}

// Manager keeps every managed certificate present and fresh: it loads what
// storage has, orders what is missing without blocking its caller, renews
// what is due, and puts each new certificate into the SNI cache. Names
// dropped from the desired set are no longer renewed; their files stay.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	states map[string]*state // guarded by mu; by set name

	kick chan struct{}
	sem  chan struct{}
	wg   sync.WaitGroup
}

// New returns a Manager; call Run to start it.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.KeyType == "" {
		opts.KeyType = certcrypto.EC256
	}
	return &Manager{
		opts: opts, log: opts.Logger.With("component", "certmgr"),
		states: map[string]*state{}, kick: make(chan struct{}, 1), sem: make(chan struct{}, opts.Workers),
	}
}

// Manage sets the desired certificates. New sets are loaded from storage
// (and served at once when they cover their names) or ordered in the
// background; sets no longer listed stop being renewed. It never blocks on
// the CA.
func (m *Manager) Manage(sets []Set) {
	m.mu.Lock()
	want := make(map[string]bool, len(sets))
	var fresh []*state
	for _, s := range sets {
		want[s.Name] = true
		if st, ok := m.states[s.Name]; ok {
			if !slices.Equal(st.set.Domains, s.Domains) {
				st.set = s
				st.retryAt = time.Time{}
			}
			continue
		}
		st := &state{set: s, jitter: rand.Float64(), inFlight: true}
		m.states[s.Name] = st
		fresh = append(fresh, st)
	}
	for name := range m.states {
		if !want[name] {
			m.log.Info("certificate no longer needed: renewals stop, files stay", "cert_name", name)
			delete(m.states, name)
		}
	}
	m.mu.Unlock()

	// Load what storage has, in parallel: a restart with thousands of
	// certificates serves them all before the first look at the CA. The
	// new states are marked in flight meanwhile so check leaves them be.
	jobs := make(chan *state)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(fresh)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range jobs {
				m.load(st)
			}
		}()
	}
	for _, st := range fresh {
		jobs <- st
	}
	close(jobs)
	wg.Wait()
	m.Kick()
}

// load serves st's stored certificate when it covers the set's names.
func (m *Manager) load(st *state) {
	b, err := m.opts.Store.LoadCertificate(st.set.Name)
	var leaf *x509.Certificate
	switch {
	case err == nil:
		if leaf, err = m.serveIfCovers(b, st.set.Domains); err != nil {
			m.log.Warn("stored certificate unusable; ordering a new one", "cert_name", st.set.Name, "error", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		m.log.Warn("stored certificate unreadable; ordering a new one", "cert_name", st.set.Name, "error", err)
	}
	if leaf == nil {
		b = nil
	}
	m.mu.Lock()
	st.inFlight = false
	st.bundle, st.leaf = b, leaf
	m.mu.Unlock()
	if b != nil {
		m.emit(Event{Kind: EventLoaded, Name: st.set.Name, Bundle: b})
	}
}

// serveIfCovers parses b once and serves it when it names every domain;
// it returns the leaf, or nil when b does not cover them.
func (m *Manager) serveIfCovers(b *storage.Bundle, domains []string) (*x509.Certificate, error) {
	crt, err := tls.X509KeyPair(b.Certificate, b.PrivateKey)
	if err != nil {
		return nil, err
	}
	if !leafCovers(crt.Leaf, domains) {
		return nil, nil
	}
	m.opts.Cache.Put(append(append([]string(nil), crt.Leaf.DNSNames...), ipNames(crt.Leaf)...), &crt)
	return crt.Leaf, nil
}

// Kick makes the manager look at its certificates now.
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run looks at the certificates on every kick and at least every
// CheckInterval until ctx ends, then waits for orders in flight.
func (m *Manager) Run(ctx context.Context) {
	defer m.wg.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-t.C:
		}
		next := m.check(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// check starts the work that is due and returns how long to sleep.
func (m *Manager) check(ctx context.Context) time.Duration {
	now := m.opts.Now()
	sleep := m.opts.CheckInterval
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range m.states {
		if st.inFlight {
			continue
		}
		if now.Before(st.retryAt) {
			sleep = min(sleep, st.retryAt.Sub(now))
			continue
		}
		due, at := true, now
		if st.bundle != nil && st.leaf != nil && !st.force {
			j := st.jitter
			d := Due(st.leaf, st.bundle.Meta.RenewalInfo, now, Policy{Rand: func(n int64) int64 { return int64(j * float64(n)) }})
			due, at = d.Due, d.At
		}
		if !due {
			sleep = min(sleep, at.Sub(now))
			continue
		}
		st.inFlight = true
		m.wg.Add(1)
		go m.work(ctx, st)
	}
	return max(sleep, time.Second)
}

// work obtains or renews one set.
func (m *Manager) work(ctx context.Context, st *state) {
	defer m.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("panic in certificate work", "cert_name", st.set.Name, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		m.finish(st, nil, ctx.Err())
		return
	}
	defer func() { <-m.sem }()

	m.mu.Lock()
	set, old := st.set, st.bundle
	m.mu.Unlock()
	var (
		b   *storage.Bundle
		err error
	)
	if old != nil && covers(old, set.Domains) {
		b, err = m.opts.Issuer.Renew(ctx, old, acmeclient.RenewOptions{ReuseKey: m.opts.ReuseKey, Profile: m.opts.Profile})
	} else {
		b, err = m.opts.Issuer.Obtain(ctx, acmeclient.ObtainRequest{Name: set.Name, Domains: set.Domains, KeyType: m.opts.KeyType, Profile: m.opts.Profile})
	}
	if err == nil {
		err = m.serve(b)
	}
	m.finish(st, b, err)
	kind := EventObtained
	if old != nil {
		kind = EventRenewed
	}
	if err != nil {
		m.log.Error("certificate order failed; retrying later", "cert_name", set.Name, "error", err)
		m.emit(Event{Kind: EventFailed, Name: set.Name, Err: err})
		return
	}
	m.log.Info("certificate "+string(kind), "cert_name", set.Name, "domains", strings.Join(set.Domains, ","))
	m.emit(Event{Kind: kind, Name: set.Name, Bundle: b})
	m.Kick()
}

// finish records the outcome; failures back off exponentially from one
// minute to six hours.
func (m *Manager) finish(st *state, b *storage.Bundle, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.inFlight = false
	st.lastErr = err
	if err != nil {
		st.failures++
		back := time.Minute << min(st.failures-1, 9)
		back = min(back, 6*time.Hour)
		st.retryAt = m.opts.Now().Add(back/2 + time.Duration(rand.Int64N(int64(back/2)+1)))
		return
	}
	st.failures, st.retryAt, st.force = 0, time.Time{}, false
	st.bundle, st.leaf = b, leafOf(b)
	st.jitter = rand.Float64()
}

// serve puts b into the SNI cache.
func (m *Manager) serve(b *storage.Bundle) error {
	crt, err := tls.X509KeyPair(b.Certificate, b.PrivateKey)
	if err != nil {
		return err
	}
	leaf := crt.Leaf
	names := append(append([]string(nil), leaf.DNSNames...), ipNames(leaf)...)
	m.opts.Cache.Put(names, &crt)
	return nil
}

func (m *Manager) emit(ev Event) {
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
}

// Status describes one managed certificate, for `zoku list`, the admin
// API and metrics.
type Status struct {
	Name        string    `json:"name"`
	Domains     []string  `json:"domains"`
	Issuer      string    `json:"issuer,omitempty"`
	Serial      string    `json:"serial,omitempty"`
	KeyType     string    `json:"keyType,omitempty"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	ARIStart    time.Time `json:"ariWindowStart"`
	ARIEnd      time.Time `json:"ariWindowEnd"`
	NextRenewal time.Time `json:"nextRenewal"`
	NextReason  string    `json:"nextRenewalReason"`
	Pending     bool      `json:"pending"` // an order is running now
	Failures    int       `json:"failures"`
	RetryAt     time.Time `json:"retryAt"`
	LastErr     string    `json:"lastError,omitempty"`
}

// Statuses returns the managed certificates, sorted by name.
func (m *Manager) Statuses() []Status {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.states))
	for _, st := range m.states {
		s := Status{Name: st.set.Name, Domains: st.set.Domains, Failures: st.failures, RetryAt: st.retryAt, Pending: st.inFlight}
		if st.lastErr != nil {
			s.LastErr = st.lastErr.Error()
		}
		if leaf := st.leaf; leaf != nil {
			s.Issuer, s.Serial = leaf.Issuer.CommonName, leaf.SerialNumber.Text(16)
			s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
			s.KeyType = string(st.bundle.Meta.KeyType)
			ri := st.bundle.Meta.RenewalInfo
			if ri != nil {
				s.ARIStart, s.ARIEnd = ri.WindowStart, ri.WindowEnd
			}
			j := st.jitter
			d := Due(leaf, ri, now, Policy{Force: st.force, Rand: func(n int64) int64 { return int64(j * float64(n)) }})
			s.NextRenewal, s.NextReason = d.At, d.Reason
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// RenewNow renews name at once, whatever its dates (the admin API's
// POST .../renew). It returns ErrNotManaged for an unknown name.
func (m *Manager) RenewNow(name string) error {
	m.mu.Lock()
	st, ok := m.states[name]
	if ok {
		st.force, st.retryAt = true, time.Time{}
	}
	m.mu.Unlock()
	if !ok {
		return ErrNotManaged
	}
	m.Kick()
	return nil
}

// Revoke revokes the served certificate of name with an RFC 5280 reason
// and orders its replacement at once; the revoked one is served until the
// replacement is in.
func (m *Manager) Revoke(ctx context.Context, name string, reason uint) error {
	m.mu.Lock()
	st, ok := m.states[name]
	var b *storage.Bundle
	if ok {
		b = st.bundle
	}
	m.mu.Unlock()
	if !ok {
		return ErrNotManaged
	}
	if b == nil {
		return errors.New("certmgr: " + name + " has no certificate yet")
	}
	if err := m.opts.Issuer.Revoke(ctx, b, &reason); err != nil {
		return err
	}
	m.emit(Event{Kind: EventRevoked, Name: name, Bundle: b})
	return m.RenewNow(name)
}

// leafOf parses b's leaf; nil for a nil or broken bundle.
func leafOf(b *storage.Bundle) *x509.Certificate {
	if b == nil {
		return nil
	}
	leaf, err := b.Leaf()
	if err != nil {
		return nil
	}
	return leaf
}

// covers reports whether the stored certificate names every domain.
func covers(b *storage.Bundle, domains []string) bool {
	leaf := leafOf(b)
	return leaf != nil && leafCovers(leaf, domains)
}

// leafCovers reports whether leaf names every domain.
func leafCovers(leaf *x509.Certificate, domains []string) bool {
	have := map[string]bool{}
	for _, n := range append(leaf.DNSNames, ipNames(leaf)...) {
		have[strings.ToLower(n)] = true
	}
	for _, d := range domains {
		if !have[strings.ToLower(d)] {
			return false
		}
	}
	return true
}

func ipNames(leaf *x509.Certificate) []string {
	out := make([]string, 0, len(leaf.IPAddresses))
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}
