package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/challenge/dns01"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/challenge/tlsalpn01"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/hook"
	"github.com/zoku/zoku/internal/storage"
)

// engine is the certificate side of `zoku run`: storage, the solvers the
// router serves, the embedded CA when configured, the SNI cache and the
// manager that fills it.
type engine struct {
	log     *slog.Logger
	store   *storage.Store
	ca      *embedca.CA
	http01  *http01.Solver
	tlsalpn *tlsalpn01.Solver
	cache   *certmgr.Cache
	mgr     *certmgr.Manager
	hasDNS  bool
	// acme is the primary CA's account settings (deploy targets order
	// through the same account).
	acme   acmeclient.Config
	cancel context.CancelFunc
	done   chan struct{}
}

func isALPN(hello *tls.ClientHelloInfo) bool { return tlsalpn01.IsChallengeHello(hello) }

// startEngine opens storage, starts the embedded CA if configured, and
// starts the manager. The ACME account is set up on first use, so a CA
// that is down at start does not stop the router from serving what it has.
// engineOptions are the `zoku run` flags and hooks that reach the engine.
type engineOptions struct {
	// onEvent sees every certificate event (tests, admin, metrics).
	onEvent func(certmgr.Event)
	// prune archives the files of certificates no longer needed.
	prune bool
	// onDeploy sees every deploy run's results (tests).
	onDeploy func(target string, results []deploy.Result)
	// instrument wraps each issuer (metrics); nil leaves them as they are.
	instrument func(certmgr.Issuer) certmgr.Issuer
}

func startEngine(ctx context.Context, env Env, cfg *config.Config, logger *slog.Logger, eo engineOptions) (*engine, error) {
	a := cfg.Certificates.ACME
	e := &engine{log: logger, http01: http01.NewSolver(), tlsalpn: tlsalpn01.NewSolver(), cache: certmgr.NewCache()}
	e.http01.Logger, e.tlsalpn.Logger = logger, logger
	acmeclient.SetLegoLogger(logger)
	var err error
	if e.store, err = storage.Open(a.Storage); err != nil {
		return nil, err
	}
	acfg := acmeclient.Config{
		Store: e.store, Email: a.Email, AcceptTOS: a.AcceptTOS, Logger: logger,
		Solvers: acmeclient.Solvers{HTTP01: e.http01, TLSALPN01: e.tlsalpn},
	}
	if a.Challenges.HTTP == nil {
		acfg.Solvers.HTTP01 = nil
	}
	if a.Challenges.TLSALPN == nil {
		acfg.Solvers.TLSALPN01 = nil
	}
	if d := a.Challenges.DNS; d != nil {
		sol, err := dns01.NewSolver(dnsConfig(d, a.Server == serverEmbedded), logger)
		if err != nil {
			return nil, err
		}
		if len(d.Resolvers) > 0 {
			setDNSResolvers(d.Resolvers, 10*time.Second)
		}
		acfg.Solvers.DNS01, acfg.Solvers.DNSOptions = sol, sol.Options()
		e.hasDNS = true
	}
	if a.EAB != nil {
		acfg.EAB = &acmeclient.EAB{KID: a.EAB.KID, HMAC: string(a.EAB.HMAC)}
	}
	if a.Server != "" {
		server, err := resolveServer(a.Server)
		if err != nil {
			return nil, fmt.Errorf("config: certificates.acme.server: %w", err)
		}
		acfg.Server = server
		if server == serverEmbedded {
			opts := embedca.Options{Logger: logger, Validity: a.Embedded.Validity.D(), Addr: embeddedAddr,
				StateDir: embedca.StateDirIn(e.store.Root())} // the root stays across runs
			if h := a.Challenges.HTTP; h != nil {
				opts.HTTPPort = cfg.EntryPoints[h.EntryPoint].Port()
			}
			if t := a.Challenges.TLSALPN; t != nil {
				opts.TLSPort = cfg.EntryPoints[t.EntryPoint].Port()
			}
			if e.ca, err = embedca.Start(ctx, opts); err != nil {
				opts.Addr = ""
				if e.ca, err = embedca.Start(ctx, opts); err != nil {
					return nil, fmt.Errorf("embedded CA: %w", err)
				}
			}
			// StableDirectoryURL: the account folder does not follow the port.
			acfg.Server, acfg.HTTPClient, acfg.Reregister, acfg.AcceptTOS = embedca.StableDirectoryURL, e.ca.HTTPClient(), true, true
		}
	}
	kt, err := parseKeyType(firstSet(a.KeyType, "ec256"))
	if err != nil {
		return nil, fmt.Errorf("config: certificates.acme.keyType: %w", err)
	}
	e.acme = acfg
	issuers := []certmgr.Issuer{&lazyIssuer{cfg: acfg}}
	for i, is := range cfg.Certificates.Issuers {
		server, err := resolveServer(is.Server)
		if err != nil || server == serverEmbedded {
			return nil, fmt.Errorf("config: certificates.issuers[%d].server: %q is not a CA directory URL or code", i, is.Server)
		}
		fc := acfg
		fc.Server, fc.HTTPClient, fc.Reregister, fc.EAB = server, nil, false, nil
		fc.Email = firstSet(is.Email, a.Email)
		if is.EAB != nil {
			fc.EAB = &acmeclient.EAB{KID: is.EAB.KID, HMAC: string(is.EAB.HMAC)}
		}
		issuers = append(issuers, &lazyIssuer{cfg: fc})
	}
	if eo.instrument != nil {
		for i := range issuers {
			issuers[i] = eo.instrument(issuers[i])
		}
	}
	mo := certmgr.Options{
		Issuers: issuers, FallbackAfter: cfg.Certificates.FallbackAfter,
		Store: e.store, Cache: e.cache, Logger: logger,
		KeyType: kt, Profile: a.Profile, ReuseKey: a.ReuseKey, Prune: eo.prune,
		OnEvent: e.fanOut(ctx, env, cfg.Certificates.Hook, eo.onEvent),
	}
	if e.ca != nil {
		// A certificate of an embedded root that is gone is ordered again
		// before it is served.
		mo.Usable = func(b *storage.Bundle) error { return e.ca.CheckStored(b.Meta.Server, b.Certificate) }
	}
	if od := cfg.Certificates.OnDemand; od != nil {
		mo.OnDemand = &certmgr.OnDemand{Ask: od.Ask, Allow: od.Allow, RatePerMinute: od.RatePerMinute, MaxNames: od.MaxNames}
	}
	e.mgr = certmgr.New(mo)
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel, e.done = cancel, make(chan struct{})
	go func() { defer close(e.done); e.mgr.Run(mctx) }()
	return e, nil
}

