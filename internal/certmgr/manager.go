package certmgr

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/storage"
)

// ErrNotManaged is returned for a certificate name the manager does not
// manage.
var ErrNotManaged = errors.New("certmgr: no managed certificate by that name")

// Set is one managed certificate: its storage name, its identifiers and
// how it is ordered.
type Set struct {
	Name    string
	Domains []string
	// Profile overrides Options.Profile for this certificate.
	Profile string
	// KeyType overrides Options.KeyType for this certificate.
	KeyType certcrypto.KeyType
	// ReuseKey overrides Options.ReuseKey for this certificate.
	ReuseKey bool
	// Issuers, when set, replace Options.Issuers for this certificate: a
	// deploy target's CAs with its own way of answering challenges.
	Issuers []Issuer
}

// EventKind names what happened to a certificate.
type EventKind string

// Event kinds.
const (
	EventObtained     EventKind = "obtained"
	EventRenewed      EventKind = "renewed"
	EventFailed       EventKind = "failed"
	EventLoaded       EventKind = "loaded"
	EventRevoked      EventKind = "revoked"
	EventRevokedByARI EventKind = "revoked-by-ari" // the CA moved the ARI window into the past
)

// Event is emitted after each obtain, renewal, failure, load from storage
// or revocation.
type Event struct {
	Kind   EventKind
	Name   string
	Bundle *storage.Bundle // nil on failure
	Err    error
	// Issuer is the directory URL of the CA involved.
	Issuer string
	// FromStorage is true for a certificate another process or node
	// stored (EventLoaded).
	FromStorage bool
	// RetryAt is when a failed order is tried again.
	RetryAt time.Time
}

// Options configure a Manager. Issuers (or Issuer), Store and Cache are
// required.
type Options struct {
	// Issuers are the CAs in order of preference: after FallbackAfter
	// failures in a row a certificate moves to the next one; a success
	// brings its next order back to the first.
	Issuers []Issuer
	// Issuer is a shorthand for a single issuer.
	Issuer Issuer
	// FallbackAfter is the number of failures before the next issuer is
	// tried; zero means 3.
	FallbackAfter int
	Store         *storage.Store
	Cache         *Cache
	// Logger receives one line per event; nil discards.
	Logger *slog.Logger
	// KeyType of new keys; zero means EC256.
	KeyType certcrypto.KeyType
	// Profile is the ACME profile to ask for.
	Profile string
	// ReuseKey keeps keys across renewals (default: a fresh key each time).
	ReuseKey bool
	// Prune archives the files of certificates no longer managed.
	Prune bool
	// CheckInterval bounds how long the manager sleeps between looks at
	// its certificates; zero means one minute.
	CheckInterval time.Duration
	// Workers bounds concurrent orders; zero means 8.
	Workers int
	// MaxBackoff caps the wait after failures; zero means 6 hours.
	MaxBackoff time.Duration
	// OnEvent, when set, is called (from manager goroutines) after each
	// event; Subscribe adds more listeners.
	OnEvent func(Event)
	// Holder names this process or node in what it stores (StoredBy);
	// empty means "<hostname>:<pid>".
	Holder string
	// LockRetry is how soon a certificate that another process or node
	// is ordering is looked at again (its result usually arrives by watch
	// first); zero means 10 s.
	LockRetry time.Duration
	// OnDemand, when set, orders certificates for names first seen in SNI
	// (see GetCertificate).
	OnDemand *OnDemand
	// Usable, when set, vets each stored certificate before it is served:
	// an error keeps it out of service, shows as the certificate's last
	// error, and a new one is ordered at once (the embedded CA's
	// CheckStored: a certificate under a root that is gone).
	Usable func(*storage.Bundle) error
	// LoadWait is how long Manage waits for the stored certificates of new
	// sets to load before it returns; the rest load in the background,
	// and a handshake for a name not loaded yet loads its certificate
	// first (so a start with 100,000 stored certificates serves at once).
	// Zero means 250ms (a few thousand certificates); negative waits for
	// all. When the pace of the first fifth of the wait says the loads
	// would take more than twice as long, Manage returns then.
	LoadWait time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand returns a uniform float in [0,1); nil means math/rand/v2.
	Rand func() float64
}

