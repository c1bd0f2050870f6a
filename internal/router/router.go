// Package router is zoku's edge router: entry points (plain and TLS
// listeners), the HTTP to HTTPS redirect that spares ACME challenges,
// routing by host, path and the other conditions of match.go to services
// through each route's middlewares (internal/middleware), SNI certificate
// selection, access logs, hot reload without dropping connections, and
// graceful shutdown. On the same entry points it routes TCP by SNI (l4.go,
// listener.go, with internal/tcproute), serves HTTP/3 (http3.go) and checks
// client certificates (clientauth.go).
//
// The router knows nothing of ACME: it serves the HTTP-01 handler and the
// TLS-ALPN-01 certificates its Deps give it, and takes certificates from a
// certmgr.Cache.
package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/http1"
	"github.com/zoku/zoku/internal/middleware"
	"github.com/zoku/zoku/internal/proxy/health"
)

// Service is what a route sends requests to; *proxy.Service is one.
type Service interface {
	http.Handler
	Close() error
}

// ServiceFactory builds a service from its config; the router calls it on
// every reload for every service.
type ServiceFactory func(name string, cfg *config.Service) (Service, error)

// Certificates gives the TLS certificate for a handshake.
type Certificates interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Deps are the router's collaborators. Certs is required on TLS entry
// points; the rest may be nil.
type Deps struct {
	// Logger for the router's own lines; nil discards.
	Logger *slog.Logger
	// Challenges wraps plain entry points' handlers to answer HTTP-01
	// (an http01.Solver's Handler).
	Challenges func(next http.Handler) http.Handler
	// ALPN answers TLS-ALPN-01 handshakes (a tlsalpn01.Solver's
	// GetCertificate); it must return an error for other handshakes.
	ALPN func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// IsALPNChallenge tells a TLS-ALPN-01 handshake from a normal one.
	IsALPNChallenge func(*tls.ClientHelloInfo) bool
	// Certs serves certificates by SNI.
	Certs Certificates
	// Services builds services; nil builds proxy services that share one
	// health registry, so server health survives reloads.
	Services ServiceFactory
	// AccessLog receives one JSON line per request; nil disables it.
	AccessLog io.Writer
	// OnRequest, when set, is called after every routed request (metrics).
	OnRequest func(RequestRecord)
	// ErrorLog receives the entry points' http.Server errors (TLS
	// handshake failures among them); nil logs them at debug level.
	ErrorLog *log.Logger
	// NetHTTPOnly serves every HTTP/1.x connection with net/http's server
	// instead of zoku's own loop for the common case (internal/http1).
	NetHTTPOnly bool
	// OnHandOver, when set, is told of each connection an entry point's
	// loop hands to net/http, and why (one of http1's Reason constants).
	OnHandOver func(entryPoint, reason string)
}

// RequestRecord describes one finished request.
type RequestRecord struct {
	EntryPoint, Route, Service, Server string
	Method                             string
	Status                             int
	Bytes                              int64
	Duration                           time.Duration
}

// Router serves the entry points of the current config. Apply swaps in a
// new config; Shutdown drains and stops.
type Router struct {
	deps Deps
	log  *slog.Logger
	tab  atomic.Pointer[table]
	alog *slog.Logger

	mu  sync.Mutex
	eps map[string]*entryPoint // guarded by mu

	idxMu sync.Mutex
	epIdx map[string]int // entry point name -> index in table.eps; guarded by idxMu

	// mwState keeps middleware state (rate-limit buckets, breakers)
	// across reloads; mwMu serialises the Applies that build it.
	mwMu    sync.Mutex
	mwState middleware.State
	// tcpHealth keeps the health of TCP servers across reloads.
	tcpHealth *health.Registry
}

// New returns a router with no entry points; call Apply.
func New(deps Deps) *Router {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Services == nil {
		deps.Services = proxyServices(deps.Logger)
	}
	r := &Router{deps: deps, log: deps.Logger.With("component", "router"), eps: map[string]*entryPoint{}, tcpHealth: health.NewRegistry()}
	if deps.AccessLog != nil {
		r.alog = slog.New(slog.NewJSONHandler(deps.AccessLog, nil))
	}
	return r
}