// manage turns the config into the set of managed certificates and the
// user-provided ones.
func (e *engine) manage(cfg *config.Config) {
	c := cfg.Certificates
	var sets []certmgr.Set
	have := map[string]bool{} // every name (and wildcard) a set covers
	covered := func(host string) bool {
		if have[host] {
			return true
		}
		i := strings.IndexByte(host, '.')
		return i > 0 && have["*"+host[i:]]
	}
	for _, ds := range c.Domains {
		names, err := acmeclient.NormalizeDomains(append([]string{ds.Main}, ds.SANs...), e.hasDNS)
		if err != nil {
			e.log.Error("certificates.domains entry skipped", "domain", ds.Main, "error", err)
			continue
		}
		set := certmgr.Set{Name: names[0], Domains: names, Profile: ds.Profile, ReuseKey: ds.ReuseKey}
		if ds.KeyType != "" {
			set.KeyType, _ = parseKeyType(ds.KeyType) // validated with the config
		}
		sets = append(sets, set)
	}
	for _, s := range sets {
		for _, d := range s.Domains {
			have[d] = true
		}
	}
	var def *tls.Certificate
	for _, f := range c.Files {
		crt, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			e.log.Error("certificate file skipped", "file", f.CertFile, "error", err)
			continue
		}
		e.cache.Pin(leafNames(crt.Leaf), &crt)
		if def == nil {
			def = &crt
		}
	}
	// The first user certificate also answers handshakes whose name
	// matches nothing (or that send no SNI); without one they fail.
	e.cache.SetDefault(def)
	if c.OnHostRule && cfg.Certificates.ACME.Server != "" {
		for _, h := range cfg.RoutedHosts() {
			if covered(h) {
				continue
			}
			names, err := acmeclient.NormalizeDomains([]string{h}, e.hasDNS)
			if err != nil {
				e.log.Warn("routed host gets no certificate", "domain", h, "error", err)
				continue
			}
			sets = append(sets, certmgr.Set{Name: names[0], Domains: names})
		}
	}
	e.mgr.Manage(sets)
}