// state is what the manager knows of one managed set.
type state struct {
	set      Set
	onDemand bool // added by GetCertificate, not by Manage
	bundle   *storage.Bundle
	leaf     *x509.Certificate // parsed bundle leaf
	ari      *storage.RenewalInfo
	jitter   float64 // fixed point inside the ARI window, in [0,1)
	inFlight bool
	force    bool // renew at the next look, whatever the dates
	// replaced is the serial a renewal was last ordered for: never order
	// twice for the same certificate and window.
	replaced string
	issuer   int // index into Issuers for the next order
	failures int
	retryAt  time.Time
	lastErr  error
	waiters  []chan struct{} // closed when a certificate is served
	// reloadAsked: storage reported a write while the set was in flight.
	reloadAsked bool
	// loadStored loads the stored certificate of a set added by Manage,
	// once, from the background loader or from the first handshake that
	// needs it, whichever comes first (nil for sets added otherwise).
	loadStored func()
	// unread: the stored certificate has not been read yet (counted in
	// Manager.unread).
	unread bool
	// wakeAt is when the set is next worth a look; qidx is its place in
	// Manager.sched plus one, 0 when not queued (schedule.go).
	wakeAt time.Time
	qidx   int
}

// Manager keeps every managed certificate present and fresh: it loads what
// storage has, orders what is missing without blocking its caller, polls
// ARI at the CA's Retry-After, renews at a random point inside the ARI
// window (or by the lifetime rule), backs off on failure while the old
// certificate stays in service, falls back to other CAs, and swaps each
// new certificate into the SNI cache atomically. Names dropped from the
// desired set are no longer renewed; their files stay unless Prune.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	states map[string]*state // guarded by mu; by set name
	byFile map[string]*state // guarded by mu; by storage.SanitizedName(set name)
	// unloaded are the states whose stored certificate is not loaded
	// yet, by each of their domains (guarded by mu).
	unloaded map[string]*state
	unread   int // states whose storage has not been read yet (guarded by mu)
	// stopLoads is closed when Run ends: background loads stop.
	stopLoads chan struct{}
	stopOnce  sync.Once

	subMu sync.Mutex
	subs  map[int]func(Event) // guarded by subMu
	subN  int

	pol atomic.Pointer[policy] // what a reload may change

	// randGiven: Options.Rand was set (tests); it then also picks the
	// point inside each ARI window, instead of the certificate's serial.
	randGiven bool

	kick chan struct{}
	sem  chan struct{}
	wg   sync.WaitGroup

	// after is time.After, or a test's clock for loadAll's waits.
	after func(time.Duration) <-chan time.Time

	// sched orders the sets by when each is next worth a look; nextFull
	// is when check next looks at every set. Both guarded by mu.
	sched    schedule
	nextFull time.Time
}

// New returns a Manager; call Run to start it.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	randGiven := opts.Rand != nil
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.FallbackAfter <= 0 {
		opts.FallbackAfter = 3
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 6 * time.Hour
	}
	if opts.KeyType == "" {
		opts.KeyType = certcrypto.EC256
	}
	if opts.Holder == "" {
		opts.Holder = storage.DefaultHolder()
	}
	if opts.LockRetry <= 0 {
		opts.LockRetry = 10 * time.Second
	}
	issuers := opts.Issuers
	if len(issuers) == 0 && opts.Issuer != nil {
		issuers = []Issuer{opts.Issuer}
	}
	m := &Manager{
		opts: opts, log: opts.Logger.With("component", "certmgr"), randGiven: randGiven,
		states: map[string]*state{}, byFile: map[string]*state{}, unloaded: map[string]*state{}, stopLoads: make(chan struct{}), subs: map[int]func(Event){}, kick: make(chan struct{}, 1), sem: make(chan struct{}, opts.Workers),
	}
	p := &policy{issuers: issuers, fallbackAfter: opts.FallbackAfter, keyType: opts.KeyType, profile: opts.Profile, reuseKey: opts.ReuseKey}
	if opts.OnDemand != nil {
		p.onDemandCfg = *opts.OnDemand
		p.ondemand = newOnDemandState(opts.OnDemand)
	}
	m.pol.Store(p)
	return m
}

