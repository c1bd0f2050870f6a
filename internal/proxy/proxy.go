// Package proxy serves one configured service: a static reply, or a pool of
// backend servers.
//
// Requests from HTTP/1.x clients to plain http:// servers take the
// HTTP/1.1 fast path (fastpath.go): forwarded on the handler's goroutine
// over the service's own kept-alive connections, with net/http's parser
// reading the answers and the behaviour of httputil.ReverseProxy described
// below. HTTP/2 clients, upgrades (WebSocket), Expect: 100-continue,
// request trailers and https:// servers go through httputil.ReverseProxy
// and http.Transport.
//
// On that path, httputil.ReverseProxy does the HTTP work; this package adds
// balancing, retries and health through three of its hooks, and leaves the
// rest alone:
//
//   - Rewrite points the outgoing request at the server chosen for this
//     try (SetURL, keeping the client's Host as Caddy and Traefik do) and
//     sets X-Forwarded-For, -Proto and -Host (see TrustedProxies).
//   - Transport is one *http.Transport per Service, wrapped to end a try
//     that has no response headers within the service's TryTimeout.
//   - ErrorHandler remembers the error instead of answering, so that
//     ServeHTTP can retry on another server or answer 502/504 itself.
//
// ModifyResponse sees each backend status for passive health.
//
// What httputil already does, and this package relies on:
//
//   - Hop-by-hop headers (Connection and the headers it names, Keep-Alive,
//     Proxy-*, TE except "trailers", Trailer, Transfer-Encoding, Upgrade;
//     RFC 9110 section 7.6.1) are removed in both directions.
//   - Upgrade requests (WebSocket, RFC 6455) pass through: on a 101 answer
//     the client connection is hijacked and bytes are copied both ways.
//   - Responses of type text/event-stream, and those of unknown length,
//     are flushed after every write, so server-sent events stream.
//   - 1xx informational answers (103 Early Hints) are forwarded.
//
// Retries: a try that fails before response headers is retried on another
// server, up to Retries times, when nothing was sent yet (the dial or TLS
// handshake failed: any method), or when the method is idempotent (GET,
// HEAD, OPTIONS, TRACE, PUT, DELETE) and the request body, if any, was not
// read yet or can be read again (Request.GetBody). A POST that reached a
// server is never sent twice.
//
// Passive health counts transport errors and 502, 503 and 504 answers as
// failures; any other answer is a success.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy/balance"
	"github.com/zoku/zoku/internal/proxy/health"
)

// DefaultTryTimeout bounds one try when the service sets no TryTimeout.
const DefaultTryTimeout = 30 * time.Second

// Options are a Service's dependencies. Zero fields are documented.
type Options struct {
	// TrustedProxies are the peers (r.RemoteAddr) whose X-Forwarded-For,
	// -Proto and -Host (and Forwarded) headers are kept and extended. From
	// any other peer they are replaced, and X-Real-Ip is dropped. Nil
	// trusts no one.
	TrustedProxies []netip.Prefix
	// Observer, if set, is called once per request after the response,
	// for the access log.
	Observer func(RequestInfo)
	// Logger gets failed requests and health changes; nil discards.
	Logger *slog.Logger
	// Now is the clock of health decisions; nil means time.Now.
	Now func() time.Time
	// TLSClientConfig is used to reach https:// servers; nil means the
	// system roots.
	TLSClientConfig *tls.Config
	// HoldChecks leaves the active health check stopped until StartChecks:
	// the router starts it once its entry points listen, since a server
	// may be one of them.
	HoldChecks bool
}

