package dns01

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	legodns01 "github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/miekg/dns"
)

const (
	// DefaultPropagationTimeout bounds the propagation check when neither
	// Config nor any provider sets a timeout.
	DefaultPropagationTimeout = 60 * time.Second
	// DefaultPollInterval is the pause between two propagation checks.
	DefaultPollInterval = 2 * time.Second
	// DefaultQueryTimeout bounds one DNS query of the propagation check.
	DefaultQueryTimeout = 5 * time.Second
	// cleanupTimeout bounds one provider's CleanUp, which runs even after
	// the order's context was cancelled.
	cleanupTimeout = 30 * time.Second
)

// ProviderSpec is one DNS provider of a Solver and the zones it serves.
type ProviderSpec struct {
	// Code is the lego provider code or alias ("dnsupdate", "rfc2136", ...).
	Code string
	// Zones are the domain suffixes the provider serves ("example.com"
	// serves example.com and every name below it). The longest matching
	// suffix wins. Empty makes this the default provider, used for names
	// no other provider's zones match; at most one spec may be a default.
	Zones []string
	// Env holds the provider's lego variables (name → value, _FILE
	// variants allowed). When not nil, the provider sees only these of its
	// variables, not the process environment's: each spec has its own
	// credentials. Nil uses the process environment, as lego does.
	Env map[string]string
}

// Config configures a Solver. Only Providers is required.
type Config struct {
	// Providers are the DNS providers and their zones.
	Providers []ProviderSpec
	// Resolvers are the recursive resolvers (host:port) that must see the
	// record; empty means the servers of /etc/resolv.conf. The CNAME
	// lookups of lego's providers use lego's process-wide resolver, which
	// the caller sets (dns01.SetDefaultClient) to the same servers.
	Resolvers []string
	// AuthoritativePort is the port the zone's authoritative servers are
	// asked on; 0 means 53. Set it for a server on a test port.
	AuthoritativePort int
	// DisableAuthoritative skips the check against the zone's
	// authoritative servers (for split-horizon or unreachable servers).
	DisableAuthoritative bool
	// RequireAllResolvers requires every resolver to see the record;
	// by default one is enough.
	RequireAllResolvers bool
	// PropagationWait is a fixed delay before the checks.
	PropagationWait time.Duration
	// DisableChecks skips the checks: wait PropagationWait, then let the CA
	// validate.
	DisableChecks bool
	// PropagationTimeout bounds the checks of one name; zero means the
	// largest timeout of the providers (lego's per-provider default or its
	// _PROPAGATION_TIMEOUT variable), else DefaultPropagationTimeout.
	PropagationTimeout time.Duration
	// PollInterval is the pause between checks; zero means DefaultPollInterval.
	PollInterval time.Duration
	// QueryTimeout bounds one DNS query; zero means DefaultQueryTimeout.
	QueryTimeout time.Duration
}

// Solver is a challenge.Provider for lego's DNS-01 solver that writes each
// record with the provider of its zone. Pass Options() along with it.
// Its methods are safe for concurrent use.
type Solver struct {
	providers []builtProvider
	routes    []route
	def       int // index of the default provider, or -1
	check     *checker
	cfg       Config
	sequence  time.Duration
	log       *slog.Logger

	mu        sync.Mutex
	presented map[presentKey]presented
}

type builtProvider struct {
	code string
	p    challenge.Provider
}

type route struct {
	zone string // canonical, with a trailing dot
	idx  int
}

type presentKey struct{ domain, token, keyAuth string }

type presented struct {
	idx  int
	fqdn string
}

var (
	_ challenge.Provider        = (*Solver)(nil)
	_ challenge.ProviderTimeout = (*Solver)(nil)
)

