package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/providers/http/webroot"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/legocli"
	"github.com/zoku/zoku/internal/storage"
)

// legoNames are the program names that make the binary lego.
var legoNames = map[string]bool{"lego": true}

// isLego reports whether the binary was called as lego (a link to zoku).
func isLego(program string) bool {
	return program != "" && legoNames[strings.TrimSuffix(filepath.Base(program), ".exe")]
}

// runLego runs lego's command line (package legocli) on the session zoku's
// own commands use: the same store, account and issuing path.
func runLego(ctx context.Context, args []string, env Env) int {
	lenv := legocli.Env{
		Stdin: env.Stdin, Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv,
		StdinIsTerminal: env.IsTerminal, StdoutIsTerminal: env.StdoutIsTerminal, Sleep: env.Sleep,
		Prog: "zoku lego",
	}
	if isLego(env.Program) {
		lenv.Prog = "lego"
	}
	return legocli.Run(ctx, args, lenv, legoOpener(env))
}

// legoOpener opens sessions for the lego personality with openSession,
// then sets what only lego's flags ask for (webroot, user agent, CA
// timeouts, account key type, lego's log levels).
func legoOpener(env Env) legocli.Opener {
	return legocli.OpenerFunc(func(ctx context.Context, o legocli.SessionOptions) (legocli.Session, error) {
		af := accountFlags{
			server: firstSet(o.Server, "letsencrypt"), email: o.Email, accountID: o.AccountID,
			acceptTOS: o.AcceptTOS, path: o.Path, logFormat: "text", verbose: strings.EqualFold(o.LogLevel, "debug"),
		}
		if strings.EqualFold(o.LogFmt, "json") {
			af.logFormat = "json"
		}
		if o.EAB != nil {
			af.eab, af.kid, af.hmac = true, o.EAB.KID, o.EAB.HMAC
		}
		cf := challengeFlags{
			http: o.HTTP && o.HTTPWebroot == "", httpPort: o.HTTPAddress, tls: o.TLS, tlsPort: o.TLSAddress,
			dns: o.DNS, resolvers: o.DNSResolvers, disableANS: o.DNSDisableANS,
			dnsWait: o.DNSWait, dnsTimeout: o.DNSTimeout, persist: o.DNSPersist, persistIss: o.DNSPersistIssuer,
		}
		if len(cf.resolvers) == 0 && o.DNSPersist {
			cf.resolvers = o.DNSPersistResolve
		}
		if o.DNSDisableANS && o.DNSDisableRNS {
			cf.dnsWait = max(cf.dnsWait, 1) // both checks off: let the CA look at once
		}
		if cf.dnsTimeout <= 0 {
			cf.dnsTimeout = defaultDNSTimeout
		}
		// lego writes its progress (and questions) on stdout.
		senv := env
		senv.Stderr = env.Stdout
		level := legoLevel(o.LogLevel)
		s, err := openSession(ctx, senv, &af, &cf, false)
		if err != nil {
			return nil, err
		}
		logger := legoLogger(env.Stdout, o.LogFmt, level)
		acmeclient.SetLegoLogger(logger)
		s.log = logger

		cfg := s.issuer.Config()
		cfg.Client.Logger = logger
		cfg.AccountKeyType = certKeyType(o.AccountKeyType)
		cfg.Client.UserAgent = strings.TrimSpace(o.UserAgent + " zoku")
		cfg.Client.CertificateTimeout, cfg.Client.OverallRequestLimit = o.CertTimeout, o.OverallRequests
		if o.HTTPTimeout > 0 || o.TLSSkipVerify {
			hc := cfg.Client.HTTPClient
			if hc == nil {
				hc = lego.NewConfig(nil).HTTPClient // honours LEGO_CA_CERTIFICATES
			}
			c := *hc
			if o.HTTPTimeout > 0 {
				c.Timeout = o.HTTPTimeout
			}
			if tr, ok := c.Transport.(*http.Transport); ok && o.TLSSkipVerify {
				tr = tr.Clone()
				if tr.TLSClientConfig == nil {
					tr.TLSClientConfig = &tls.Config{}
				}
				tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // lego's --tls-skip-verify, for tests
				c.Transport = tr
			}
			cfg.Client.HTTPClient = &c
		}
		if o.HTTP && o.HTTPWebroot != "" {
			p, err := webroot.NewHTTPProvider(o.HTTPWebroot)
			if err != nil {
				s.close()
				return nil, fmt.Errorf("--http.webroot: %w", err)
			}
			cfg.Client.Solvers.HTTP01 = p
		}
		s.issuer = certmgr.NewACMEIssuer(cfg)
		mo := certmgr.Options{Issuer: s.issuer, Store: s.store, Cache: certmgr.NewCache(), Logger: logger}
		if s.ca != nil {
			mo.Usable = func(b *storage.Bundle) error { return s.ca.CheckStored(b.Meta.Server, b.Certificate) }
		}
		s.mgr = certmgr.New(mo)
		return &legoSession{s: s, env: senv, cf: cf}, nil
	})
}

// defaultDNSTimeout is lego's --dns.timeout default.
const defaultDNSTimeout = 10 * time.Second

// certKeyType parses a key type lego's way; "" for none or unknown.
func certKeyType(s string) certcrypto.KeyType {
	kt, err := certcrypto.ToKeyType(s)
	if err != nil {
		return ""
	}
	return kt
}

// legoLevel maps lego's --log.level.
func legoLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// legoLogger is lego's logger: --log.format json, text (key=value) or
// colored (zoku's plain lines, without colours).
func legoLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	case "text":
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(&plainHandler{w: w, mu: new(sync.Mutex), level: level})
}

// legoSession is a session as package legocli sees it.
type legoSession struct {
	s   *session
	env Env
	cf  challengeFlags
}

// PreparePersist checks (or prints) the DNS-PERSIST-01 records of names
// and offers the challenge, as `zoku obtain --dns-persist` does.
func (l *legoSession) PreparePersist(ctx context.Context, names []string) error {
	return l.s.enablePersist(ctx, l.env, &l.cf, names)
}

var _ legocli.Session = (*legoSession)(nil)

func (l *legoSession) Store() *storage.Store  { return l.s.store }
func (l *legoSession) Issuer() legocli.Issuer { return l.s.issuer }
func (l *legoSession) Logger() *slog.Logger   { return l.s.log }
func (l *legoSession) Close()                 { l.s.close() }
func (l *legoSession) OrderNow(ctx context.Context, o certmgr.Order) (certmgr.Result, error) {
	return l.s.mgr.OrderNow(ctx, o)
}
