package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
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
	env     Env
	eo      engineOptions
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
	cfg     *config.Config // in service
	// issuers are the CAs in service, primary first (certmgr.Settings).
	issuers []certmgr.Issuer
	// pinnedNames are the names the user certificates in service cover.
	pinnedNames map[string]bool
	// hook is the certificate hook in service (a reload may change it).
	hook atomic.Pointer[config.Hook]
	// targetBase is the primary issuer's configuration the targets'
	// issuers copy; a reload swaps it before building new targets.
	targetBase atomic.Pointer[certmgr.ACMEIssuerConfig]
	runCtx     context.Context // the background work's; nil for oneShot
	cancel     context.CancelFunc
	done       chan struct{}
	unsub      func()
}

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
func startEngine(ctx context.Context, env Env, cfg *config.Config, logger *slog.Logger, eo engineOptions) (_ *engine, err error) {
	a := cfg.Certificates.ACME
	// e, not the named result: "return nil, err" clears the result before
	// the deferred cleanup runs.
	e := &engine{log: logger, env: env, eo: eo, http01: http01.NewSolver(), tlsalpn: tlsalpn01.NewSolver(), cache: certmgr.NewCache()}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.http01.Logger, e.tlsalpn.Logger = logger, logger
	acmeclient.SetLegoLogger(logger)
	if e.store, e.closer, err = openStoreWith(ctx, a.Storage, "certificates.acme.storage", &cfg.Storage, env.Getenv); err != nil { // the storage section (storage.go)
		return nil, err
	}
	// Challenge answers go to storage too: in a cluster, the node the CA
	// reaches answers what another node presented.
	e.http01.Shared = &shared.Answers{Store: e.store.Backend(), Prefix: shared.HTTP01Prefix, Logger: logger}
	e.tlsalpn.Shared = &shared.Answers{Store: e.store.Backend(), Prefix: shared.TLSALPN01Prefix, Logger: logger}
	if d := a.Challenges.DNS; d != nil {
		sol, err := dns01.NewSolver(dnsConfig(d, a.Server == serverEmbedded), logger)
		if err != nil {
			return nil, err
		}
		if len(d.Resolvers) > 0 {
			setDNSResolvers(d.Resolvers, 10*time.Second)
		}
		e.dns = &acmeclient.Solvers{DNS01: sol, DNSOptions: sol.Options()}
		e.hasDNS = true
	}
	if a.Server != "" {
		server, err := resolveServer(a.Server)
		if err != nil {
			return nil, fmt.Errorf("config: certificates.acme.server: %w", err)
		}
		if server == serverEmbedded {
			if err := e.startEmbedded(ctx, cfg); err != nil {
				return nil, err
			}
		}
	}
	p, err := e.plan(cfg)
	if err != nil {
		return nil, err
	}
	mo := certmgr.Options{
		Store: e.store, Cache: e.cache, Logger: logger, Prune: eo.prune,
		OnEvent: e.fanOut(ctx, env, eo.onEvent),
		Issuers: p.settings.Issuers, FallbackAfter: p.settings.FallbackAfter, KeyType: p.settings.KeyType,
		Profile: p.settings.Profile, ReuseKey: p.settings.ReuseKey, OnDemand: p.settings.OnDemand,
	}
	if e.ca != nil {
		// A certificate of an embedded root that is gone is ordered again
		// before it is served.
		mo.Usable = func(b *storage.Bundle) error { return e.ca.CheckStored(b.Meta.Server, b.Certificate) }
	}
	if eo.oneShot {
		// `zoku deploy` serves nothing: it needs every stored certificate
		// read before it decides what is due.
		mo.LoadWait = -1
	}
	e.mgr = certmgr.New(mo)
	if eo.oneShot {
		if len(cfg.Targets) > 0 {
			if e.targets, err = e.newRunner(cfg); err != nil {
				return nil, err
			}
		}
		e.commit(ctx, p)
		return e, nil
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.runCtx, e.cancel, e.done = mctx, cancel, make(chan struct{})
	go func() { defer close(e.done); e.mgr.Run(mctx) }()
	return e, nil
}

// enginePlan is what one config needs of the engine, built without
// changing anything: the first half of a reload applied whole or not at
// all.
type enginePlan struct {
	cfg      *config.Config
	settings certmgr.Settings
	primary  *certmgr.ACMEIssuer
	base     certmgr.ACMEIssuerConfig // the primary's, for the targets' issuers
	hook     *config.Hook
	targets  *deploy.Prepared // nil without targets
	runner   *deploy.Runner   // a new runner: the config brings the first targets
}

// plan builds the engine side of cfg. It refuses, with one line, a change
// that cannot be made while zoku runs.
func (e *engine) plan(cfg *config.Config) (*enginePlan, error) {
	a := cfg.Certificates.ACME
	if prev := e.cfg; prev != nil {
		pa := prev.Certificates.ACME
		switch {
		case pa.Storage != a.Storage:
			return nil, errors.New("config: certificates.acme.storage cannot change while zoku runs (it holds the certificates in service); restart zoku to use the new storage")
		case !reflect.DeepEqual(prev.Storage, cfg.Storage):
			return nil, errors.New("config: the storage section (etcd connection, encryption key) cannot change while zoku runs; restart zoku to use it")
		case (pa.Server == serverEmbedded) != (a.Server == serverEmbedded) || pa.Embedded != a.Embedded:
			return nil, errors.New("config: certificates.acme.server: switching to or from the embedded CA, or changing its settings, needs a restart")
		case !reflect.DeepEqual(pa.Challenges.DNS, a.Challenges.DNS):
			return nil, errors.New("config: certificates.acme.challenges.dns cannot change while zoku runs; restart zoku to use the new DNS settings")
		}
	}
	client := acmeclient.Config{Logger: e.log}
	if a.Challenges.HTTP != nil {
		client.Solvers.HTTP01 = e.http01
	}
	if a.Challenges.TLSALPN != nil {
		client.Solvers.TLSALPN01 = e.tlsalpn
	}
	if e.dns != nil {
		client.Solvers.DNS01, client.Solvers.DNSOptions = e.dns.DNS01, e.dns.DNSOptions
	}
	ic := certmgr.ACMEIssuerConfig{Client: client, Store: e.store, Email: a.Email, Register: acmeclient.RegisterOptions{AcceptTOS: a.AcceptTOS}}
	if e.env.IsTerminal != nil && e.env.IsTerminal() {
		ic.Register.AskTOS = promptTOS(e.env)
	}
	if a.EAB != nil {
		ic.Register.EAB = &acmeclient.EAB{KID: a.EAB.KID, HMAC: string(a.EAB.HMAC)}
	}
	switch {
	case e.ca != nil:
		// StableDirectoryURL: the account folder does not follow the port.
		ic.Client.Server, ic.Client.HTTPClient, ic.Reregister, ic.Register.AcceptTOS = embedca.StableDirectoryURL, e.ca.HTTPClient(), true, true
	case a.Server != "":
		server, err := resolveServer(a.Server)
		if err != nil {
			return nil, fmt.Errorf("config: certificates.acme.server: %w", err)
		}
		ic.Client.Server = server
	}
	kt, err := parseKeyType(firstSet(a.KeyType, "ec256"))
	if err != nil {
		return nil, fmt.Errorf("config: certificates.acme.keyType: %w", err)
	}
	p := &enginePlan{cfg: cfg, base: ic, hook: cfg.Certificates.Hook}
	p.primary = certmgr.NewACMEIssuer(ic)
	issuers := []certmgr.Issuer{p.primary}
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
	if e.eo.instrument != nil {
		for i := range issuers {
			issuers[i] = e.eo.instrument(issuers[i])
		}
	}
	p.settings = certmgr.Settings{Issuers: issuers, FallbackAfter: cfg.Certificates.FallbackAfter, KeyType: kt, Profile: a.Profile, ReuseKey: a.ReuseKey}
	if od := cfg.Certificates.OnDemand; od != nil {
		p.settings.OnDemand = &certmgr.OnDemand{Ask: od.Ask, Allow: od.Allow, RatePerMinute: od.RatePerMinute, MaxNames: od.MaxNames}
	}
	// The targets' issuers copy the new primary's settings.
	prevBase := e.targetBase.Swap(&p.base)
	if e.eo.oneShot {
		return p, nil
	}
	switch {
	case e.targets != nil:
		p.targets, err = e.targets.Prepare(cfg)
	case len(cfg.Targets) > 0:
		p.runner, err = e.newRunner(cfg)
	}
	if err != nil {
		e.targetBase.Store(prevBase)
		return nil, err
	}
	return p, nil
}

// commit puts a plan in service; it cannot fail.
func (e *engine) commit(ctx context.Context, p *enginePlan) {
	e.cfg, e.primary, e.issuers = p.cfg, p.primary, p.settings.Issuers
	e.hook.Store(p.hook)
	e.targetBase.Store(&p.base)
	if e.mgr != nil {
		e.mgr.Update(p.settings)
	}
	switch {
	case p.targets != nil:
		e.targets.Commit(p.targets)
	case p.runner != nil:
		e.targets = p.runner
		e.unsub = e.mgr.Subscribe(e.targets.OnEvent)
		if e.runCtx != nil {
			go func() { _ = e.targets.Run(e.runCtx) }()
		}
	}
	e.manage(ctx, p.cfg)
}

// apply is a reload of the engine side: plan, then the router's own
// apply (which may still refuse), then commit. The router's apply runs in
// between, so nothing of the engine changes when it refuses.
func (e *engine) apply(ctx context.Context, cfg *config.Config, router func(*config.Config) error) error {
	p, err := e.plan(cfg)
	if err != nil {
		return err
	}
	if err := router(cfg); err != nil {
		if p.runner != nil {
			_ = p.runner.Close()
		}
		return err
	}
	e.commit(ctx, p)
	return nil
}

// startEmbedded starts the in-process CA.
func (e *engine) startEmbedded(ctx context.Context, cfg *config.Config) error {
	a := cfg.Certificates.ACME
	opts := embedca.Options{Logger: e.log, Validity: a.Embedded.Validity.D(),
		StateDir: embedca.StateDirIn(e.store.Root())} // the root stays across runs
	// certificates.acme.embedded.httpPort/tlsPort, else the challenge entry
	// points' ports, else 80/443.
	opts.HTTPPort, opts.TLSPort = cfg.EmbeddedPorts()
	var err error
	if e.ca, err = embedca.Start(ctx, opts); err != nil {
		return fmt.Errorf("embedded CA: %w; zoku keeps its root in %s: remove or rename what is in the way, or choose another certificates.acme.storage", err, opts.StateDir)
	}
	return nil
}

// newRunner builds a deploy runner for cfg: its targets order with copies
// of the primary issuer that answer challenges their own way, and deploy
// when the manager reports their certificates. It does no I/O.
func (e *engine) newRunner(cfg *config.Config) (*deploy.Runner, error) {
	newIssuer := func(target string, solvers acmeclient.Solvers) certmgr.Issuer {
		c := *e.targetBase.Load()
		c.Client.Solvers = solvers
		var iss certmgr.Issuer = certmgr.NewACMEIssuer(c)
		if e.eo.instrument != nil {
			iss = e.eo.instrument(iss)
		}
		return iss
	}
	out := e.eo.output
	if out == nil {
		out = io.Discard
	}
	base := e.targetBase.Load()
	if base == nil {
		return nil, errors.New("deploy: no CA settings yet")
	}
	return deploy.New(deploy.Options{
		Config: cfg, Store: e.store, Engine: e.mgr, NewIssuer: newIssuer, DNS: e.dns, OrderDue: e.eo.oneShot,
		AccountID: storage.AccountID(base.Email, base.AccountID), AccountEmail: base.Email, Server: base.Client.Server,
		Logger: e.log, Output: out, OnRun: e.eo.onDeploy,
	})
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
		if ds.Issuer != "" {
			// A CA chosen for this certificate (zoku.dev/issuer on an
			// Ingress): the primary, or one of certificates.issuers.
			set.Issuers = e.issuerFor(cfg, ds.Issuer)
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
		// From two files, or from memory (a Kubernetes Secret).
		crt, err := f.Load()
		if err != nil {
			e.log.Error("certificate file skipped", "file", f.Name(), "error", err)
			continue
		}
		pins = append(pins, pinned{names: leafNames(crt.Leaf), crt: &crt})
		// A name served by a user certificate is not ordered for a route.
		for _, n := range leafNames(crt.Leaf) {
			have[strings.ToLower(n)] = true
		}
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

// issuerFor returns the issuer whose server is written as server in the
// config (certificates.acme.server or certificates.issuers[].server), or
// nil (the usual order) when there is none.
func (e *engine) issuerFor(cfg *config.Config, server string) []certmgr.Issuer {
	if len(e.issuers) == 0 {
		return nil
	}
	if server == cfg.Certificates.ACME.Server {
		return e.issuers[:1]
	}
	for i, is := range cfg.Certificates.Issuers {
		if is.Server == server && i+1 < len(e.issuers) {
			return e.issuers[i+1 : i+2]
		}
	}
	return nil
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
	now := map[string]bool{}
	for _, p := range pins {
		e.cache.Pin(p.names, p.crt)
		for _, n := range p.names {
			now[strings.ToLower(n)] = true
		}
		if def == nil {
			def = p.crt
		}
	}
	// Names no longer pinned (a Secret deleted, a file removed) are
	// served by the manager again, or not at all.
	var gone []string
	for n := range e.pinnedNames {
		if !now[n] {
			gone = append(gone, n)
		}
	}
	e.cache.Pin(gone, nil)
	e.pinnedNames = now
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
func (e *engine) fanOut(ctx context.Context, env Env, next func(certmgr.Event)) func(certmgr.Event) {
	return func(ev certmgr.Event) {
		if next != nil {
			next(ev)
		}
		h := e.hook.Load()
		if h == nil || !hookWants(h, ev.Kind) {
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

// hookWants reports whether the hook runs for an event of kind (obtained
// and renewed unless it lists its events).
func hookWants(h *config.Hook, kind certmgr.EventKind) bool {
	if len(h.Events) == 0 {
		return kind == certmgr.EventObtained || kind == certmgr.EventRenewed
	}
	return slices.Contains(h.Events, string(kind))
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
