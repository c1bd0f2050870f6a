// Package embedca runs Let's Encrypt's Pebble ACME test CA inside the zoku
// process, on loopback only.
//
// It backs `zoku obtain --server embedded` (and `server: embedded` in the
// config) and every test and benchmark of the project. It is for local use,
// demos and tests, never production.
//
// Start wires Pebble's ca, db, va and wfe packages together, serves the ACME
// API over TLS on 127.0.0.1 with a certificate generated in-process (trusted
// by HTTPClient), and, unless Options.DNSServer is set, starts a small
// loopback DNS resolver that points every name at 127.0.0.1 so Pebble's VA
// reaches zoku's own challenge listeners.
//
// # A root that stays
//
// Pebble makes new keys for its roots and intermediates at every start and
// cannot be given stored ones. So the CA has a root of its own, which
// Options.StateDir keeps across restarts (root-key.pem, 0600, holding the
// key and the certificate; root.pem, the certificate alone, to trust).
// At each start the intermediate that Pebble's new root signed is signed
// again by that root (same subject, key, serial and key identifier; only
// issuer and signature differ) and put in Pebble's place before anything
// is served. Every chain the CA hands out then leads to the kept root,
// and so do chains stored by earlier runs, which carry their own run's
// intermediate: a root trusted once (curl --cacert root.pem, zoku trust)
// stays trusted, as with mkcert or Caddy's local CA. Pebble's own roots
// remain only at the top of the alternate chains (Options.AlternateRoots).
// Without a StateDir the root lives in memory for the CA's life only.
//
// Certificates ordered before roots were kept, or under a root deleted
// since, do not chain to the current root; CheckStored and VerifyChain
// tell them apart, so callers order them again before serving them.
//
// The CA answers to StableDirectoryURL through HTTPClient whatever port it
// listens on, so an account folder named after the CA, and the URLs in
// stored files, stay the same from run to run.
//
// Pebble forgets accounts, orders and certificates when the process
// ends. With a StateDir the CA records who ordered each certificate it
// hands out (issued/, public data only), so a certificate of an earlier
// run can still be revoked, by its own key or by an account with the same
// key as the one that ordered it.
//
// Limits worth knowing:
//   - Pebble's VA starts a goroutine in va.New that never exits; Close cannot
//     stop it. A process that starts many CAs keeps one idle goroutine each.
//   - When Options.Profiles adds profiles, Pebble picks a random profile for an
//     order that names none. Ask for "default" explicitly to get
//     Options.Validity.
//   - Pebble reuses a valid authorization about 1% of the time even with
//     AuthzReusePercent 0 (its check is "roll > percent" on a 0..99 roll), so
//     a test that must see a validation should use a fresh account or name.
//   - Whoever can read root-key.pem can make certificates that every
//     client trusting the root accepts; it is written 0600 in a 0700
//     folder, and `zoku trust --uninstall` takes the root out again.
package embedca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// DefaultProfile is the name of the profile whose lifetime Options.Validity sets.
const DefaultProfile = "default"

// authzPathPrefix is the path Pebble serves authorizations under.
const authzPathPrefix = "/authZ/"

// maxRequestBody bounds an ACME request's body (a JWS of a CSR is a few
// KiB).
const maxRequestBody = 1 << 20

// challengePathPrefix is the path Pebble serves challenge objects under
// (its wfe package keeps the constant unexported).
const challengePathPrefix = "/chalZ/"

