package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	legodns01 "github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/dnspersist01"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/challenge/dns01"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/challenge/shared"
	"github.com/zoku/zoku/internal/challenge/tlsalpn01"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
)

// session is everything one command run needs to talk to a CA: the store,
// the challenge listeners, the embedded CA when asked for, and the
// certificate manager whose issuing path every order takes. close releases
// all of it.
type session struct {
	log     *slog.Logger
	store   *storage.Store
	ca      *embedca.CA
	issuer  *certmgr.ACMEIssuer
	mgr     *certmgr.Manager
	others  map[string]*certmgr.ACMEIssuer // issuerAt, by directory URL
	closers []func() error
}

// dnsClientMu serialises changes of lego's process-wide DNS resolver.
var dnsClientMu sync.Mutex

// openSession binds the challenge listeners (so a busy port fails before
// any order), opens the store, starts the embedded CA when --server is
// "embedded", and sets up the manager. The account is loaded or registered
// at the first order.
func openSession(ctx context.Context, env Env, af *accountFlags, cf *challengeFlags, needChallenges bool) (s *session, err error) {
	logger, err := newLogger(env.Stderr, af.logFormat, af.verbose)
	if err != nil {
		return nil, err
	}
	acmeclient.SetLegoLogger(logger)
	sess := &session{log: logger}
	s = sess
	defer func() {
		if err != nil {
			sess.close()
		}
	}()

	server, err := resolveServer(af.server)
	if err != nil {
		return nil, err
	}
	if needChallenges && !cf.any() {
		return nil, errors.New("no challenge selected; pass --http, --tls, --dns PROVIDER or --dns-persist")
	}
	if cf.dns != "" && cf.persist {
		return nil, errors.New("--dns and --dns-persist are exclusive: lego prefers dns-01 when both are offered; pick one")
	}
	eab, err := eabFrom(env, af)
	if err != nil {
		return nil, err
	}

	var solvers acmeclient.Solvers
	httpPort, tlsPort := 0, 0
	// The challenge answers are also kept in storage once it is open, so
	// a zoku run on the same storage can answer for this process.
	answers := func(prefix string) *shared.Answers { return &shared.Answers{Prefix: prefix, Logger: logger} }
	httpAnswers, tlsAnswers := answers(shared.HTTP01Prefix), answers(shared.TLSALPN01Prefix)
	if cf.http {
		sol := http01.NewSolver()
		sol.Shared = httpAnswers
		srv, err := sol.Listen(cf.httpPort)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, srv.Close)
		solvers.HTTP01, httpPort = sol, srv.Port()
		logger.Info("http-01 server listening", "address", srv.Addr().String())
	}
	if cf.tls {
		sol := tlsalpn01.NewSolver()
		sol.Shared = tlsAnswers
		srv, err := sol.Listen(cf.tlsPort)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, srv.Close)
		solvers.TLSALPN01, tlsPort = sol, srv.Port()
		logger.Info("tls-alpn-01 server listening", "address", srv.Addr().String())
	}
	if len(cf.resolvers) > 0 {
		for _, r := range cf.resolvers {
			if _, _, err := net.SplitHostPort(r); err != nil {
				return nil, fmt.Errorf("invalid --dns.resolvers %q: want host:port, e.g. 127.0.0.1:53", r)
			}
		}
		setDNSResolvers(cf.resolvers, cf.dnsTimeout)
	}
	if cf.dns != "" {
		sol, err := dns01.NewSolver(dns01.Config{
			Providers: []dns01.ProviderSpec{{Code: cf.dns}}, Resolvers: cf.resolvers,
			AuthoritativePort: cf.nsPort, DisableAuthoritative: cf.disableANS || server == serverEmbedded,
			RequireAllResolvers: cf.requireAll, PropagationWait: cf.dnsWait, DisableChecks: cf.dnsWait > 0,
			PropagationTimeout: cf.propTimeout, QueryTimeout: cf.dnsTimeout,
		}, logger)
		if err != nil {
			return nil, err
		}
		solvers.DNS01, solvers.DNSOptions = sol, sol.Options()
		// Records left by an interrupted order are removed on the way out.
		s.closers = append(s.closers, func() error { return sol.CleanUpAll(context.WithoutCancel(ctx)) })
	}

	// Storage is opened (and created) only once the command line proved
	// sound, so a typo leaves no empty folder behind.
	store, closer, err := openStoreWith(ctx, af.path, "--path", nil, env.Getenv) // storage key: ZOKU_STORAGE_KEY_FILE (storage.go)
	if err != nil {
		return nil, err
	}
	s.store = store
	s.closers = append(s.closers, closer.Close)
	httpAnswers.Store, tlsAnswers.Store = store.Backend(), store.Backend()
	ic := certmgr.ACMEIssuerConfig{
		Client: acmeclient.Config{Server: server, Solvers: solvers, Logger: logger},
		Store:  s.store, Email: af.email, AccountID: af.accountID,
		Register: acmeclient.RegisterOptions{EAB: eab, AcceptTOS: af.acceptTOS},
	}
	if env.IsTerminal != nil && env.IsTerminal() {
		ic.Register.AskTOS = promptTOS(env)
	}
	if server == serverEmbedded {
		opts := embedca.Options{HTTPPort: httpPort, TLSPort: tlsPort, Logger: logger,
			// The root (and root.pem) stays the same across runs.
			StateDir: embedca.StateDirIn(s.store.Root())}
		if len(cf.resolvers) > 0 {
			opts.Upstream = cf.resolvers[0]
		}
		if s.ca, err = embedca.Start(ctx, opts); err != nil {
			return nil, fmt.Errorf("embedded CA: %w", err)
		}
		s.closers = append(s.closers, s.ca.Close)
		// Whatever port the CA got, the account folder and the stored
		// URLs stay the same (the CA's HTTPClient reaches this URL).
		ic.Client.Server, ic.Client.HTTPClient = embedca.StableDirectoryURL, s.ca.HTTPClient()
		// The embedded CA forgets accounts when the process ends; the
		// stored key is registered again each run.
		ic.Reregister, ic.Register.AcceptTOS = true, true
	}
	s.issuer = certmgr.NewACMEIssuer(ic)
	mo := certmgr.Options{Issuer: s.issuer, Store: s.store, Cache: certmgr.NewCache(), Logger: logger}
	if s.ca != nil {
		// A certificate of an embedded root that is gone is replaced, never kept.
		mo.Usable = func(b *storage.Bundle) error { return s.ca.CheckStored(b.Meta.Server, b.Certificate) }
	}
	s.mgr = certmgr.New(mo)
	return s, nil
}

