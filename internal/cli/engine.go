package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/challenge/dns01"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/challenge/shared"
	"github.com/zoku/zoku/internal/challenge/tlsalpn01"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/hook"
	"github.com/zoku/zoku/internal/storage"
)

// engine is the certificate side of `zoku run` and `zoku deploy`: storage,
// the solvers the router serves, the embedded CA when configured, the SNI
// cache, the manager that fills it, and the deploy targets that follow its
// events. Every order of either command goes through the manager's one
// issuing path.
type engine struct {
	log     *slog.Logger
	store   *storage.Store
	closer  io.Closer // the storage backend
	ca      *embedca.CA
	http01  *http01.Solver
	tlsalpn *tlsalpn01.Solver
	cache   *certmgr.Cache
	mgr     *certmgr.Manager
	// primary is the first CA's issuer; targets order with copies of it
	// that answer challenges their own way.
	primary *certmgr.ACMEIssuer
	dns     *acmeclient.Solvers // the DNS-01 solver, nil without challenges.dns
	hasDNS  bool
	targets *deploy.Runner // nil without targets
	cancel  context.CancelFunc
	done    chan struct{}
	unsub   func()
}

// Storage key prefixes of shared challenge answers.
const (
	sharedHTTP01    = "challenges/http-01"
	sharedTLSALPN01 = "challenges/tls-alpn-01"
)

func isALPN(hello *tls.ClientHelloInfo) bool { return tlsalpn01.IsChallengeHello(hello) }

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
	// oneShot is `zoku deploy`: targets order what is due themselves, and
	// the manager does not run in the background.
	oneShot bool
	// output receives what exec targets' commands print.
	output io.Writer
}

