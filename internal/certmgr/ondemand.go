package certmgr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/zoku/zoku/internal/acmeclient"
)

// OnDemand orders certificates for names first seen in a TLS handshake's
// SNI, only when a permission check allows it. It is off unless set. A
// name is allowed when it matches Allow (if given) and the Ask endpoint
// (if given) answers 200 to GET <Ask>?domain=<name>. Refused names are
// remembered for DenyTTL so a scanner cannot make zoku hammer the Ask
// endpoint; orders are rate limited and capped.
type OnDemand struct {
	// Ask is a URL asked with ?domain=<name>; 200 means yes.
	Ask string
	// Allow are patterns: an exact name, or "*.example.com" for any name
	// under example.com (one or more labels).
	Allow []string
	// RatePerMinute bounds new orders per minute; zero means 10.
	RatePerMinute int
	// MaxNames caps the names ever ordered on demand; zero means 1000.
	MaxNames int
	// DenyTTL is how long a refusal is remembered; zero means 10 minutes.
	DenyTTL time.Duration
	// DenyCacheSize bounds the refusals remembered (the oldest are
	// forgotten first); zero means 100,000.
	DenyCacheSize int
	// Wait is how long a handshake waits for a new certificate; zero
	// means 10 s. After that the handshake fails and the order goes on.
	Wait time.Duration
	// HTTPClient asks Ask; nil means a client with a 5 s timeout.
	HTTPClient *http.Client
}

type onDemandState struct {
	cfg     *OnDemand
	limiter *rate.Limiter
	denied  *denyCache
	flight  singleflight.Group // one permission check in flight per name

	mu      sync.Mutex
	ordered int // guarded by mu
}

func newOnDemandState(cfg *OnDemand) *onDemandState {
	c := *cfg
	if c.RatePerMinute <= 0 {
		c.RatePerMinute = 10
	}
	if c.MaxNames <= 0 {
		c.MaxNames = 1000
	}
	if c.DenyTTL <= 0 {
		c.DenyTTL = 10 * time.Minute
	}
	if c.DenyCacheSize <= 0 {
		c.DenyCacheSize = 100_000
	}
	if c.Wait <= 0 {
		c.Wait = 10 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	return &onDemandState{
		cfg:     &c,
		limiter: rate.NewLimiter(rate.Limit(float64(c.RatePerMinute)/60), c.RatePerMinute),
		denied:  newDenyCache(c.DenyCacheSize),
	}
}

// GetCertificate serves by SNI from the cache; with on-demand TLS on, a
// name with no certificate yet is checked, ordered, and waited for (up to
// OnDemand.Wait). Many handshakes for one new name share one check and one
// order.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	crt, err := m.opts.Cache.GetCertificate(hello)
	if err != nil && hello.ServerName != "" && m.loadFor(strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))) {
		// Still loading at start: this name's certificate was read now.
		crt, err = m.opts.Cache.GetCertificate(hello)
	}
	od := m.pol.Load().ondemand
	if err == nil || od == nil || hello.ServerName == "" {
		return crt, err
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background() // a hello made by hand, not by a handshake
	}
	if err := m.permit(ctx, od, name); err != nil {
		m.log.Debug("on-demand certificate refused", "domain", name, "error", err)
		return nil, ErrNoCertificate
	}
	done := m.waiter(name)
	wait := time.NewTimer(od.cfg.Wait)
	defer wait.Stop()
	select {
	case <-done:
		return m.opts.Cache.GetCertificate(hello)
	case <-wait.C:
		return nil, fmt.Errorf("certmgr: certificate for %s is still being ordered", name)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waiter returns a channel closed once a certificate for name is served.
func (m *Manager) waiter(name string) <-chan struct{} {
	ch := make(chan struct{})
	m.mu.Lock()
	st, ok := m.states[name]
	if !ok || st.leaf != nil {
		close(ch)
	} else {
		st.waiters = append(st.waiters, ch)
	}
	m.mu.Unlock()
	return ch
}

// permit applies the on-demand policy to name. A name with a state is
// being ordered (or was) already. Otherwise one check runs per name at a
// time (the others wait for its answer); a refusal is remembered for
// DenyTTL; an allowed name gets its state before the check returns, so it
// is counted once.
func (m *Manager) permit(ctx context.Context, od *onDemandState, name string) error {
	if m.known(name) {
		return nil
	}
	now := m.opts.Now()
	if od.denied.has(name, now) {
		return errors.New("refused recently")
	}
	_, err, _ := od.flight.Do(name, func() (any, error) {
		if m.known(name) {
			return nil, nil
		}
		// The first handshake's cancel must not fail the others.
		err := m.check1(context.WithoutCancel(ctx), od, name, now)
		if err != nil {
			od.denied.add(name, now.Add(od.cfg.DenyTTL))
			return nil, err
		}
		m.mu.Lock()
		if _, ok := m.states[name]; !ok {
			m.add(&state{set: Set{Name: name, Domains: []string{name}}, onDemand: true, jitter: m.opts.Rand()})
		}
		m.mu.Unlock()
		m.Kick()
		return nil, nil
	})
	return err
}

func (m *Manager) known(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.states[name]
	return ok
}

// check1 is the permission check proper: name syntax, allowlist, ask
// endpoint, then the cap and the rate, counted across every process on
// the storage.
func (m *Manager) check1(ctx context.Context, od *onDemandState, name string, now time.Time) error {
	if _, err := acmeclient.NormalizeDomains([]string{name}, false); err != nil {
		return err
	}
	if len(od.cfg.Allow) > 0 && !matchAny(od.cfg.Allow, name) {
		return errors.New("not in the allowlist")
	}
	if od.cfg.Ask != "" {
		if err := od.ask(ctx, name); err != nil {
			return err
		}
	}
	od.mu.Lock()
	if od.ordered >= od.cfg.MaxNames {
		od.mu.Unlock()
		return fmt.Errorf("on-demand cap of %d names reached", od.cfg.MaxNames)
	}
	if !od.limiter.AllowN(now, 1) {
		od.mu.Unlock()
		return errors.New("on-demand rate limit reached")
	}
	od.ordered++
	od.mu.Unlock()
	return m.countShared(ctx, od, name, now)
}

func (od *onDemandState) ask(ctx context.Context, name string) error {
	u, err := url.Parse(od.cfg.Ask)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := od.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask endpoint: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ask endpoint said %d", resp.StatusCode)
	}
	return nil
}

// matchAny matches exact names and "*.domain" patterns (any depth).
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		p = strings.ToLower(p)
		if p == name || (strings.HasPrefix(p, "*.") && strings.HasSuffix(name, p[1:])) {
			return true
		}
	}
	return false
}