// Service answers the requests of one configured service. It is an
// http.Handler, safe for concurrent use. Build it with NewService and
// Close it when a reload replaces it.
type Service struct {
	name   string
	static *staticReply // set for a static service; the rest is then unused
	opts   Options
	now    func() time.Time

	baseLog *slog.Logger
	logOnce sync.Once
	log     *slog.Logger // baseLog with the service's name; see logger

	ups        []*upstream
	pool       []balance.Backend // ups, as the selector sees them
	sel        balance.Selector
	retries    int
	tryTimeout time.Duration
	passive    *health.Passive // nil: passive health off

	// fast: every server is plain http:// without a path, so requests
	// the fast path takes go over it (fastpath.go).
	fast bool

	reg    *health.Registry
	https  bool    // some server is https://
	h2c    bool    // every server is h2c://
	sticky *sticky // nil: no sticky sessions (sticky.go)
	// stickyVals are the ups' sticky cookie values, in order.
	stickyVals []string
	nhOnce     sync.Once
	nh         atomic.Pointer[netHTTP] // built on first use; see netHTTP
	checker    *health.Checker         // nil: no active check

	closeOnce sync.Once
}

// upstream is one configured server of a service. It is a balance.Backend.
type upstream struct {
	url    *url.URL
	key    string // registry key and displayed URL
	weight int
	state  *health.Server
	now    func() time.Time
	// conns are the fast path's kept-alive connections; nil when the
	// server cannot take the fast path.
	conns *connPool
	// h2c: the server was given as h2c:// (url says http://).
	h2c bool
	// stickyVal names the server in a sticky cookie (sticky.go).
	stickyVal string
}

var _ balance.Backend = (*upstream)(nil)

func (u *upstream) Available() bool { return u.state.Available(u.now()) }
func (u *upstream) Weight() int     { return u.weight }
func (u *upstream) InFlight() int64 { return u.state.InFlight() }