// Options configures Start. The zero value is a usable CA: HTTP-01 on port 80,
// TLS-ALPN-01 on port 443, the built-in resolver, 90-day certificates, one
// intermediate, no nonce rejection, no authorization reuse, no VA sleeps.
type Options struct {
	// HTTPPort is the port Pebble's VA dials for HTTP-01 (zoku's own
	// challenge listener); 0 means 80.
	HTTPPort int
	// TLSPort is the port Pebble's VA dials for TLS-ALPN-01; 0 means 443.
	TLSPort int
	// DNSServer is the host:port Pebble resolves names with, over TCP as
	// Pebble always does. "" starts the built-in loopback resolver, which
	// answers A queries for any name with 127.0.0.1.
	DNSServer string
	// Upstream is, for the built-in resolver only, the host:port that
	// queries other than A and AAAA (TXT, CNAME, CAA...) are forwarded to.
	// "" answers them with an empty NOERROR reply.
	Upstream string
	// RequireEAB makes newAccount refuse requests without an external
	// account binding.
	RequireEAB bool
	// EABKeys maps key IDs to base64url HMAC keys (padded or not).
	EABKeys map[string]string
	// Validity is the certificate lifetime of the "default" profile; 0 means
	// 90 days (Pebble's default). Pebble sets NotAfter to NotBefore plus
	// Validity minus one second.
	Validity time.Duration
	// Profiles adds named profiles besides "default", each with its
	// certificate lifetime (0 means 90 days), e.g. "shortlived": 6 days.
	// With extra profiles, Pebble gives an order that names no profile a
	// random one; name "default" to get Validity.
	Profiles map[string]time.Duration
	// ChainLength is the number of intermediates; 0 means 1.
	ChainLength int
	// AlternateRoots is the number of extra chains offered as
	// rel="alternate" links; 0 means none.
	AlternateRoots int
	// NonceRejectPercent is the share of good nonces Pebble rejects as bad
	// (PEBBLE_WFE_NONCEREJECT); -1 means Pebble's default (5), 0 never.
	NonceRejectPercent int
	// AuthzReusePercent is how often Pebble reuses a valid authorization
	// (PEBBLE_AUTHZREUSE); 0, the default here, validates every order.
	AuthzReusePercent int
	// VASleep keeps Pebble's random 0-4 s sleep before each validation;
	// false (the default) sets PEBBLE_VA_NOSLEEP=1.
	VASleep bool
	// CAAIdentities are the issuer domain names the directory advertises
	// (DNS-PERSIST-01 records name one); empty means DefaultCAAIdentity.
	CAAIdentities []string
	// Addr is the loopback address of the ACME endpoint; "" means
	// 127.0.0.1 on a free port. Clients of HTTPClient need no fixed port:
	// StableDirectoryURL reaches the CA wherever it listens.
	Addr string
	// StateDir is the folder that keeps the CA's root across restarts
	// (zoku uses StateDirIn(storage)): the first Start creates it (0700)
	// with the root's key and certificate, later ones reuse them, so
	// every run's certificates chain to the same root. It also holds the
	// records that let earlier runs' certificates be revoked. "" keeps
	// the root in memory for this CA's life only.
	StateDir string
	// AlwaysValid skips validation entirely (PEBBLE_VA_ALWAYS_VALID=1);
	// for benchmarks that measure issuance only.
	AlwaysValid bool
	// KeyAlgorithm is the key type of the CA's roots and intermediates:
	// "ecdsa" (the default here, fast to generate) or "rsa".
	KeyAlgorithm string
	// Logger receives the start warning and, at debug level, Pebble's own
	// log lines; nil discards everything.
	Logger *slog.Logger
}

// DefaultCAAIdentity is the issuer domain name of the embedded CA.
const DefaultCAAIdentity = "embedded.zoku.test"

// StableHost is the name the CA answers to through HTTPClient, whatever
// port it listens on. It never resolves (.test is reserved, RFC 2606):
// HTTPClient dials the CA's address for it.
const StableHost = "embedded.zoku.test"

// StableDirectoryURL is the directory URL that stays the same across
// restarts; give it, with HTTPClient, to an ACME client whose account
// folder and stored URLs must not change with the port. Other clients use
// DirectoryURL.
const StableDirectoryURL = "https://" + StableHost + "/dir"

