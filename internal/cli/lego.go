package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
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
		Prog: "zoku lego", Version: versionString(),
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

		cl := clientFlags{
			userAgent: o.UserAgent, httpTimeout: o.HTTPTimeout, tlsSkipVerify: o.TLSSkipVerify,
			certTimeout: o.CertTimeout, overall: o.OverallRequests, accountKeyType: certKeyType(o.AccountKeyType),
		}
		if o.HTTP {
			cl.webroot = o.HTTPWebroot
		}
		if err := s.applyClient(cl, logger); err != nil {
			s.close()
			return nil, err
		}
		return &legoSession{s: s, env: senv, cf: cf}, nil
	})
}

// clientFlags are lego's settings of the ACME client, and its HTTP-01
// webroot, which openSession does not read.
type clientFlags struct {
	userAgent      string
	httpTimeout    time.Duration
	tlsSkipVerify  bool
	certTimeout    time.Duration
	overall        int
	webroot        string
	accountKeyType certcrypto.KeyType
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.userAgent, "user-agent", "", "text added to the user agent sent to the CA")
	fs.Func("http-timeout", "time limit of each request to the CA, in seconds", seconds(&c.httpTimeout))
	fs.BoolVar(&c.tlsSkipVerify, "tls-skip-verify", false, "do not verify the CA's TLS certificate (tests only)")
	fs.Func("cert.timeout", "how long to wait for the CA to issue after finalize, in seconds (default 30)", seconds(&c.certTimeout))
	fs.IntVar(&c.overall, "overall-request-limit", 0, "requests per second to the CA at most (default 18)")
	fs.StringVar(&c.webroot, "http.webroot", "", "with --http: write the answers under this folder's .well-known/acme-challenge/ (served by your web server) instead of listening")
}

// seconds parses lego's whole seconds into d.
func seconds(d *time.Duration) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errors.New("want a number of seconds")
		}
		*d = time.Duration(n) * time.Second
		return nil
	}
}

// applyClient rebuilds the session's issuer and manager with c (when it
// sets anything), on the same store and account settings.
func (s *session) applyClient(c clientFlags, logger *slog.Logger) error {
	if c == (clientFlags{}) && logger == s.log {
		return nil
	}
	cfg := s.issuer.Config()
	cfg.Client.Logger = logger
	if c.accountKeyType != "" {
		cfg.AccountKeyType = c.accountKeyType
	}
	if c.userAgent != "" {
		cfg.Client.UserAgent = c.userAgent + " zoku"
	}
	if c.certTimeout > 0 {
		cfg.Client.CertificateTimeout = c.certTimeout
	}
	if c.overall > 0 {
		cfg.Client.OverallRequestLimit = c.overall
	}
	if c.httpTimeout > 0 || c.tlsSkipVerify {
		hc := cfg.Client.HTTPClient
		if hc == nil {
			hc = lego.NewConfig(nil).HTTPClient // honours LEGO_CA_CERTIFICATES
		}
		h := *hc
		if c.httpTimeout > 0 {
			h.Timeout = c.httpTimeout
		}
		if tr, ok := h.Transport.(*http.Transport); ok && c.tlsSkipVerify {
			tr = tr.Clone()
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{}
			}
			tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // lego's --tls-skip-verify, for tests
			h.Transport = tr
		}
		cfg.Client.HTTPClient = &h
	}
	if c.webroot != "" {
		p, err := webroot.NewHTTPProvider(c.webroot)
		if err != nil {
			return fmt.Errorf("--http.webroot: %w", err)
		}
		cfg.Client.Solvers.HTTP01 = p
	}
	s.issuer = certmgr.NewACMEIssuer(cfg)
	mo := certmgr.Options{Issuer: s.issuer, Store: s.store, Cache: certmgr.NewCache(), Logger: logger}
	if s.ca != nil {
		mo.Usable = func(b *storage.Bundle) error { return s.ca.CheckStored(b.Meta.Server, b.Certificate) }
	}
	s.mgr = certmgr.New(mo)
	return nil
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