// NewService validates cfg and builds the service. The health state of its
// servers comes from reg, shared with any other service naming the same
// URL; nil means a private registry. To keep health across a reload, build
// the new Service before closing the old one.
//
// NewService does no network I/O itself, but when cfg has a health check it
// starts the checker goroutine (unless Options.HoldChecks), whose first
// round runs at once; Close stops it.
func NewService(name string, cfg *config.Service, reg *health.Registry, opts Options) (*Service, error) {
	if cfg == nil {
		return nil, fmt.Errorf("proxy: service %q has no configuration", name)
	}
	s := &Service{name: name, opts: opts, now: opts.Now, baseLog: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.baseLog == nil {
		s.baseLog = slog.New(slog.DiscardHandler)
	}

	if cfg.Static != nil {
		if len(cfg.Servers) > 0 {
			return nil, fmt.Errorf("proxy: service %q has both static and servers; keep one", name)
		}
		st, err := newStaticReply(cfg.Static)
		if err != nil {
			return nil, fmt.Errorf("proxy: service %q: %w", name, err)
		}
		s.static = st
		return s, nil
	}
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("proxy: service %q has no servers; add servers or a static reply", name)
	}
	sel, err := balance.New(cfg.Strategy)
	if err != nil {
		return nil, fmt.Errorf("proxy: service %q: %w", name, err)
	}
	s.sel = sel
	s.retries = 1
	if cfg.Retries != nil {
		if *cfg.Retries < 0 {
			return nil, fmt.Errorf("proxy: service %q: retries is %d; use 0 or more", name, *cfg.Retries)
		}
		s.retries = *cfg.Retries
	}
	s.tryTimeout = time.Duration(cfg.TryTimeout)
	if s.tryTimeout <= 0 {
		s.tryTimeout = DefaultTryTimeout
	}
	if p := cfg.PassiveHealth; p != nil {
		s.passive = &health.Passive{MaxFailures: p.MaxFailures, Window: time.Duration(p.Window), Cooldown: time.Duration(p.Cooldown)}
	}

	https, h2c := false, 0
	for i, srv := range cfg.Servers {
		u, err := parseServerURL(srv.URL)
		if err != nil {
			return nil, fmt.Errorf("proxy: service %q: server %d: %w", name, i+1, err)
		}
		if srv.Weight < 0 {
			return nil, fmt.Errorf("proxy: service %q: server %s has weight %d; use 1 or more", name, u, srv.Weight)
		}
		https = https || u.Scheme == "https"
		key, isH2C := u.String(), u.Scheme == "h2c"
		if isH2C {
			// Plain HTTP/2 (prior knowledge): an http:// URL over a
			// transport that speaks only unencrypted HTTP/2.
			h2c++
			u.Scheme = "http"
		}
		up := &upstream{url: u, key: key, weight: max(srv.Weight, 1), now: s.now, h2c: isH2C}
		if !up.h2c && u.Scheme == "http" && (u.Path == "" || u.Path == "/") && u.RawPath == "" && u.RawQuery == "" && !u.ForceQuery {
			addr := u.Host
			if u.Port() == "" {
				addr = net.JoinHostPort(u.Hostname(), "80")
			}
			up.conns = newConnPool(addr)
		}
		s.ups = append(s.ups, up)
	}
	s.fast = true
	for _, up := range s.ups {
		s.fast = s.fast && up.conns != nil
	}

	if h2c > 0 && h2c < len(s.ups) {
		return nil, fmt.Errorf("proxy: service %q mixes h2c:// servers with others; give h2c:// servers a service of their own", name)
	}
	s.https, s.h2c = https, h2c > 0
	if cfg.Sticky != nil {
		s.sticky = newSticky(cfg.Sticky.Cookie)
		for _, up := range s.ups {
			up.stickyVal = stickyValue(up.key)
			s.stickyVals = append(s.stickyVals, up.stickyVal)
		}
	}

	if reg == nil {
		reg = health.NewRegistry()
	}
	s.reg = reg
	servers := make([]*health.Server, len(s.ups))
	s.pool = make([]balance.Backend, len(s.ups))
	for i, u := range s.ups {
		u.state = reg.Acquire(u.key)
		servers[i], s.pool[i] = u.state, u
	}
	if hc := cfg.HealthCheck; hc != nil {
		active := health.Active{Path: hc.Path, Interval: time.Duration(hc.Interval), Timeout: time.Duration(hc.Timeout), ExpectedStatus: hc.ExpectedStatus}
		c, err := health.NewChecker(active, servers, health.CheckerOptions{Transport: s.netHTTP().transport, Now: s.now, Logger: s.logger()})
		if err != nil {
			s.release()
			return nil, fmt.Errorf("proxy: service %q: %w", name, err)
		}
		s.checker = c
		if !opts.HoldChecks {
			c.Start()
		}
	}
	return s, nil
}

// StartChecks starts the active health check held by Options.HoldChecks;
// it does nothing when there is none, or when it runs already.
func (s *Service) StartChecks() {
	if s.checker != nil {
		s.checker.Start()
	}
}

// netHTTP is the net/http way to the servers, for what the fast path does
// not take: one http.Transport per Service behind httputil.ReverseProxy.
// Built on first use, so that services that never need it (most, with
// plain http:// servers) cost no more than their configuration.
type netHTTP struct {
	transport *http.Transport
	rp        *httputil.ReverseProxy
}

// netHTTP returns the service's net/http machinery, building it once.
func (s *Service) netHTTP() *netHTTP {
	s.nhOnce.Do(func() {
		nh := &netHTTP{transport: newTransport(s.opts.TLSClientConfig, s.https, s.h2c)}
		nh.rp = &httputil.ReverseProxy{
			Rewrite:        s.rewrite,
			Transport:      tryTransport{base: nh.transport},
			ModifyResponse: s.modifyResponse,
			ErrorHandler:   s.errorHandler,
			BufferPool:     copyBuffers,
			ErrorLog:       slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
		}
		s.nh.Store(nh)
	})
	return s.nh.Load()
}