// CA is a running embedded Pebble. Its methods are safe for concurrent use.
type CA struct {
	log      *slog.Logger
	db       *db.MemoryStore
	ca       *ca.CAImpl
	front    *wfe.WebFrontEndImpl
	dirURL   string
	client   *http.Client
	tlsLeaf  *x509.Certificate
	ari      ari
	faults   faults
	server   *http.Server
	resolver *resolver
	dnsAddr  string
	root     *rootCA
	roots    []*x509.Certificate // root.cert, then Pebble's alternate roots
	ledger   *ledger             // nil without a StateDir
	// authzGate lets an authorization request run only alone (see
	// handler).
	authzGate sync.RWMutex

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start starts Pebble and its listeners on loopback. ctx bounds startup only;
// the CA runs until Close. Start returns an error, never panics, and leaves
// nothing running when it fails.
func Start(ctx context.Context, opts Options) (_ *CA, err error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "embedca")
	pebbleLog := newPebbleLogger(logger)

	c := &CA{log: logger}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()

	c.dnsAddr = opts.DNSServer
	if c.dnsAddr == "" {
		r, err := startResolver(ctx, opts.Upstream, logger)
		if err != nil {
			return nil, err
		}
		c.resolver = r
		c.dnsAddr = r.addr
	}

	now := time.Now()
	var created bool
	if c.root, created, err = loadOrCreateRoot(opts.StateDir, opts.KeyAlgorithm, now); err != nil {
		return nil, err
	}
	serverCert, err := newServerCert(now)
	if err != nil {
		return nil, err
	}
	if err := c.buildPebble(opts, pebbleLog); err != nil {
		return nil, err
	}
	if opts.StateDir != "" {
		if err := c.root.writeRootPEM(opts.StateDir); err != nil {
			return nil, err
		}
		if c.ledger, err = openLedger(opts.StateDir, now, logger); err != nil {
			return nil, err
		}
		if created {
			logger.Warn("embedded CA: new root created; trust it once (curl --cacert, zoku trust)",
				"root", filepath.Join(opts.StateDir, RootFile), "root_id", ShortID(c.root.cert))
		} else {
			logger.Info("embedded CA: root loaded", "root", filepath.Join(opts.StateDir, RootFile), "root_id", ShortID(c.root.cert))
		}
	}
	for _, kid := range sortedKeys(opts.EABKeys) {
		if err := c.AddEABKey(kid, opts.EABKeys[kid]); err != nil {
			return nil, err
		}
	}

	var lc net.ListenConfig
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedca: listen on 127.0.0.1 for the ACME API: %w", err)
	}
	c.dirURL = "https://" + ln.Addr().String() + wfe.DirectoryPath
	c.client = newHTTPClient(serverCert.Leaf, ln.Addr().String())
	c.tlsLeaf = serverCert.Leaf
	c.server = &http.Server{
		Handler:           c.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          pebbleLog,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{serverCert},
		},
	}
	tlsLn := tls.NewListener(ln, c.server.TLSConfig)
	c.wg.Go(func() {
		if err := c.server.Serve(tlsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("embedded CA: ACME server stopped", "error", err)
		}
	})

	logger.Warn("embedded CA: for local use and tests only, never production",
		"directory", c.dirURL, "dns_server", c.dnsAddr)
	return c, nil
}

// buildPebble constructs Pebble's parts with the env vars it reads set from
// opts, turning any panic from Pebble into an error.
func (c *CA) buildPebble(opts Options, pebbleLog *log.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("embedca: pebble setup failed: %w", e)
				return
			}
			err = fmt.Errorf("embedca: pebble setup failed: %v", r)
		}
	}()

	profiles := map[string]ca.Profile{
		DefaultProfile: {Description: "embedded default profile", ValidityPeriod: seconds(opts.Validity)},
	}
	for name, d := range opts.Profiles {
		profiles[name] = ca.Profile{Description: "embedded profile " + name, ValidityPeriod: seconds(d)}
	}
	chainLength := opts.ChainLength
	if chainLength == 0 {
		chainLength = 1
	}
	keyAlg := opts.KeyAlgorithm
	if keyAlg == "" {
		keyAlg = "ecdsa"
	}
	httpPort, tlsPort := opts.HTTPPort, opts.TLSPort
	if httpPort == 0 {
		httpPort = 80
	}
	if tlsPort == 0 {
		tlsPort = 443
	}

	c.db = db.NewMemoryStore()
	c.ca = ca.New(pebbleLog, c.db, "", keyAlg, opts.AlternateRoots, chainLength, profiles)
	var front wfe.WebFrontEndImpl
	err = withEnv(pebbleEnv(opts), func() {
		v := va.New(pebbleLog, httpPort, tlsPort, false, c.dnsAddr, c.db)
		caa := opts.CAAIdentities
		if len(caa) == 0 {
			caa = []string{DefaultCAAIdentity}
		}
		front = wfe.New(pebbleLog, c.db, v, c.ca, caa, false, opts.RequireEAB, 0, 0)
	})
	if err != nil {
		return err
	}
	c.front = &front
	for i := range c.ca.GetNumberOfRootCerts() {
		root := c.ca.GetRootCert(i)
		if root == nil || root.Cert == nil {
			return fmt.Errorf("embedca: pebble root %d is missing", i)
		}
		c.roots = append(c.roots, root.Cert)
	}
	// The default chain leads to the CA's own root instead of Pebble's
	// root 0 (see the package doc).
	top, err := topOfDefaultChain(c.ca.GetIntermediateCert(0), c.ca.GetRootCert(0))
	if err != nil {
		return err
	}
	if err := c.root.crossSign(top); err != nil {
		return err
	}
	c.roots[0] = c.root.cert
	return nil
}