// policy is what a configuration reload may change, swapped as a whole.
type policy struct {
	issuers       []Issuer
	fallbackAfter int
	keyType       certcrypto.KeyType
	profile       string
	reuseKey      bool
	onDemandCfg   OnDemand
	ondemand      *onDemandState // nil: on-demand TLS off
}

// Settings are the part of Options a running manager can take anew (a
// configuration reload): zero FallbackAfter means 3, empty KeyType EC256.
type Settings struct {
	Issuers       []Issuer
	FallbackAfter int
	KeyType       certcrypto.KeyType
	Profile       string
	ReuseKey      bool
	OnDemand      *OnDemand
}

// Update switches the manager to a new policy at once: orders started
// from now on use the new issuers and settings. An unchanged on-demand
// policy keeps its counters and refusals.
func (m *Manager) Update(u Settings) {
	if u.FallbackAfter <= 0 {
		u.FallbackAfter = 3
	}
	if u.KeyType == "" {
		u.KeyType = certcrypto.EC256
	}
	old := m.pol.Load()
	p := &policy{issuers: u.Issuers, fallbackAfter: u.FallbackAfter, keyType: u.KeyType, profile: u.Profile, reuseKey: u.ReuseKey}
	if u.OnDemand != nil {
		p.onDemandCfg = *u.OnDemand
		if old.ondemand != nil && reflect.DeepEqual(old.onDemandCfg, *u.OnDemand) {
			p.ondemand = old.ondemand
		} else {
			p.ondemand = newOnDemandState(u.OnDemand)
		}
	}
	m.pol.Store(p)
	m.mu.Lock()
	for _, st := range m.states {
		if n := len(m.issuersOf(st.set)); n == 0 || st.issuer >= n {
			st.issuer = 0
		}
	}
	m.nextFull = time.Time{} // the next look is at every set
	m.mu.Unlock()
	m.Kick()
}

// Manage sets the desired certificates. New sets are loaded from storage
// (and served at once when they cover their names) or ordered in the
// background; sets no longer listed stop being renewed. It never blocks on
// the CA.
func (m *Manager) Manage(ctx context.Context, sets []Set) {
	// The loads may outlive the caller's context (they go on in the
	// background); they stop when Run ends.
	lctx := context.WithoutCancel(ctx)
	m.mu.Lock()
	want := make(map[string]bool, len(sets))
	var fresh []*state
	for _, s := range sets {
		want[s.Name] = true
		if st, ok := m.states[s.Name]; ok {
			st.onDemand = false
			if !slices.Equal(st.set.Domains, s.Domains) || st.set.Profile != s.Profile || st.set.KeyType != s.KeyType {
				st.set = s
				st.retryAt = time.Time{}
				m.wake(st)
			}
			st.set.ReuseKey, st.set.Issuers = s.ReuseKey, s.Issuers
			continue
		}
		st := &state{set: s, jitter: m.opts.Rand(), inFlight: true}
		st.loadStored = sync.OnceFunc(func() { m.load(lctx, st) })
		st.unread = true
		m.unread++
		m.add(st)
		for _, d := range s.Domains {
			m.unloaded[strings.ToLower(d)] = st
		}
		fresh = append(fresh, st)
	}
	var dropped []string
	for name, st := range m.states {
		if !want[name] && !st.onDemand {
			m.log.Info("certificate no longer needed: renewals stop, files stay", "domain", name)
			m.remove(st)
			dropped = append(dropped, name)
		}
	}
	m.mu.Unlock()
	if m.opts.Prune {
		for _, name := range dropped {
			if zip, err := m.opts.Store.ArchiveCertificate(ctx, name, m.opts.Now()); err == nil {
				m.log.Info("unused certificate archived", "domain", name, "path", zip)
			}
		}
	}
	m.loadAll(lctx, fresh)
	m.Kick()
}