// issuerAt returns an issuer like the session's for another CA (the one a
// stored certificate came from), with the same account settings and
// solvers; one per CA.
func (s *session) issuerAt(server string) *certmgr.ACMEIssuer {
	if iss, ok := s.others[server]; ok {
		return iss
	}
	cfg := s.issuer.Config()
	cfg.Client.Server, cfg.Client.HTTPClient, cfg.StorageServer, cfg.Reregister = server, nil, "", false
	iss := certmgr.NewACMEIssuer(cfg)
	if s.others == nil {
		s.others = map[string]*certmgr.ACMEIssuer{}
	}
	s.others[server] = iss
	return iss
}

// embeddedRoot is where the embedded CA's root certificate is written.
func (s *session) embeddedRoot() string {
	return filepath.Join(s.store.Root(), "embedded-ca", "root.pem")
}

func (s *session) close() {
	if s == nil {
		return
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	s.closers = nil
}

// setDNSResolvers points lego's process-wide DNS clients (CNAME lookups,
// DNS-PERSIST-01 lookups) at the given resolvers.
func setDNSResolvers(resolvers []string, timeout time.Duration) {
	dnsClientMu.Lock()
	defer dnsClientMu.Unlock()
	legodns01.SetDefaultClient(legodns01.NewClient(&legodns01.Options{RecursiveNameservers: resolvers, Timeout: timeout}))
	dnspersist01.SetDefaultClient(dnspersist01.NewClient(&dnspersist01.Options{RecursiveNameservers: resolvers, Timeout: timeout}))
}

// eabFrom collects EAB credentials from flags, files and the environment.
func eabFrom(env Env, af *accountFlags) (*acmeclient.EAB, error) {
	kid := firstSet(af.kid, env.Getenv("LEGO_EAB_KID"))
	hmac := firstSet(af.hmac, env.Getenv("LEGO_EAB_HMAC"))
	if af.hmacFile != "" {
		b, err := os.ReadFile(af.hmacFile)
		if err != nil {
			return nil, fmt.Errorf("read --hmac-file: %w", err)
		}
		hmac = strings.TrimSpace(string(b))
	}
	if !af.eab {
		if kid != "" || af.hmac != "" || af.hmacFile != "" {
			return nil, errors.New("--kid/--hmac given without --eab; add --eab to register with external account binding")
		}
		return nil, nil
	}
	if kid == "" || hmac == "" {
		return nil, errors.New("--eab needs --kid and an HMAC key (--hmac-file, LEGO_EAB_HMAC or --hmac)")
	}
	return &acmeclient.EAB{KID: kid, HMAC: hmac}, nil
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// promptTOS asks on the terminal, the way lego does.
func promptTOS(env Env) acmeclient.TOSFunc {
	return func(ctx context.Context, url string) (bool, error) {
		fmt.Fprintf(env.Stderr, "Please review the CA's terms of service at %s\nDo you accept them? [Y/n] ", url)
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "", "y", "yes":
			return true, nil
		}
		return false, nil
	}
}
