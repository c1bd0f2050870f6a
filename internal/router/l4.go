package router

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/tcproute"
)

// l4State is the layer-4 and TLS part of a running config, built once by
// Apply and swapped in with the route table: TCP routes and services, the
// PROXY protocol policy of each entry point, and the per-request checks
// of HTTP/3 and client certificates (http.go of each entry point).
type l4State struct {
	// eps holds the entry points whose connections need a look before the
	// HTTP server gets them (TCP routes, PROXY protocol); the others are
	// not in it.
	eps map[string]*epL4
	// services are the TCP services by name.
	services map[string]*tcproute.Service
	// edge holds, by entry point index, what the HTTP request path of an
	// entry point adds (Alt-Svc, client certificates); nil entries (and a
	// nil slice) add nothing.
	edge []*epEdge
	// hello holds the per-server-name TLS configs of entry points whose
	// routes ask for client certificates, by entry point name.
	hello map[string]*helloConfigs
}

// epL4 is one entry point's connection plan.
type epL4 struct {
	name   string
	tls    bool // the entry point has tls: its HTTP server speaks HTTPS
	table  *tcproute.Table
	proxy  *tcproute.ProxyPolicy
	peek   time.Duration // time a client has to send its ClientHello
	direct bool          // forward at once to the plain catch-all
	// terminate holds the TLS config of each terminate route, by name.
	terminate map[string]*tls.Config
}

// close stops the TCP services' health checks.
func (s *l4State) close() {
	if s == nil {
		return
	}
	for _, svc := range s.services {
		_ = svc.Close()
	}
}

// buildL4 builds the layer-4 state of t's config; t.tls must be built. On
// error nothing it built is left running.
func (r *Router) buildL4(t *table) (err error) {
	cfg := t.cfg
	st := &l4State{eps: map[string]*epL4{}, services: map[string]*tcproute.Service{}, hello: map[string]*helloConfigs{}}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	for name, sc := range cfg.TCPServices {
		svc, err := tcproute.NewService(name, sc, r.tcpHealth, tcproute.Options{Logger: r.log})
		if err != nil {
			return fmt.Errorf("router: tcp service %q: %w", name, err)
		}
		st.services[name] = svc
	}
	for name, epc := range cfg.EntryPoints {
		p := &epL4{name: name, tls: epc.TLS != nil, table: tcproute.NewTable(cfg, name), peek: epc.Timeouts.ReadHeader.D()}
		if pp := epc.ProxyProtocol; pp != nil {
			pol := &tcproute.ProxyPolicy{Timeout: pp.HeaderTimeout.D()}
			for _, s := range pp.TrustedIPs {
				pfx, err := parsePrefix(s)
				if err != nil {
					return fmt.Errorf("router: entry point %q: proxyProtocol.trustedIPs: %w", name, err)
				}
				pol.Trusted = append(pol.Trusted, pfx)
			}
			p.proxy = pol
		}
		if p.table != nil {
			p.direct = p.table.OnlyPlainCatchAll() && !p.tls
			if err := r.terminateConfigs(cfg, name, epc, p); err != nil {
				return err
			}
		}
		if p.table != nil || p.proxy != nil {
			st.eps[name] = p
		}
		edge, hello, err := r.buildEdge(t, name, epc)
		if err != nil {
			return err
		}
		if edge != nil {
			i := r.epIndex(name)
			if i >= len(st.edge) {
				st.edge = append(st.edge, make([]*epEdge, i+1-len(st.edge))...)
			}
			st.edge[i] = edge
		}
		if hello != nil {
			st.hello[name] = hello
		}
	}
	t.l4 = st
	return nil
}

// start begins the TCP services' health checks. Apply calls it once the
// entry points are listening: a first round run before that would find a
// server that is one of zoku's own entry points down, and keep it down
// for a whole interval.
func (s *l4State) start() {
	if s == nil {
		return
	}
	for _, svc := range s.services {
		svc.Start()
	}
}

// terminateConfigs builds the TLS config of every terminate route of
// entry point name: the entry point's TLS options (or the defaults), the
// engine's certificates, no ALPN (the server behind speaks whatever it
// speaks), and the route's client certificate policy, else the entry
// point's.
func (r *Router) terminateConfigs(cfg *config.Config, name string, epc *config.EntryPoint, p *epL4) error {
	for _, rt := range p.table.Routes() {
		if rt.TLS != config.TLSTerminate {
			continue
		}
		if p.terminate == nil {
			p.terminate = map[string]*tls.Config{}
		}
		base := &tls.Config{MinVersion: tls.VersionTLS12}
		if epc.TLS != nil {
			b, err := cfg.TLSConfigBase(epc)
			if err != nil {
				return fmt.Errorf("router: entry point %q: %w", name, err)
			}
			base = b
		}
		base.NextProtos = nil
		base.GetCertificate = r.getCertificate
		ca := cfg.TCPRoutes[rt.Name].ClientAuth
		if ca == nil {
			ca = epc.ClientAuth
		}
		if ca != nil {
			pol, err := newAuthPolicy(ca)
			if err != nil {
				return fmt.Errorf("router: tcp route %q: clientAuth: %w", rt.Name, err)
			}
			pol.apply(base)
		}
		p.terminate[rt.Name] = base
	}
	return nil
}