// add records st and queues it for a look; callers hold mu.
func (m *Manager) add(st *state) {
	m.states[st.set.Name] = st
	m.byFile[storage.SanitizedName(st.set.Name)] = st
	m.wake(st)
}

// remove forgets st; callers hold mu.
func (m *Manager) remove(st *state) {
	m.loaded(st)
	m.unqueue(st)
	delete(m.states, st.set.Name)
	if m.byFile[storage.SanitizedName(st.set.Name)] == st {
		delete(m.byFile, storage.SanitizedName(st.set.Name))
	}
}

// loadAll loads what storage has for the new states, in parallel, and
// waits for them up to LoadWait: a restart with thousands of certificates
// serves before the first look at the CA, and one with a hundred thousand
// serves at once, the rest loading behind it (a handshake loads its own
// certificate first, see loadFor). The states are in flight until loaded,
// so check neither orders nor renews them meanwhile: a name is "missing"
// only once its storage was read.
func (m *Manager) loadAll(ctx context.Context, fresh []*state) {
	if len(fresh) == 0 {
		return
	}
	jobs := make(chan *state)
	done := make(chan struct{})
	var workers sync.WaitGroup
	for w := 0; w < min(2*runtime.GOMAXPROCS(0), len(fresh)); w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for st := range jobs {
				st.loadStored()
			}
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { close(jobs); workers.Wait(); close(done) }()
		for _, st := range fresh {
			select {
			case jobs <- st:
			case <-m.stopLoads:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	wait := m.opts.LoadWait
	if wait == 0 {
		wait = 250 * time.Millisecond
	}
	if wait < 0 {
		<-done
		return
	}
	// A store that plainly cannot be read within the wait is not waited
	// for: after a fifth of it, the pace so far tells, and waiting the
	// rest would only delay serving (100,000 certificates take seconds).
	after := m.after
	if after == nil {
		after = time.After
	}
	probe := wait / 5
	select {
	case <-done:
		return
	case <-after(probe):
	}
	if n := m.read(fresh); n == 0 || time.Duration(float64(probe)*float64(len(fresh))/float64(n)) <= 2*wait {
		select {
		case <-done:
			return
		case <-after(wait - probe):
		}
	}
	m.log.Info("serving while stored certificates load; a handshake loads its own first", "certificates", len(fresh))
}

// read counts the states of sts whose storage has been read.
func (m *Manager) read(sts []*state) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, st := range sts {
		if !st.unread {
			n++
		}
	}
	return n
}

// loadFor loads the stored certificate for name (a handshake's server
// name) if a set covering it is not loaded yet; it reports whether it did
// or waited for one.
func (m *Manager) loadFor(name string) bool {
	m.mu.Lock()
	st := m.unloaded[name]
	if st == nil {
		if i := strings.IndexByte(name, '.'); i > 0 {
			st = m.unloaded["*"+name[i:]]
		}
	}
	m.mu.Unlock()
	if st == nil {
		return false
	}
	st.loadStored()
	return true
}

// Loading returns how many managed certificates have not been read from
// storage yet (see Options.LoadWait).
func (m *Manager) Loading() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unread
}

// current reports whether st is still the managed state of its set.
func (m *Manager) current(st *state) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[st.set.Name] == st
}

// loaded marks st's stored certificate as read (or no longer wanted);
// callers hold mu.
func (m *Manager) loaded(st *state) {
	if st.unread {
		st.unread = false
		m.unread--
	}
	for _, d := range st.set.Domains {
		if d = strings.ToLower(d); m.unloaded[d] == st {
			delete(m.unloaded, d)
		}
	}
}