// logger returns the service's logger (built on first use: a config of
// many services logs for few of them).
func (s *Service) logger() *slog.Logger {
	s.logOnce.Do(func() { s.log = s.baseLog.With("component", "proxy", "service", s.name) })
	return s.log
}

// parseServerURL accepts an absolute http://, https:// or h2c:// URL
// without user info. Its errors never echo the URL, which might hold a
// password.
func parseServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("url is not a valid URL; write it as http://host:port")
	}
	if u.User != nil {
		return nil, errors.New("url must not carry a user name or password; remove them")
	}
	if (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "h2c") || u.Host == "" {
		return nil, errors.New("url must be an absolute http:// or https:// URL such as http://10.0.0.5:8080 (or h2c:// for plain HTTP/2)")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// Name is the service's name.
func (s *Service) Name() string { return s.name }

// Close stops the active checker, waiting for it, releases the servers'
// health state and closes idle backend connections. Requests in flight
// finish normally; the router should stop sending new ones, which would
// still be served but with health state no longer shared. Close is
// idempotent and always returns nil.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		if s.checker != nil {
			s.checker.Close()
		}
		s.release()
		if nh := s.nh.Load(); nh != nil {
			nh.transport.CloseIdleConnections()
		}
		for _, u := range s.ups {
			if u.conns != nil {
				u.conns.close()
			}
		}
	})
	return nil
}

func (s *Service) release() {
	for _, u := range s.ups {
		if u.state != nil {
			s.reg.Release(u.state)
		}
	}
}

// CheckNow runs one round of the active health check synchronously; it
// does nothing for a service without one. Tests and the admin API use it.
func (s *Service) CheckNow(ctx context.Context) {
	if s.checker != nil {
		s.checker.CheckNow(ctx)
	}
}

// Available reports whether the service may take a request now: it is
// static, or one of its servers is available. Failover and weighted
// services ask their children this.
func (s *Service) Available() bool {
	if s.static != nil {
		return true
	}
	for _, u := range s.ups {
		if u.Available() {
			return true
		}
	}
	return false
}

// ServerStatus is the health of one server, for the admin API.
type ServerStatus struct {
	// URL of the server.
	URL string `json:"url"`
	// Up: the server may take requests now.
	Up bool `json:"up"`
	// Weight from the config (1 if unset).
	Weight int `json:"weight"`
	// InFlight requests now, across every service using this URL.
	InFlight int64 `json:"inFlight"`
	// LastError is the latest probe or request error; a passing probe
	// clears it.
	LastError string `json:"lastError,omitempty"`
	// LastCheck is the time of the latest probe; zero if none.
	LastCheck time.Time `json:"lastCheck"`
}

// Servers returns the status of each server, in config order; nil for a
// static service.
func (s *Service) Servers() []ServerStatus {
	if len(s.ups) == 0 {
		return nil
	}
	now := s.now()
	out := make([]ServerStatus, len(s.ups))
	for i, u := range s.ups {
		st := u.state.Status(now)
		out[i] = ServerStatus{URL: u.key, Up: st.Up, Weight: u.weight, InFlight: st.InFlight, LastError: st.LastError, LastCheck: st.LastCheck}
	}
	return out
}

// staticReply is a fixed answer.
type staticReply struct {
	status      int
	body        []byte
	contentType string
	length      string
}

func newStaticReply(c *config.Static) (*staticReply, error) {
	st := &staticReply{status: c.Status, body: []byte(c.Body), contentType: c.ContentType}
	if st.status == 0 {
		st.status = http.StatusOK
	}
	if st.status < 200 || st.status > 599 {
		return nil, fmt.Errorf("static status %d must be between 200 and 599", st.status)
	}
	if st.contentType == "" {
		st.contentType = "text/plain; charset=utf-8"
	}
	st.length = strconv.Itoa(len(st.body))
	return st, nil
}

func (st *staticReply) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", st.contentType)
	h.Set("Content-Length", st.length)
	w.WriteHeader(st.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(st.body)
	}
}