// NewSolver builds every provider of cfg (reading each one's variables)
// and returns a Solver. It does no DNS I/O. logger nil discards.
func NewSolver(cfg Config, logger *slog.Logger) (*Solver, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("dns-01: no DNS provider configured")
	}
	s := &Solver{def: -1, cfg: cfg, log: logger.With("component", "dns-01"), presented: map[presentKey]presented{}}
	seen := map[string]string{}
	var timeout time.Duration
	for i, spec := range cfg.Providers {
		p, err := newProvider(spec.Code, spec.Env)
		if err != nil {
			return nil, err
		}
		f, _ := find(spec.Code)
		s.providers = append(s.providers, builtProvider{code: f.code, p: p})
		if len(spec.Zones) == 0 {
			if s.def >= 0 {
				return nil, fmt.Errorf("dns-01: providers %q and %q both have no zones; give all but one default provider its zones",
					s.providers[s.def].code, f.code)
			}
			s.def = i
		}
		for _, z := range spec.Zones {
			zone, err := canonicalZone(z)
			if err != nil {
				return nil, err
			}
			if other, dup := seen[zone]; dup {
				return nil, fmt.Errorf("dns-01: zone %s is given to both %q and %q; give each zone to one provider", strings.TrimSuffix(zone, "."), other, f.code)
			}
			seen[zone] = f.code
			s.routes = append(s.routes, route{zone: zone, idx: i})
		}
		if pt, ok := p.(challenge.ProviderTimeout); ok {
			t, _ := pt.Timeout()
			timeout = max(timeout, t)
		}
		if sq, ok := p.(interface{ Sequential() time.Duration }); ok {
			s.sequence = max(s.sequence, sq.Sequential())
		}
	}
	// Longest zone first, so the first match is the longest suffix.
	slices.SortStableFunc(s.routes, func(a, b route) int { return len(b.zone) - len(a.zone) })

	if s.cfg.PropagationTimeout <= 0 {
		s.cfg.PropagationTimeout = timeout
		if timeout <= 0 {
			s.cfg.PropagationTimeout = DefaultPropagationTimeout
		}
	}
	if s.cfg.PollInterval <= 0 {
		s.cfg.PollInterval = DefaultPollInterval
	}
	if s.cfg.QueryTimeout <= 0 {
		s.cfg.QueryTimeout = DefaultQueryTimeout
	}
	if !s.cfg.DisableChecks {
		ck, err := newChecker(s.cfg)
		if err != nil {
			return nil, err
		}
		s.check = ck
	}
	return s, nil
}

// canonicalZone returns z lower-cased with one trailing dot, or an error
// for a value that cannot be a zone.
func canonicalZone(z string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(z))
	name = strings.TrimSuffix(name, ".")
	if name == "" || strings.ContainsAny(name, "*/ :") {
		return "", fmt.Errorf("dns-01: zone %q: want a domain name such as example.com", z)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("dns-01: zone %q: want a domain name such as example.com", z)
	}
	return name + ".", nil
}

// pick returns the index of the provider for fqdn: the longest zone that
// is fqdn or a parent of it, else the default provider.
func (s *Solver) pick(fqdn string) (int, error) {
	name := strings.ToLower(dns.Fqdn(fqdn))
	for _, r := range s.routes {
		if name == r.zone || strings.HasSuffix(name, "."+r.zone) {
			return r.idx, nil
		}
	}
	if s.def >= 0 {
		return s.def, nil
	}
	return -1, fmt.Errorf("dns-01: no DNS provider serves %s; add its zone to a provider's zones, or configure one provider without zones",
		strings.TrimSuffix(name, "."))
}

// Present writes the TXT record for domain with the provider of the zone
// the record lands in: lego's providers follow a CNAME at
// _acme-challenge.<domain> and write at its target, so the target picks the
// provider.
func (s *Solver) Present(ctx context.Context, domain, token, keyAuth string) error {
	info := legodns01.GetChallengeInfo(ctx, domain, keyAuth)
	idx, err := s.pick(info.EffectiveFQDN)
	if err != nil {
		return err
	}
	bp := s.providers[idx]
	fqdn := strings.TrimSuffix(info.EffectiveFQDN, ".")
	attrs := []any{"domain", domain, "fqdn", fqdn, "provider", bp.code}
	if info.EffectiveFQDN != info.FQDN {
		attrs = append(attrs, "cname_from", strings.TrimSuffix(info.FQDN, "."))
	}
	s.log.Info("writing TXT record", attrs...)
	// Remember it before writing: a write that fails half-way may still
	// have left a record that CleanUp must remove.
	s.mu.Lock()
	s.presented[presentKey{domain, token, keyAuth}] = presented{idx: idx, fqdn: fqdn}
	s.mu.Unlock()
	if err := bp.p.Present(ctx, domain, token, keyAuth); err != nil {
		return fmt.Errorf("dns-01: %s: provider %q could not write the TXT record: %w", fqdn, bp.code, err)
	}
	return nil
}