func (e *engine) close() {
	e.cancel()
	<-e.done
	if e.ca != nil {
		_ = e.ca.Close()
	}
}

func leafNames(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// lazyIssuer sets up the ACME account on first use and keeps it; a failure
// (CA down) is returned to the manager, which backs off and tries again.
type lazyIssuer struct {
	cfg acmeclient.Config
	mu  sync.Mutex
	c   *acmeclient.Client
}

func (l *lazyIssuer) client(ctx context.Context) (*acmeclient.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		return l.c, nil
	}
	if l.cfg.Server == "" {
		return nil, fmt.Errorf("no CA configured; set certificates.acme.server")
	}
	c, err := acmeclient.New(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	l.c = c
	return c, nil
}

func (l *lazyIssuer) Obtain(ctx context.Context, req acmeclient.ObtainRequest) (*storage.Bundle, error) {
	c, err := l.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Obtain(ctx, req)
}

func (l *lazyIssuer) Renew(ctx context.Context, old *storage.Bundle, opts acmeclient.RenewOptions) (*storage.Bundle, error) {
	c, err := l.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Renew(ctx, old, opts)
}

func (l *lazyIssuer) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*storage.RenewalInfo, error) {
	c, err := l.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.RenewalInfo(ctx, leaf)
}

func (l *lazyIssuer) Revoke(ctx context.Context, b *storage.Bundle, reason *uint) error {
	c, err := l.client(ctx)
	if err != nil {
		return err
	}
	return c.Revoke(ctx, b, reason)
}

// Server is the CA's directory URL (the embedded CA's own once started).
func (l *lazyIssuer) Server() string { return l.cfg.Server }

// fanOut returns the manager's event sink: the caller's sink, and the
// configured hook command for the events it names.
func (e *engine) fanOut(ctx context.Context, env Env, h *config.Hook, next func(certmgr.Event)) func(certmgr.Event) {
	want := map[certmgr.EventKind]bool{certmgr.EventObtained: true, certmgr.EventRenewed: true}
	if h != nil && len(h.Events) > 0 {
		want = map[certmgr.EventKind]bool{}
		for _, ev := range h.Events {
			want[certmgr.EventKind(ev)] = true
		}
	}
	return func(ev certmgr.Event) {
		if next != nil {
			next(ev)
		}
		if h == nil || !want[ev.Kind] {
			return
		}
		// The hook runs on its own goroutine, bounded by its timeout, so a
		// slow script never holds up renewals.
		go func() {
			hev := hook.Event{Name: ev.Name, Domains: []string{ev.Name}, Server: ev.Issuer, Paths: e.store.CertPaths(ev.Name)}
			if b := ev.Bundle; b != nil {
				hev.Domains, hev.KeyType = b.Meta.Domains, string(b.Meta.KeyType)
				if lineage, err := hook.WriteLineage(e.store.Root(), b); err == nil {
					hev.Lineage = lineage
				}
			}
			if err := hook.Run(ctx, h.Command, hev, h.Timeout.D(), env.Stderr, env.Stderr); err != nil {
				e.log.Error("certificate hook failed", "domain", ev.Name, "event", string(ev.Kind), "error", err)
			}
		}()
	}
}

// dnsConfig maps the config's dns challenge onto the DNS-01 solver's.
func dnsConfig(d *config.DNSChallenge, embedded bool) dns01.Config {
	secrets := func(m map[string]config.Secret) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = string(v)
		}
		return out
	}
	c := dns01.Config{
		Resolvers: d.Resolvers, AuthoritativePort: d.AuthoritativePort,
		DisableAuthoritative: d.DisableAuthoritativeCheck || embedded, RequireAllResolvers: d.RequireAllResolvers,
		PropagationWait: d.PropagationWait.D(), DisableChecks: d.PropagationWait > 0, PropagationTimeout: d.PropagationTimeout.D(),
	}
	if d.Provider != "" {
		c.Providers = []dns01.ProviderSpec{{Code: d.Provider, Env: secrets(d.Env)}}
	}
	for _, p := range d.Providers {
		c.Providers = append(c.Providers, dns01.ProviderSpec{Code: p.Code, Zones: p.Zones, Env: secrets(p.Env)})
	}
	return c
}