// Apply makes cfg the running config: it builds every service first (a
// failure leaves the old config running), swaps routes and services in
// one atomic step, opens listeners for new entry points, drains and closes
// removed ones, and closes the old services once swapped out. Requests in
// flight finish on the services they started on.
func (r *Router) Apply(ctx context.Context, cfg *config.Config) error {
	services, err := r.buildServices(cfg) // services.go
	if err != nil {
		return err
	}
	next := newTable(cfg)
	closeAll := func(m map[string]Service) {
		closeServices(m)
		closeMiddlewares(next.mws)
	}
	next.services, next.tls, next.alpn = services, map[string]*tls.Config{}, map[string]*tls.Config{}
	r.mwMu.Lock() // one Apply builds middleware state at a time
	defer r.mwMu.Unlock()
	r.mwState.Begin()
	if err := r.compile(next); err != nil {
		closeAll(services)
		return err
	}
	for name, epc := range cfg.EntryPoints {
		if epc.TLS == nil {
			continue
		}
		base, err := cfg.TLSConfigBase(epc)
		if err != nil {
			closeAll(services)
			return fmt.Errorf("router: entry point %q: %w", name, err)
		}
		base.GetCertificate = r.getCertificate
		alpn := base.Clone()
		alpn.NextProtos = []string{"acme-tls/1"}
		next.tls[name], next.alpn[name] = base, alpn
	}
	// TCP routes and services, PROXY protocol, HTTP/3 and client
	// certificates (l4.go).
	if err := r.buildL4(next); err != nil {
		closeAll(services)
		return err
	}
	abandon := func() {
		closeAll(services)
		next.l4.close()
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	// Bind new listeners before swapping, so a busy port refuses the
	// whole config.
	var opened []*entryPoint
	for name, epc := range cfg.EntryPoints {
		if old, ok := r.eps[name]; ok && old.addr == epc.Address {
			continue
		}
		ep, err := r.listen(name, epc)
		if err != nil {
			for _, o := range opened {
				o.abandon()
			}
			abandon()
			return err
		}
		opened = append(opened, ep)
	}
	// HTTP/3 turned on or off on entry points that stay.
	var h3Stop, h3Started []*h3Server
	for name, epc := range cfg.EntryPoints {
		old, ok := r.eps[name]
		if !ok || old.addr != epc.Address {
			continue
		}
		before := old.h3.Load()
		stop, err := r.syncHTTP3(old, epc)
		if err != nil {
			for _, o := range opened {
				o.abandon()
			}
			for _, h := range h3Started {
				h.close(context.WithoutCancel(ctx))
			}
			abandon()
			return err
		}
		if stop != nil {
			h3Stop = append(h3Stop, stop)
		}
		if h := old.h3.Load(); h != nil && h != before {
			h3Started = append(h3Started, h)
		}
	}
	r.fixAltSvc(next, func(name string) net.Addr {
		for _, o := range opened {
			if o.name == name {
				return o.ln.Addr()
			}
		}
		if ep, ok := r.eps[name]; ok {
			return ep.ln.Addr()
		}
		return nil
	})
	prev := r.tab.Swap(next)
	for _, h := range h3Stop {
		go h.close(context.WithoutCancel(ctx))
	}
	for _, ep := range opened {
		if old, ok := r.eps[ep.name]; ok {
			go old.close(context.WithoutCancel(ctx))
		}
		r.eps[ep.name] = ep
		ep.start()
		r.log.Info("entry point listening", "entry_point", ep.name, "address", ep.ln.Addr().String(), "tls", ep.tls)
	}
	for name, ep := range r.eps {
		if _, ok := cfg.EntryPoints[name]; !ok {
			delete(r.eps, name)
			go ep.close(context.WithoutCancel(ctx))
		}
	}
	// Health checks, now that every entry point listens.
	startChecks(next.services)
	next.l4.start()
	// The running config's middlewares have their state; forget the
	// rest (configs replaced, or built and refused).
	r.mwState.Retain()
	if prev != nil {
		// Old services may still be serving requests that started before
		// the swap; closing stops their health checks and idle
		// connections, not those requests; TCP connections already
		// forwarded keep their server connections.
		closeServices(prev.services)
		closeMiddlewares(prev.mws)
		prev.l4.close()
	}
	return nil
}

// Addr returns the bound address of an entry point (useful with port 0).
func (r *Router) Addr(entryPoint string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ep, ok := r.eps[entryPoint]; ok {
		return ep.ln.Addr()
	}
	return nil
}

// Shutdown stops accepting, waits for requests in flight until ctx ends
// (each entry point's shutdown timeout bounds it too), and closes services.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	eps := r.eps
	r.eps = map[string]*entryPoint{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, ep := range eps {
		wg.Add(1)
		go func() { defer wg.Done(); ep.close(ctx) }()
	}
	wg.Wait()
	if t := r.tab.Swap(nil); t != nil {
		closeServices(t.services)
		closeMiddlewares(t.mws)
		t.l4.close()
	}
	return nil
}

// entryPoint is one listener and its HTTP server: zoku's HTTP/1.1 loop
// for the common case, net/http's server (srv) for the rest and HTTP/2.
type entryPoint struct {
	name  string
	addr  string
	tls   bool
	ln    net.Listener
	l4    *l4Listener // ln as the HTTP server sees it (listener.go)
	srv   *http.Server
	loop  *http1.Server            // nil with Deps.NetHTTPOnly
	h3    atomic.Pointer[h3Server] // HTTP/3, when on (http3.go)
	done  chan struct{}
	log   *slog.Logger
	drain time.Duration
}

func (r *Router) listen(name string, epc *config.EntryPoint) (*entryPoint, error) {
	ln, err := net.Listen("tcp", epc.Address)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("router: entry point %q: address %s is already in use; stop what holds it or change entryPoints.%s.address", name, epc.Address, name)
		}
		return nil, fmt.Errorf("router: entry point %q: %w", name, err)
	}
	ep := &entryPoint{name: name, addr: epc.Address, tls: epc.TLS != nil, ln: ln, done: make(chan struct{}), log: r.log, drain: epc.Timeouts.Shutdown.D()}
	ep.l4 = newL4Listener(r, name, ln)
	ep.srv = &http.Server{
		Handler:           r.edgeHandler(name, r.handler(name)),
		ReadHeaderTimeout: epc.Timeouts.ReadHeader.D(),
		ReadTimeout:       epc.Timeouts.Read.D(),
		WriteTimeout:      epc.Timeouts.Write.D(),
		IdleTimeout:       epc.Timeouts.Idle.D(),
		MaxHeaderBytes:    epc.MaxHeaderBytes,
		ErrorLog:          r.errorLog(),
	}
	if !r.deps.NetHTTPOnly {
		ep.loop = &http1.Server{
			Handler:           ep.srv.Handler,
			Fallback:          ep.srv,
			ReadHeaderTimeout: ep.srv.ReadHeaderTimeout,
			ReadTimeout:       ep.srv.ReadTimeout,
			WriteTimeout:      ep.srv.WriteTimeout,
			IdleTimeout:       ep.srv.IdleTimeout,
			ErrorLog:          ep.srv.ErrorLog,
		}
		if f := r.deps.OnHandOver; f != nil {
			ep.loop.OnHandOver = func(reason string) { f(name, reason) }
		}
	}
	if ep.tls {
		if ep.loop != nil {
			// The loop runs the handshakes, and hands HTTP/2 to srv.
			ep.loop.TLSConfig = r.tlsConfig(name)
		} else {
			ep.srv.TLSConfig = r.tlsConfig(name)
		}
		if epc.HTTP3 != nil {
			h, err := r.listenHTTP3(name, ln.Addr(), epc, ep.srv.Handler)
			if err != nil {
				_ = ln.Close()
				return nil, err
			}
			ep.h3.Store(h)
		}
	}
	return ep, nil
}