// startEngine opens storage, starts the embedded CA if configured, builds
// the issuers, the manager and the targets, and (unless oneShot) starts the
// manager. The ACME account is set up on first use, so a CA that is down
// at start does not stop the router from serving what it has. On error,
// everything started is stopped again.
func startEngine(ctx context.Context, env Env, cfg *config.Config, logger *slog.Logger, eo engineOptions) (e *engine, err error) {
	a := cfg.Certificates.ACME
	e = &engine{log: logger, http01: http01.NewSolver(), tlsalpn: tlsalpn01.NewSolver(), cache: certmgr.NewCache()}
	defer func() {
		if err != nil {
			e.close()
			e = nil
		}
	}()
	e.http01.Logger, e.tlsalpn.Logger = logger, logger
	acmeclient.SetLegoLogger(logger)
	if e.store, e.closer, err = openStoreWith(ctx, a.Storage, "certificates.acme.storage", &cfg.Storage, env.Getenv); err != nil { // the storage section (storage.go)
		return nil, err
	}
	// Challenge answers go to storage too: in a cluster, the node the CA
	// reaches answers what another node presented.
	e.http01.Shared = &shared.Answers{Store: e.store.Backend(), Prefix: sharedHTTP01, Logger: logger}
	e.tlsalpn.Shared = &shared.Answers{Store: e.store.Backend(), Prefix: sharedTLSALPN01, Logger: logger}
	client := acmeclient.Config{Logger: logger, Solvers: acmeclient.Solvers{HTTP01: e.http01, TLSALPN01: e.tlsalpn}}
	if a.Challenges.HTTP == nil {
		client.Solvers.HTTP01 = nil
	}
	if a.Challenges.TLSALPN == nil {
		client.Solvers.TLSALPN01 = nil
	}
	if d := a.Challenges.DNS; d != nil {
		sol, err := dns01.NewSolver(dnsConfig(d, a.Server == serverEmbedded), logger)
		if err != nil {
			return nil, err
		}
		if len(d.Resolvers) > 0 {
			setDNSResolvers(d.Resolvers, 10*time.Second)
		}
		client.Solvers.DNS01, client.Solvers.DNSOptions = sol, sol.Options()
		e.dns = &acmeclient.Solvers{DNS01: sol, DNSOptions: sol.Options()}
		e.hasDNS = true
	}
	ic := certmgr.ACMEIssuerConfig{Client: client, Store: e.store, Email: a.Email, Register: acmeclient.RegisterOptions{AcceptTOS: a.AcceptTOS}}
	if env.IsTerminal != nil && env.IsTerminal() {
		ic.Register.AskTOS = promptTOS(env)
	}
	if a.EAB != nil {
		ic.Register.EAB = &acmeclient.EAB{KID: a.EAB.KID, HMAC: string(a.EAB.HMAC)}
	}
	if a.Server != "" {
		server, err := resolveServer(a.Server)
		if err != nil {
			return nil, fmt.Errorf("config: certificates.acme.server: %w", err)
		}
		ic.Client.Server = server
		if server == serverEmbedded {
			if err := e.startEmbedded(ctx, cfg, &ic); err != nil {
				return nil, err
			}
		}
	}
	kt, err := parseKeyType(firstSet(a.KeyType, "ec256"))
	if err != nil {
		return nil, fmt.Errorf("config: certificates.acme.keyType: %w", err)
	}
	e.primary = certmgr.NewACMEIssuer(ic)
	issuers := []certmgr.Issuer{e.primary}
	for i, is := range cfg.Certificates.Issuers {
		server, err := resolveServer(is.Server)
		if err != nil || server == serverEmbedded {
			return nil, fmt.Errorf("config: certificates.issuers[%d].server: %q is not a CA directory URL or code", i, is.Server)
		}
		fc := ic
		fc.Client.Server, fc.Client.HTTPClient, fc.Reregister, fc.StorageServer = server, nil, false, ""
		fc.Register.EAB = nil
		fc.Email = firstSet(is.Email, a.Email)
		if is.EAB != nil {
			fc.Register.EAB = &acmeclient.EAB{KID: is.EAB.KID, HMAC: string(is.EAB.HMAC)}
		}
		issuers = append(issuers, certmgr.NewACMEIssuer(fc))
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
	if len(cfg.Targets) > 0 {
		if err := e.startTargets(cfg, logger, eo); err != nil {
			return nil, err
		}
	}
	if eo.oneShot {
		return e, nil
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel, e.done = cancel, make(chan struct{})
	go func() { defer close(e.done); e.mgr.Run(mctx) }()
	if e.targets != nil {
		go func() { _ = e.targets.Run(mctx) }()
	}
	return e, nil
}

// startEmbedded starts the in-process CA and points ic at it.
func (e *engine) startEmbedded(ctx context.Context, cfg *config.Config, ic *certmgr.ACMEIssuerConfig) error {
	a := cfg.Certificates.ACME
	opts := embedca.Options{Logger: e.log, Validity: a.Embedded.Validity.D(),
		StateDir: embedca.StateDirIn(e.store.Root())} // the root stays across runs
	if h := a.Challenges.HTTP; h != nil {
		opts.HTTPPort = cfg.EntryPoints[h.EntryPoint].Port()
	}
	if t := a.Challenges.TLSALPN; t != nil {
		opts.TLSPort = cfg.EntryPoints[t.EntryPoint].Port()
	}
	var err error
	if e.ca, err = embedca.Start(ctx, opts); err != nil {
		return fmt.Errorf("embedded CA: %w", err)
	}
	// StableDirectoryURL: the account folder does not follow the port.
	ic.Client.Server, ic.Client.HTTPClient, ic.Reregister, ic.Register.AcceptTOS = embedca.StableDirectoryURL, e.ca.HTTPClient(), true, true
	return nil
}

// startTargets builds the deploy runner: its targets order with copies of
// the primary issuer that answer challenges their own way, and deploy when
// the manager reports their certificates.
func (e *engine) startTargets(cfg *config.Config, logger *slog.Logger, eo engineOptions) error {
	base := e.primary.Config()
	newIssuer := func(target string, solvers acmeclient.Solvers) certmgr.Issuer {
		c := base
		c.Client.Solvers = solvers
		var iss certmgr.Issuer = certmgr.NewACMEIssuer(c)
		if eo.instrument != nil {
			iss = eo.instrument(iss)
		}
		return iss
	}
	out := eo.output
	if out == nil {
		out = io.Discard
	}
	var err error
	e.targets, err = deploy.New(deploy.Options{
		Config: cfg, Store: e.store, Engine: e.mgr, NewIssuer: newIssuer, DNS: e.dns, OrderDue: eo.oneShot,
		AccountID: e.primary.AccountID(), AccountEmail: e.primary.Email(), Server: e.primary.Server(),
		Logger: logger, Output: out, OnRun: eo.onDeploy,
	})
	if err != nil {
		return err
	}
	if !eo.oneShot {
		e.unsub = e.mgr.Subscribe(e.targets.OnEvent)
	}
	return nil
}

// desired turns the config into the set of managed certificates (domains,
// routed hosts, and the targets' certificates) and pins the user-provided
// ones. It builds everything and changes nothing; apply makes it live.
func (e *engine) desired(cfg *config.Config) ([]certmgr.Set, []pinned, error) {
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
	byName := map[string]int{}
	add := func(s certmgr.Set) {
		if i, ok := byName[s.Name]; ok {
			// A target's own way of answering challenges wins: the CA
			// reaches the name where the target serves it.
			if len(s.Issuers) > 0 {
				sets[i].Issuers = s.Issuers
			}
			return
		}
		byName[s.Name] = len(sets)
		sets = append(sets, s)
		for _, d := range s.Domains {
			have[d] = true
		}
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
		add(set)
	}
	if e.targets != nil {
		for _, s := range e.targets.Sets() {
			add(s)
		}
	}
	var pins []pinned
	for _, f := range c.Files {
		crt, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			e.log.Error("certificate file skipped", "file", f.CertFile, "error", err)
			continue
		}
		pins = append(pins, pinned{names: leafNames(crt.Leaf), crt: &crt})
	}
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
			add(certmgr.Set{Name: names[0], Domains: names})
		}
	}
	return sets, pins, nil
}

// pinned is a certificate from files in the config.
type pinned struct {
	names []string
	crt   *tls.Certificate
}

// manage applies the config's certificates: pins the files (the first is
// also the default for unmatched SNI) and hands the sets to the manager.
func (e *engine) manage(ctx context.Context, cfg *config.Config) {
	sets, pins, _ := e.desired(cfg)
	var def *tls.Certificate
	for _, p := range pins {
		e.cache.Pin(p.names, p.crt)
		if def == nil {
			def = p.crt
		}
	}
	// The first user certificate also answers handshakes whose name
	// matches nothing (or that send no SNI); without one they fail.
	e.cache.SetDefault(def)
	e.mgr.Manage(ctx, sets)
}

// close stops the manager and the targets, the embedded CA and the
// storage connection. It is safe on a half-built engine.
func (e *engine) close() {
	if e == nil {
		return
	}
	if e.unsub != nil {
		e.unsub()
	}
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	if e.targets != nil {
		_ = e.targets.Close()
	}
	if e.ca != nil {
		_ = e.ca.Close()
	}
	if e.closer != nil {
		_ = e.closer.Close()
	}
}

func leafNames(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

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