// load serves st's stored certificate when it covers the set's names.
func (m *Manager) load(ctx context.Context, st *state) {
	b, err := m.opts.Store.LoadCertificate(ctx, st.set.Name)
	if ctx.Err() != nil || !m.current(st) {
		// The caller gave up, or the set was dropped while it loaded in
		// the background: nothing is served or ordered for it.
		return
	}
	var (
		leaf     *x509.Certificate
		unusable error
	)
	if err == nil && m.opts.Usable != nil {
		unusable = m.opts.Usable(b)
	}
	if err == nil && unusable == nil {
		b, unusable = m.wholeChain(ctx, b)
	}
	switch {
	case unusable != nil:
		unusable = fmt.Errorf("stored certificate not served, a new one is ordered: %w", unusable)
		m.log.Warn("stored certificate not served; ordering a new one", "domain", st.set.Name, "error", unusable)
	case err == nil:
		if leaf, err = m.serveIfCovers(b, st.set.Domains); err != nil {
			m.log.Warn("stored certificate unusable; ordering a new one", "domain", st.set.Name, "error", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		m.log.Warn("stored certificate unreadable; ordering a new one", "domain", st.set.Name, "error", err)
	}
	if leaf == nil {
		b = nil
	}
	m.mu.Lock()
	m.loaded(st)
	st.inFlight = false
	m.wake(st)
	st.bundle, st.leaf = b, leaf
	if unusable != nil {
		st.lastErr = unusable
	}
	if b != nil {
		st.ari = freshARI(b.Meta.RenewalInfo, leaf)
		st.jitter = m.pointFor(leaf)
		if st.ari == nil {
			// No renewal information stored (a lego folder, or a first
			// start): ask the CA, but spread the first polls of a large
			// store over a while instead of asking for every certificate
			// at once.
			life := leaf.NotAfter.Sub(leaf.NotBefore)
			spread := min(max(life/24, time.Second), time.Hour)
			st.ari = &storage.RenewalInfo{NextPoll: m.opts.Now().Add(time.Duration(st.jitter * float64(spread)))}
		}
	}
	reload := st.reloadAsked
	st.reloadAsked = false
	m.mu.Unlock()
	if b != nil {
		m.logEvent(slog.LevelDebug, "stored certificate loaded", EventLoaded, st.set.Name, leaf, b.Meta.Server, nil)
		m.emit(Event{Kind: EventLoaded, Name: st.set.Name, Bundle: b, Issuer: b.Meta.Server})
	}
	if reload {
		// Another holder stored it while this load read storage.
		m.reload(ctx, storage.SanitizedName(st.set.Name))
	}
}

// wholeChain returns b with a whole chain: a .crt cut after the leaf is
// repaired from the stored issuer (and written back); a chain that cannot
// be repaired is an error, and a new certificate is ordered.
func (m *Manager) wholeChain(ctx context.Context, b *storage.Bundle) (*storage.Bundle, error) {
	fixed, repaired, err := checkChain(b)
	if err != nil {
		return b, err
	}
	if repaired {
		m.log.Warn("stored certificate file held only the leaf; serving it with its stored issuer and writing the whole chain back", "domain", b.Meta.ID)
		if err := m.opts.Store.SaveCertificate(ctx, fixed); err != nil {
			m.log.Warn("repaired chain not written back; served from memory", "domain", b.Meta.ID, "error", err)
		}
	}
	return fixed, nil
}

// serveIfCovers parses b once and serves it when it names every domain;
// it returns the leaf, or nil when b does not cover them.
func (m *Manager) serveIfCovers(b *storage.Bundle, domains []string) (*x509.Certificate, error) {
	crt, err := b.TLSCertificate()
	if err != nil {
		return nil, err
	}
	if !leafCovers(crt.Leaf, domains) {
		return nil, nil
	}
	m.opts.Cache.Put(append(append([]string(nil), crt.Leaf.DNSNames...), ipNames(crt.Leaf)...), crt)
	return crt.Leaf, nil
}

// freshARI drops renewal information that predates the certificate (a
// stale window of the certificate it replaced must never trigger another
// renewal, cert-manager#8993).
func freshARI(ri *storage.RenewalInfo, leaf *x509.Certificate) *storage.RenewalInfo {
	if ri == nil || leaf == nil || ri.WindowEnd.Before(leaf.NotBefore) || !ri.WindowEnd.After(ri.WindowStart) {
		return nil
	}
	return ri
}

// Kick makes the manager look at its certificates now.
func (m *Manager) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run looks at the certificates on every kick and at least every
// CheckInterval until ctx ends, then waits for orders in flight. When the
// storage reports changes (storage.Watcher), certificates stored by other
// processes or nodes are picked up as they arrive.
func (m *Manager) Run(ctx context.Context) {
	defer m.wg.Wait()
	defer m.stopOnce.Do(func() { close(m.stopLoads) })
	m.watch(ctx)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-t.C:
		}
		next, _ := m.check(ctx)
		t.Reset(next)
	}
}