// handler serves Pebble's ACME API and adds Retry-After: 1 to challenge POST
// replies. Pebble sends none there, and lego then waits 5 s (its fallback)
// before its first authorization poll and backs off from that base, so each
// authorization would take 2.5-7.5 s; one second keeps tests and the
// embedded demo quick. Pebble never sets the header on that path itself.
//
// Authorization requests run alone. Pebble's authorization handler holds
// the authorization's write lock while it reads its store (the account
// behind the request), and newOrder and the order endpoints hold the
// store's read lock while they read authorizations: with a write to the
// store waiting between them (a certificate being stored), each waits for
// the other for ever and the CA stops answering every request (Pebble
// v2.10.1 and v2.10.3; seen as TestClusterOnEtcdOrdersOnce timing out
// on a loaded machine, and every time in TestAuthzPollsBesideNewOrders
// without this gate). Other requests run together, as before; a POST's
// body is read before the gate, so a slow client holds up no one.
func (c *CA) handler() http.Handler {
	acme := c.front.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
			if err != nil || len(body) > maxRequestBody {
				problem(w, http.StatusBadRequest, "malformed", "request body unreadable or over 1 MiB")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if strings.HasPrefix(r.URL.Path, authzPathPrefix) {
				c.authzGate.Lock()
				defer c.authzGate.Unlock()
			} else {
				c.authzGate.RLock()
				defer c.authzGate.RUnlock()
			}
		}
		answered, order := c.fault(w, r)
		if answered || c.serveRenewalInfo(w, r) {
			return
		}
		if order >= 0 {
			sw := &statusWriter{ResponseWriter: w}
			defer func() { c.orderAnswered(order, sw.status) }()
			w = sw
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, challengePathPrefix) {
			w.Header().Set("Retry-After", "1")
		}
		c.beforeRevoke(r)
		acme.ServeHTTP(w, r)
		c.afterCertificate(r)
	})
}

// DirectoryURL returns the ACME directory URL, https://127.0.0.1:<port>/dir,
// for any client that trusts TLSCertPEM. The port changes from run to run
// unless Options.Addr fixes it; see StableDirectoryURL.
func (c *CA) DirectoryURL() string { return c.dirURL }

// DNSAddr returns the host:port Pebble resolves names with: Options.DNSServer
// or the built-in resolver's address.
func (c *CA) DNSAddr() string { return c.dnsAddr }

// HTTPClient returns a client that trusts exactly the CA's own TLS server
// certificate and reaches the CA at both DirectoryURL and
// StableDirectoryURL; give it to lego.Config.HTTPClient. All calls return
// the same client.
func (c *CA) HTTPClient() *http.Client { return c.client }

// TLSCertPEM returns the CA's own HTTPS server certificate (self-signed) in
// PEM, for clients that trust a private CA through a file, such as lego's
// LEGO_CA_CERTIFICATES.
func (c *CA) TLSCertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.tlsLeaf.Raw})
}

// Roots returns the root certificates issued certificates chain to: the
// CA's own root (the default chain, kept in Options.StateDir), then
// Pebble's root of each alternate chain.
func (c *CA) Roots() []*x509.Certificate {
	return append([]*x509.Certificate(nil), c.roots...)
}

// VerifyChain checks that chainPEM (a leaf, then its issuers) chains to
// Roots; see the package-level VerifyChain.
func (c *CA) VerifyChain(chainPEM []byte) error { return VerifyChain(chainPEM, c.roots...) }

// CheckStored tells whether a stored certificate, ordered from server
// (its CertMeta.Server), may be served as this CA's: see the
// package-level CheckStored. A certificate manager calls it before it
// serves what storage holds, and orders again on an error.
func (c *CA) CheckStored(server string, chainPEM []byte) error {
	return CheckStored(server, chainPEM, c.roots...)
}

// RootPool returns a pool holding Roots, for x509.VerifyOptions.Roots.
func (c *CA) RootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, r := range c.roots {
		pool.AddCert(r)
	}
	return pool
}

// Close stops the ACME listener and the built-in resolver and waits for their
// goroutines. It cannot stop the goroutine Pebble's va.New starts, which
// lives until the process exits. Close is idempotent.
func (c *CA) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		if c.server != nil {
			if err := c.server.Close(); err != nil {
				errs = append(errs, fmt.Errorf("embedca: close ACME server: %w", err))
			}
		}
		if c.client != nil {
			c.client.CloseIdleConnections()
		}
		if c.resolver != nil {
			if err := c.resolver.close(); err != nil {
				errs = append(errs, err)
			}
		}
		c.wg.Wait()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// validate checks opts and names the field and the fix on error.