// CleanUp removes the record Present wrote for these arguments, with the
// provider that wrote it. It runs even when ctx is already cancelled (an
// order stopped by Ctrl-C still removes its records), bounded by its own
// timeout. A record this Solver did not present is left alone.
func (s *Solver) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	key := presentKey{domain, token, keyAuth}
	s.mu.Lock()
	pr, ok := s.presented[key]
	delete(s.presented, key)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.cleanUp(ctx, key, pr)
}

// CleanUpAll removes every record presented and not yet cleaned up, for a
// caller whose order ended before lego could clean up (a panic, a crash of
// the order's goroutine). It returns the errors of the removals that failed.
func (s *Solver) CleanUpAll(ctx context.Context) error {
	s.mu.Lock()
	left := s.presented
	s.presented = map[presentKey]presented{}
	s.mu.Unlock()
	var errs []error
	for key, pr := range left {
		errs = append(errs, s.cleanUp(ctx, key, pr))
	}
	return errors.Join(errs...)
}

func (s *Solver) cleanUp(ctx context.Context, key presentKey, pr presented) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	bp := s.providers[pr.idx]
	if err := bp.p.CleanUp(ctx, key.domain, key.token, key.keyAuth); err != nil {
		s.log.Warn("could not remove TXT record", "domain", key.domain, "fqdn", pr.fqdn, "provider", bp.code, "error", err)
		return fmt.Errorf("dns-01: %s: provider %q could not remove the TXT record: %w", pr.fqdn, bp.code, err)
	}
	s.log.Info("removed TXT record", "domain", key.domain, "fqdn", pr.fqdn, "provider", bp.code)
	return nil
}

// Timeout tells lego how long to wait for propagation and how often to
// check. The check of Options enforces the timeout itself and returns
// before lego's own limit.
func (s *Solver) Timeout() (timeout, interval time.Duration) {
	return s.cfg.PropagationWait + s.cfg.PropagationTimeout + 2*s.cfg.PollInterval + s.cfg.QueryTimeout, s.cfg.PollInterval
}

// Sequential makes lego solve the names of an order one after another
// (present, check, validate, remove), pausing the largest sequence interval
// of the providers in between (zero when none asks for one). Providers such
// as dnsupdate replace every TXT record of a name when they write one, so
// an apex and its wildcard, which share _acme-challenge.<name>, cannot be
// presented at the same time.
func (s *Solver) Sequential() time.Duration { return s.sequence }

// Options returns the lego DNS-01 options that install the Solver's
// propagation check; pass them with the Solver (acmeclient.Solvers.DNSOptions).
func (s *Solver) Options() []legodns01.ChallengeOption {
	return []legodns01.ChallengeOption{legodns01.WrapPreCheck(s.preCheck)}
}

// preCheck replaces lego's check: an optional fixed wait, then the
// Solver's own bounded check. It always tells lego to stop polling, with
// the check's error when the record did not show.
func (s *Solver) preCheck(ctx context.Context, domain, fqdn, value string, _ legodns01.PreCheckFunc) (bool, error) {
	if w := s.cfg.PropagationWait; w > 0 {
		s.log.Info("waiting before the propagation check", "domain", domain, "wait", w.String())
		if err := sleep(ctx, w); err != nil {
			return true, fmt.Errorf("dns-01: %s: stopped while waiting: %w", strings.TrimSuffix(fqdn, "."), err)
		}
	}
	if s.check == nil {
		return true, nil
	}
	match := func(values []string) bool { return slices.Contains(values, value) }
	start := time.Now()
	if err := s.check.wait(ctx, fqdn, match); err != nil {
		return true, err
	}
	s.log.Info("TXT record visible", "domain", domain, "fqdn", strings.TrimSuffix(fqdn, "."), "after", time.Since(start).Round(time.Millisecond).String())
	return true, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// validResolver checks a host:port.
func validResolver(r string) error {
	host, port, err := net.SplitHostPort(r)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("dns-01: resolver %q: want host:port, e.g. 127.0.0.1:53", r)
	}
	return nil
}
