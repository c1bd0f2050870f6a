package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/zoku/zoku/internal/config"
)

// HTTP/3 runs QUIC on the UDP port of the entry point's TCP port, with the
// same handler and the same certificates (the TLS config reads the running
// table on every handshake, as on TCP). TLS responses over HTTP/1.1 and
// HTTP/2 advertise it with Alt-Svc (clientauth.go's epEdge adds it).

// h3Server is an entry point's HTTP/3 server.
type h3Server struct {
	pc   net.PacketConn
	srv  *http3.Server
	done chan struct{}
}

// altSvcValue is the Alt-Svc header of an entry point serving HTTP/3 on
// port (the advertised port wins).
func altSvcValue(h *config.HTTP3, port int) string {
	if h.AdvertisedPort != 0 {
		port = h.AdvertisedPort
	}
	maxAge := h.MaxAge.D()
	if maxAge <= 0 {
		maxAge = config.DefaultHTTP3MaxAge
	}
	return `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.FormatInt(int64(maxAge/time.Second), 10)
}

// listenHTTP3 binds the UDP socket of entry point name on the host and
// port its TCP listener has.
func (r *Router) listenHTTP3(name string, tcp net.Addr, epc *config.EntryPoint, h http.Handler) (*h3Server, error) {
	pc, err := net.ListenPacket("udp", tcp.String())
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("router: entry point %q: HTTP/3: UDP address %s is already in use; stop what holds it or remove entryPoints.%s.http3", name, tcp, name)
		}
		return nil, fmt.Errorf("router: entry point %q: HTTP/3: %w", name, err)
	}
	srv := &http3.Server{
		Handler:        h,
		TLSConfig:      r.tlsConfig(name),
		MaxHeaderBytes: epc.MaxHeaderBytes,
		IdleTimeout:    epc.Timeouts.Idle.D(),
		Logger:         r.log,
	}
	return &h3Server{pc: pc, srv: srv, done: make(chan struct{})}, nil
}

// start serves HTTP/3 until close.
func (h *h3Server) start(r *Router, name string) {
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(h.pc); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			r.log.Error("HTTP/3 stopped", "entry_point", name, "error", err)
		}
	}()
	r.log.Info("entry point serving HTTP/3", "entry_point", name, "address", h.pc.LocalAddr().String())
}

// close tells clients to go away (GOAWAY), waits for requests in flight
// until ctx ends, then closes every connection and the socket.
func (h *h3Server) close(ctx context.Context) {
	if h == nil {
		return
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		_ = h.srv.Close()
	}
	_ = h.pc.Close()
	<-h.done
}

// syncHTTP3 starts or stops the HTTP/3 server of running entry point ep to
// follow epc; a start binds before the new config is swapped in, so a
// busy UDP port refuses the config. It returns the server to stop once
// the new config runs, if any.
func (r *Router) syncHTTP3(ep *entryPoint, epc *config.EntryPoint) (stop *h3Server, err error) {
	cur := ep.h3.Load()
	switch {
	case epc.HTTP3 != nil && epc.TLS != nil && cur == nil:
		h, err := r.listenHTTP3(ep.name, ep.ln.Addr(), epc, ep.srv.Handler)
		if err != nil {
			return nil, err
		}
		ep.h3.Store(h)
		h.start(r, ep.name)
		return nil, nil
	case (epc.HTTP3 == nil || epc.TLS == nil) && cur != nil:
		ep.h3.Store(nil)
		return cur, nil
	}
	return nil, nil
}

// fixAltSvc puts the bound port into the Alt-Svc of entry points whose
// address asks the system for a port (":0", in tests).
func (r *Router) fixAltSvc(t *table, bound func(name string) net.Addr) {
	if t.l4 == nil {
		return
	}
	for name, epc := range t.cfg.EntryPoints {
		if epc.HTTP3 == nil || epc.Port() != 0 {
			continue
		}
		i := r.epIndex(name)
		if i >= len(t.l4.edge) || t.l4.edge[i] == nil {
			continue
		}
		if a, ok := bound(name).(*net.TCPAddr); ok {
			t.l4.edge[i].altSvc = []string{altSvcValue(epc.HTTP3, a.Port)}
		}
	}
}