func (o Options) validate() error {
	for _, p := range []struct {
		name string
		v    int
	}{{"HTTPPort", o.HTTPPort}, {"TLSPort", o.TLSPort}} {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("embedca: %s %d is out of range: use 1-65535, or 0 for the default", p.name, p.v)
		}
	}
	for _, a := range []struct{ name, v string }{{"DNSServer", o.DNSServer}, {"Upstream", o.Upstream}} {
		if a.v == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.v); err != nil || port == "" {
			return fmt.Errorf("embedca: %s %q is not host:port: %w", a.name, a.v, errBadAddr(err))
		}
	}
	if o.Upstream != "" && o.DNSServer != "" {
		return errors.New("embedca: Upstream applies to the built-in resolver only: leave DNSServer empty or drop Upstream")
	}
	if o.Validity < 0 || (o.Validity > 0 && o.Validity < time.Second) {
		return fmt.Errorf("embedca: Validity %s is invalid: use at least 1s, or 0 for 90 days", o.Validity)
	}
	for name, d := range o.Profiles {
		if name == "" || name == DefaultProfile {
			return fmt.Errorf("embedca: profile name %q is reserved or empty: set the default lifetime with Validity", name)
		}
		if d < 0 || (d > 0 && d < time.Second) {
			return fmt.Errorf("embedca: profile %q lifetime %s is invalid: use at least 1s, or 0 for 90 days", name, d)
		}
	}
	if o.ChainLength < 0 || o.AlternateRoots < 0 {
		return errors.New("embedca: ChainLength and AlternateRoots must not be negative")
	}
	if o.NonceRejectPercent < -1 || o.NonceRejectPercent > 100 {
		return fmt.Errorf("embedca: NonceRejectPercent %d is out of range: use 0-100, or -1 for Pebble's default", o.NonceRejectPercent)
	}
	if o.AuthzReusePercent < 0 || o.AuthzReusePercent > 100 {
		return fmt.Errorf("embedca: AuthzReusePercent %d is out of range: use 0-100", o.AuthzReusePercent)
	}
	switch o.KeyAlgorithm {
	case "", "ecdsa", "rsa":
	default:
		return fmt.Errorf("embedca: KeyAlgorithm %q is unknown: use \"ecdsa\" or \"rsa\"", o.KeyAlgorithm)
	}
	return nil
}

// errBadAddr keeps the %w chain non-nil when SplitHostPort succeeded but the
// port was empty.
func errBadAddr(err error) error {
	if err != nil {
		return err
	}
	return errors.New("missing port")
}

// pebbleEnv lists the env vars Pebble's va.New and wfe.New read, with the
// values opts asks for; "" means unset, so the process environment never
// leaks into a CA.
func pebbleEnv(opts Options) []envVar {
	noSleep := "1"
	if opts.VASleep {
		noSleep = ""
	}
	alwaysValid := ""
	if opts.AlwaysValid {
		alwaysValid = "1"
	}
	nonce := ""
	if opts.NonceRejectPercent >= 0 {
		nonce = strconv.Itoa(opts.NonceRejectPercent)
	}
	return []envVar{
		{"PEBBLE_VA_NOSLEEP", noSleep},
		{"PEBBLE_VA_SLEEPTIME", ""},
		{"PEBBLE_VA_ALWAYS_VALID", alwaysValid},
		{"PEBBLE_WFE_NONCEREJECT", nonce},
		{"PEBBLE_AUTHZREUSE", strconv.Itoa(opts.AuthzReusePercent)},
		{"PEBBLE_WFE_ORDERS_PER_PAGE", ""},
	}
}

// seconds converts a lifetime to Pebble's whole seconds; 0 keeps Pebble's
// 90-day default.
func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d / time.Second)
}

// newPebbleLogger returns the log.Logger handed to Pebble: its lines go to
// logger at debug level, or nowhere when debug is off (Pebble keeps logging
// after a test ends, so tests must never route it to t.Log).
func newPebbleLogger(logger *slog.Logger) *log.Logger {
	if !logger.Enabled(context.Background(), slog.LevelDebug) {
		return log.New(io.Discard, "", 0)
	}
	return log.New(slogWriter{logger}, "", 0)
}

// slogWriter turns each write of a log.Logger into one debug record.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("pebble", "line", strings.TrimRight(string(p), "\r\n"))
	return len(p), nil
}