// CheckNow looks at every certificate at the manager's Now and waits for
// the orders and ARI polls it started. Tests drive a Manager with an
// injected clock this way instead of Run.
func (m *Manager) CheckNow(ctx context.Context) {
	_, round := m.check(ctx)
	round.Wait()
}

// check starts the work that is due and returns how long to sleep, and a
// WaitGroup of the work it started.
func (m *Manager) check(ctx context.Context) (time.Duration, *sync.WaitGroup) {
	now := m.opts.Now()
	round := new(sync.WaitGroup)
	start := func(f func()) {
		m.wg.Add(1)
		round.Add(1)
		go func() {
			defer m.wg.Done()
			defer round.Done()
			defer m.recoverPanic()
			f()
		}()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	all := !now.Before(m.nextFull)
	if all {
		m.nextFull = now.Add(m.opts.CheckInterval)
	}
	for _, st := range m.due(now, all) {
		if m.states[st.set.Name] != st || st.inFlight {
			continue // gone, or queued again when its work ends
		}
		if now.Before(st.retryAt) {
			m.wakeAt(st, st.retryAt)
			continue
		}
		if st.leaf != nil && !st.force && (st.ari == nil || !now.Before(st.ari.NextPoll)) && now.Before(st.leaf.NotAfter) {
			// Poll ARI first; the decision follows on the next look.
			st.inFlight = true
			start(func() { m.pollARI(ctx, st) })
			continue
		}
		due, at := true, now
		if st.leaf != nil && !st.force {
			j := st.jitter
			due, at, _ = decide(st.leaf, st.ari, now, Policy{Rand: func(n int64) int64 { return int64(j * float64(n)) }})
			if st.ari != nil {
				at = minTime(at, st.ari.NextPoll)
			}
			if due && st.replaced == st.leaf.SerialNumber.Text(16) {
				// Already ordered for this certificate; wait for the
				// result, looking again at the next full look.
				continue
			}
		}
		if !due {
			m.wakeAt(st, at)
			continue
		}
		st.inFlight = true
		start(func() { m.work(ctx, st) })
	}
	sleep := m.nextFull.Sub(now)
	if t, ok := m.nextWake(); ok {
		sleep = min(sleep, t.Sub(now))
	}
	return max(sleep, 100*time.Millisecond), round
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (m *Manager) recoverPanic() {
	if r := recover(); r != nil {
		m.log.Error("panic in certificate work", "panic", r, "stack", string(debug.Stack()))
	}
}

// pollARI asks the certificate's CA for its renewal window, at the
// Retry-After the CA gave last time.
func (m *Manager) pollARI(ctx context.Context, st *state) {
	m.mu.Lock()
	b, leaf, prev, set := st.bundle, st.leaf, st.ari, st.set
	m.mu.Unlock()
	iss := issuerNamed(m.issuersOf(set), b.Meta.Server)
	now := m.opts.Now()
	var info *storage.RenewalInfo
	var err error
	if iss != nil {
		var ri *acmeclient.RenewalInfo
		ri, err = iss.RenewalInfo(ctx, leaf)
		info = storedARI(ri)
	}
	m.mu.Lock()
	st.inFlight = false
	m.wake(st)
	switch {
	case err == nil && info != nil:
		// The CA's Retry-After decides the next poll, measured on our clock.
		retry := info.NextPoll.Sub(info.FetchedAt)
		info.FetchedAt, info.NextPoll = now, now.Add(max(retry, time.Second))
		st.ari = freshARI(info, leaf)
	default:
		// No ARI (or the CA is unreachable): the lifetime rule applies;
		// ask again in a while, never more often than hourly for long
		// certificates.
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		st.ari = &storage.RenewalInfo{NextPoll: now.Add(min(max(life/24, time.Second), time.Hour))}
		if prev != nil && prev.WindowEnd.After(prev.WindowStart) {
			st.ari.WindowStart, st.ari.WindowEnd = prev.WindowStart, prev.WindowEnd
		}
	}
	early := err == nil && st.ari != nil && st.ari.WindowEnd.Before(now) && (prev == nil || prev.WindowEnd.After(now))
	ri := st.ari
	m.mu.Unlock()
	if early {
		m.log.Warn("the CA moved the renewal window into the past (revocation or incident): renewing now", "domain", set.Name)
		m.emit(Event{Kind: EventRevokedByARI, Name: set.Name, Bundle: b, Issuer: b.Meta.Server})
	}
	if err == nil && ri != nil && ri.WindowEnd.After(ri.WindowStart) {
		meta := b.Meta
		meta.RenewalInfo = ri
		if serr := m.opts.Store.SaveMeta(ctx, meta); serr != nil {
			m.log.Debug("could not store renewal info", "domain", set.Name, "error", serr)
		}
	}
	m.Kick()
}

// work obtains or renews one set with the state's current issuer, through
// the issuing path.
func (m *Manager) work(ctx context.Context, st *state) {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		m.finish(st, nil, ctx.Err(), nil)
		return
	}
	defer func() { <-m.sem }()

	m.mu.Lock()
	set, old, idx, force := st.set, st.bundle, st.issuer, st.force
	seen := ""
	if old != nil && st.leaf != nil {
		seen = st.leaf.SerialNumber.Text(16)
		st.replaced = seen
	}
	m.mu.Unlock()
	issuers := m.issuersOf(set)
	if len(issuers) == 0 {
		m.finish(st, nil, errors.New("certmgr: no CA configured"), nil)
		return
	}
	iss := issuers[idx%len(issuers)]
	res, err := m.issue(ctx, Order{Set: set, Seen: seen, Force: force, Renew: old != nil}, iss)
	var se *StorageError
	if errors.Is(err, storage.ErrLocked) || errors.As(err, &se) {
		// Another process or node is ordering it now, its result arriving
		// by watch or found in storage at the next look; or the storage is
		// out of reach for now (the certificate in service stays).
		m.mu.Lock()
		st.inFlight, st.replaced = false, ""
		st.retryAt = m.opts.Now().Add(m.opts.LockRetry)
		m.wake(st)
		reload := st.reloadAsked
		st.reloadAsked = false
		m.mu.Unlock()
		if reload {
			// The other holder stored while we were asking for the lock.
			m.reload(ctx, storage.SanitizedName(set.Name))
		}
		if se != nil {
			m.log.Warn("storage unavailable; will try again", "domain", set.Name, "error", err, "retry_in", m.opts.LockRetry.String())
		} else {
			m.log.Debug("certificate is being ordered by another holder", "domain", set.Name)
		}
		return
	}
	var leaf *x509.Certificate
	if err == nil {
		if leaf, err = m.serveIfCovers(res.Bundle, set.Domains); err == nil && leaf == nil {
			err = errors.New("certmgr: the new certificate does not cover " + strings.Join(set.Domains, ", "))
		}
	}
	m.finish(st, res.Bundle, err, leaf)
	if err != nil {
		m.mu.Lock()
		retryAt := st.retryAt
		m.mu.Unlock()
		m.logEvent(slog.LevelError, "certificate order failed; the current certificate stays in service", EventFailed, set.Name, nil, iss.Server(), err,
			slog.String("retry_at", retryAt.UTC().Format(time.RFC3339)))
		m.emit(Event{Kind: EventFailed, Name: set.Name, Err: err, Issuer: iss.Server(), RetryAt: retryAt})
		if old != nil && !errors.Is(err, storage.ErrFenced) {
			meta := old.Meta
			meta.LastError, meta.LastAttempt = err.Error(), m.opts.Now().UTC()
			_ = m.opts.Store.SaveMeta(ctx, meta)
		}
		m.Kick()
		return
	}
	switch res.Action {
	case Ordered:
		kind := EventObtained
		if old != nil {
			kind = EventRenewed
		}
		m.logEvent(slog.LevelInfo, "certificate "+string(kind), kind, set.Name, leaf, iss.Server(), nil)
		m.emit(Event{Kind: kind, Name: set.Name, Bundle: res.Bundle, Issuer: iss.Server()})
	default:
		m.logEvent(slog.LevelInfo, "certificate taken from storage", EventLoaded, set.Name, leaf, res.Bundle.Meta.Server, nil, slog.String("why", res.Reason))
		m.emit(Event{Kind: EventLoaded, Name: set.Name, Bundle: res.Bundle, Issuer: res.Bundle.Meta.Server, FromStorage: true})
	}
	m.Kick()
}

// finish records the outcome. Failures back off exponentially with jitter
// from one minute to MaxBackoff, never sooner than a Retry-After the CA
// gave; after FallbackAfter failures in a row the next issuer is tried.
// Success brings the next order back to the first issuer.
func (m *Manager) finish(st *state, b *storage.Bundle, err error, leaf *x509.Certificate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.inFlight = false
	m.wake(st)
	st.lastErr = err
	if err != nil {
		st.failures++
		back := min(time.Minute<<min(st.failures-1, 20), m.opts.MaxBackoff)
		back = back/2 + time.Duration(m.opts.Rand()*float64(back/2))
		var p *acmeclient.Problem
		if errors.As(err, &p) && p.RetryAfter > back {
			back = p.RetryAfter
		}
		st.retryAt = m.opts.Now().Add(back)
		st.replaced = "" // the order failed: the next one is for the same window again
		if n := len(m.issuersOf(st.set)); n > 1 && st.failures%m.pol.Load().fallbackAfter == 0 {
			st.issuer = (st.issuer + 1) % n
			m.log.Warn("moving to the next CA", "domain", st.set.Name, "issuer", m.issuersOf(st.set)[st.issuer].Server(), "failures", st.failures)
		}
		return
	}
	m.served(st, b, leaf)
}

// served records b as st's certificate in service; callers hold mu.
func (m *Manager) served(st *state, b *storage.Bundle, leaf *x509.Certificate) {
	st.failures, st.retryAt, st.force, st.issuer = 0, time.Time{}, false, 0
	st.lastErr = nil
	m.wake(st)
	st.bundle, st.leaf = b, leaf
	st.ari = freshARI(b.Meta.RenewalInfo, leaf)
	st.jitter = m.pointFor(leaf)
	for _, w := range st.waiters {
		close(w)
	}
	st.waiters = nil
}

// pointFor returns where inside an ARI window the certificate is renewed:
// a fraction fixed by its serial (JitterOf), so `zoku list`, the admin API
// and every node of a cluster agree on it; with Options.Rand set, Rand.
func (m *Manager) pointFor(leaf *x509.Certificate) float64 {
	if m.randGiven || leaf == nil {
		return m.opts.Rand()
	}
	return JitterOf(leaf)
}

// Subscribe calls f after every event from now on (from manager
// goroutines; f must not block for long). The returned func unsubscribes.
func (m *Manager) Subscribe(f func(Event)) (cancel func()) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	m.subN++
	id := m.subN
	m.subs[id] = f
	return func() {
		m.subMu.Lock()
		defer m.subMu.Unlock()
		delete(m.subs, id)
	}
}

func (m *Manager) emit(ev Event) {
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
	m.subMu.Lock()
	subs := make([]func(Event), 0, len(m.subs))
	for _, f := range m.subs {
		subs = append(subs, f)
	}
	m.subMu.Unlock()
	for _, f := range subs {
		f(ev)
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