// parsePrefix reads an IP or a CIDR (validated by config).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// l4Of returns the connection plan of entry point ep in the running
// config, or nil when its connections go straight to the HTTP server.
func (r *Router) l4Of(ep string) *epL4 {
	t := r.tab.Load()
	if t == nil || t.l4 == nil || len(t.l4.eps) == 0 {
		return nil
	}
	return t.l4.eps[ep]
}

// handle is the life of one connection on an entry point with a plan: the
// PROXY header from a trusted peer, a look at the ClientHello, then a TCP
// route (passed through, or terminated here) or the HTTP server.
func (l *l4Listener) handle(c net.Conn, p *epL4) {
	r := l.r
	pc0, err := tcproute.AcceptProxy(c, p.proxy)
	if err != nil {
		r.log.Debug("connection refused", "entry_point", p.name, "error", err)
		_ = c.Close()
		return
	}
	c = pc0
	if p.table == nil {
		l.toHTTP(c)
		return
	}
	if p.direct {
		l.forward(c, p, p.table.Match(false, ""), nil, time.Now())
		return
	}
	start := time.Now()
	pc, hello, err := tcproute.Peek(c, p.peek)
	if err != nil {
		r.log.Debug("connection closed before routing", "entry_point", p.name, "client", c.RemoteAddr().String(), "error", err)
		_ = c.Close()
		return
	}
	if p.tls && hello.Info != nil && r.ownsChallenge(hello.Info) {
		// zoku's own TLS-ALPN-01 answer: the HTTP server's TLS config
		// serves it, whatever route the name has.
		l.toHTTP(pc)
		return
	}
	rt := p.table.Match(hello.TLS, hello.ServerName)
	if rt == nil {
		l.toHTTP(pc)
		return
	}
	l.forward(pc, p, rt, &hello, start)
}

// ownsChallenge reports whether hello is a TLS-ALPN-01 validation that
// zoku is answering now. Another one, for a name a passthrough route
// sends to its server, is that server's to answer.
func (r *Router) ownsChallenge(hello *tls.ClientHelloInfo) bool {
	if r.deps.IsALPNChallenge == nil || r.deps.ALPN == nil || !r.deps.IsALPNChallenge(hello) {
		return false
	}
	_, err := r.deps.ALPN(hello)
	return err == nil
}

// forward connects c to a server of rt's service and copies both ways
// until both sides are done, terminating TLS first for a terminate route.
func (l *l4Listener) forward(c net.Conn, p *epL4, rt *tcproute.Route, hello *tcproute.Hello, start time.Time) {
	r := l.r
	t := r.tab.Load()
	var svc *tcproute.Service
	if t != nil && t.l4 != nil {
		svc = t.l4.services[rt.Service]
	}
	client := c
	sni := ""
	if hello != nil {
		sni = hello.ServerName
	}
	if rt.TLS == config.TLSTerminate {
		tc := tls.Server(c, p.terminate[rt.Name])
		ctx, cancel := context.WithTimeout(context.Background(), max(p.peek, time.Second))
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			r.log.Debug("tls handshake failed", "entry_point", p.name, "tcp_route", rt.Name, "client", c.RemoteAddr().String(), "error", err)
			_ = c.Close()
			return
		}
		client = tc
	}
	if svc == nil {
		r.log.Warn("tcp route has no service", "tcp_route", rt.Name, "service", rt.Service)
		_ = client.Close()
		return
	}
	up, err := svc.Dial(context.Background(), c.RemoteAddr(), c.LocalAddr())
	if err != nil {
		r.log.Warn("tcp connection not forwarded", "entry_point", p.name, "tcp_route", rt.Name, "service", rt.Service, "error", err)
		_ = client.Close()
		r.logTCP(p.name, rt, "", c.RemoteAddr(), sni, 0, 0, start, err)
		return
	}
	var head []byte
	if pc, ok := client.(*tcproute.Conn); ok {
		head = pc.Buffered()
	}
	in, out := tcproute.Pipe(client, up, head)
	r.logTCP(p.name, rt, up.Server, c.RemoteAddr(), sni, in, out, start, nil)
}

// logTCP writes one access log line for a finished TCP connection.
func (r *Router) logTCP(ep string, rt *tcproute.Route, server string, client net.Addr, sni string, in, out int64, start time.Time, err error) {
	if r.alog == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("entry_point", ep), slog.String("tcp_route", rt.Name), slog.String("service", rt.Service),
		slog.String("server", server), slog.String("client", client.String()), slog.String("sni", sni),
		slog.String("tls", tlsMode(rt.TLS)), slog.Int64("bytes_in", in), slog.Int64("bytes_out", out),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	r.alog.LogAttrs(context.Background(), slog.LevelInfo, "tcp connection", attrs...)
}

func tlsMode(m string) string {
	if m == "" {
		return "none"
	}
	return m
}
