package tcproute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy/balance"
	"github.com/zoku/zoku/internal/proxy/health"
)

// ErrNoServer is Dial's error when no server is available (all down) or
// every one refused the connection.
var ErrNoServer = errors.New("tcproute: no server of the service could be reached")

// registryKey is a TCP server's key in the health registry, kept apart
// from the http:// URLs of HTTP services.
func registryKey(addr string) string { return "tcp://" + addr }

// Options are a Service's dependencies; zero fields are documented.
type Options struct {
	// Logger gets a line when a server goes down or comes back; nil
	// discards.
	Logger *slog.Logger
	// Now is the clock of passive health; nil is time.Now.
	Now func() time.Time
	// Dialer connects to servers; nil is a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Service is a pool of TCP servers: a balancer picks one for each
// connection among those that are up (active checks and passive health),
// and a server that refuses the connection is skipped for the next.
// Health state lives in the shared health.Registry, so it survives a
// reload that keeps the server.
type Service struct {
	name    string
	servers []*backend
	pool    []balance.Backend
	sel     balance.Selector
	reg     *health.Registry
	passive *health.Passive
	timeout time.Duration
	proxyV  byte // PROXY header version sent, 0 for none
	checker *checker
	now     func() time.Time
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	log     *slog.Logger
}

// backend is one server of a service.
type backend struct {
	addr   string
	weight int
	h      *health.Server
	now    func() time.Time
}

func (b *backend) Available() bool { return b.h.Available(b.now()) }
func (b *backend) Weight() int     { return b.weight }
func (b *backend) InFlight() int64 { return b.h.InFlight() }

// NewService builds the service name of cfg (valid, defaults filled in),
// taking its servers' health from reg. It does no I/O; Start begins the
// active checks. Close releases what it took.
func NewService(name string, cfg *config.TCPService, reg *health.Registry, opts Options) (*Service, error) {
	strategy := cfg.Strategy
	if strategy == "least-connections" {
		strategy = balance.StrategyLeastRequests // connections are its requests
	}
	sel, err := balance.New(strategy)
	if err != nil {
		return nil, fmt.Errorf("tcproute: service %q: %w", name, err)
	}
	if reg == nil {
		reg = health.NewRegistry()
	}
	s := &Service{
		name: name, sel: sel, reg: reg, timeout: cfg.ConnectTimeout.D(),
		now: opts.Now, dial: opts.Dialer, log: opts.Logger,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.dial == nil {
		var d net.Dialer
		s.dial = d.DialContext
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.timeout <= 0 {
		s.timeout = config.DefaultTCPConnectTimeout
	}
	if p := cfg.PassiveHealth; p != nil {
		s.passive = &health.Passive{MaxFailures: p.MaxFailures, Window: p.Window.D(), Cooldown: p.Cooldown.D()}
	}
	if p := cfg.ProxyProtocol; p != nil {
		s.proxyV = byte(p.Version)
	}
	for _, sc := range cfg.Servers {
		b := &backend{addr: sc.Address, weight: sc.Weight, h: reg.Acquire(registryKey(sc.Address)), now: s.now}
		s.servers = append(s.servers, b)
		s.pool = append(s.pool, b)
	}
	if hc := cfg.HealthCheck; hc != nil {
		s.checker = newChecker(s, hc.Interval.D(), hc.Timeout.D())
	}
	return s, nil
}

// Name is the service's name in the config.
func (s *Service) Name() string { return s.name }

// Start begins the active health checks, if the service has them.
func (s *Service) Start() {
	if s.checker != nil {
		s.checker.start()
	}
}

// Close stops the health checks and releases the servers' health state.
// Connections already made are not touched.
func (s *Service) Close() error {
	if s.checker != nil {
		s.checker.close()
	}
	for _, b := range s.servers {
		s.reg.Release(b.h)
	}
	return nil
}

// Upstream is a connection to one server of a service; Close it when the
// client connection ends (it also ends the server's count of open
// connections).
type Upstream struct {
	net.Conn
	// Server is the address of the server connected to.
	Server string
	b      *backend
	done   atomic.Bool
}

// Close closes the connection and counts it as finished.
func (u *Upstream) Close() error {
	if u.done.CompareAndSwap(false, true) {
		u.b.h.EndRequest()
	}
	return u.Conn.Close()
}

// CloseWrite half-closes the connection to the server.
func (u *Upstream) CloseWrite() error {
	if cw, ok := u.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Dial connects to a server chosen by the balancer, trying the next
// available one when a connection attempt fails (nothing has been sent
// yet, so a retry is always safe), each within the connect timeout. When
// the service sends the PROXY protocol, the header (client as source,
// local as destination) is written before Dial returns.
func (s *Service) Dial(ctx context.Context, client, local net.Addr) (*Upstream, error) {
	tried := make([]bool, len(s.pool))
	var last error
	for range s.pool {
		i := s.sel.Select(exclude(s.pool, tried))
		if i < 0 {
			break
		}
		tried[i] = true
		b := s.servers[i]
		c, err := s.dialOne(ctx, b, client, local)
		if err == nil {
			return c, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if last != nil {
		return nil, fmt.Errorf("%w (service %q): %w", ErrNoServer, s.name, last)
	}
	return nil, fmt.Errorf("%w (service %q): every server is down", ErrNoServer, s.name)
}

func (s *Service) dialOne(ctx context.Context, b *backend, client, local net.Addr) (*Upstream, error) {
	dctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c, err := s.dial(dctx, "tcp", b.addr)
	if err != nil {
		if ctx.Err() == nil {
			s.noteFailure(b, err)
		}
		return nil, fmt.Errorf("tcproute: connect to %s: %w", b.addr, err)
	}
	if s.proxyV != 0 {
		hdr := proxyproto.HeaderProxyFromAddrs(s.proxyV, client, local)
		_ = c.SetWriteDeadline(time.Now().Add(s.timeout))
		if _, err := hdr.WriteTo(c); err != nil {
			_ = c.Close()
			s.noteFailure(b, err)
			return nil, fmt.Errorf("tcproute: send PROXY header to %s: %w", b.addr, err)
		}
		_ = c.SetWriteDeadline(time.Time{})
	}
	b.h.RecordSuccess()
	b.h.StartRequest()
	return &Upstream{Conn: c, Server: b.addr, b: b}, nil
}

func (s *Service) noteFailure(b *backend, err error) {
	if b.h.RecordFailure(s.now(), s.passive, err) {
		s.log.Warn("upstream down: connections fail", "service", s.name, "upstream", b.addr, "error", err)
	}
}

// exclude returns pool with the tried entries reporting unavailable.
func exclude(pool []balance.Backend, tried []bool) []balance.Backend {
	out := make([]balance.Backend, len(pool))
	for i, b := range pool {
		if tried[i] {
			out[i] = unavailable{}
		} else {
			out[i] = b
		}
	}
	return out
}

type unavailable struct{}

func (unavailable) Available() bool { return false }
func (unavailable) Weight() int     { return 1 }
func (unavailable) InFlight() int64 { return 0 }

// ServerStatus is one server's health for the admin API.
type ServerStatus struct {
	Address   string    `json:"address"`
	Up        bool      `json:"up"`
	ActiveUp  bool      `json:"activeUp"`
	DownUntil time.Time `json:"downUntil,omitzero"`
	// Connections open now.
	Connections int64     `json:"connections"`
	Weight      int       `json:"weight"`
	LastError   string    `json:"lastError,omitempty"`
	LastCheck   time.Time `json:"lastCheck,omitzero"`
}

// Servers returns the health of every server, in config order.
func (s *Service) Servers() []ServerStatus {
	now := s.now()
	out := make([]ServerStatus, 0, len(s.servers))
	for _, b := range s.servers {
		st := b.h.Status(now)
		out = append(out, ServerStatus{Address: b.addr, Up: st.Up, ActiveUp: st.ActiveUp, DownUntil: st.DownUntil,
			Connections: st.InFlight, Weight: b.weight, LastError: st.LastError, LastCheck: st.LastCheck})
	}
	return out
}