// abandon closes the sockets of an entry point that never started.
func (ep *entryPoint) abandon() {
	_ = ep.ln.Close()
	if h := ep.h3.Load(); h != nil {
		_ = h.pc.Close()
	}
}

func (ep *entryPoint) start() {
	go func() {
		defer close(ep.done)
		var err error
		switch {
		case ep.loop != nil:
			err = ep.loop.Serve(ep.l4)
		case ep.tls:
			err = ep.srv.ServeTLS(ep.l4, "", "")
		default:
			err = ep.srv.Serve(ep.l4)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			ep.log.Error("entry point stopped", "entry_point", ep.name, "error", err)
		}
	}()
	if h := ep.h3.Load(); h != nil {
		h.start(ep.l4.r, ep.name)
	}
}

// close drains the entry point: no new connections, in-flight requests
// and TCP connections finish (bounded by the shutdown timeout), then it
// is closed.
func (ep *entryPoint) close(ctx context.Context) {
	if ep.drain > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ep.drain)
		defer cancel()
	}
	var wg sync.WaitGroup
	if h := ep.h3.Swap(nil); h != nil {
		wg.Go(func() { h.close(ctx) })
	}
	if ep.loop != nil {
		if err := ep.loop.Shutdown(ctx); err != nil {
			_ = ep.loop.Close()
		}
	} else if err := ep.srv.Shutdown(ctx); err != nil {
		_ = ep.srv.Close()
	}
	<-ep.done
	ep.l4.drain(ctx)
	wg.Wait()
}

func (r *Router) errorLog() *log.Logger {
	if r.deps.ErrorLog != nil {
		return r.deps.ErrorLog
	}
	return slog.NewLogLogger(r.log.Handler(), slog.LevelDebug)
}
