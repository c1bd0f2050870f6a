package tlsalpn01

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/zoku/zoku/internal/challenge/listen"
)

// component prefixes every error and log line of this package.
const component = "tls-alpn-01"

// addrSpec reads the --tls.port value Listen takes; an empty one means port
// 443 (RFC 8737 §3).
var addrSpec = listen.Spec{Component: component, Flag: "--tls.port", DefaultPort: "443"}

// Limits of the server started by Listen.
const (
	// handshakeTimeout bounds each connection, handshake and close together.
	handshakeTimeout = 10 * time.Second
	// maxConns bounds concurrent handshakes; further connections are closed
	// at once. A CA validates from a handful of vantage points at a time.
	maxConns = 64
	// maxAcceptBackoff caps the pause after a transient accept error.
	maxAcceptBackoff = time.Second
)

// Server is a running TLS-ALPN-01 server started by Solver.Listen. Each
// connection gets one TLS handshake and is then closed: the acme-tls/1
// protocol carries no application data (RFC 8737 §4).
type Server struct {
	ln     net.Listener
	cfg    *tls.Config
	logger *slog.Logger
	ctx    context.Context // cancelled by Close; aborts handshakes in flight
	cancel context.CancelFunc
	sem    chan struct{} // one slot per connection being handled
	wg     sync.WaitGroup

	acceptErr error // written by the accept loop before it ends

	closeOnce sync.Once
	closeErr  error
}

// Listen binds addr now and completes TLS-ALPN-01 handshakes on it with
// TLSConfig until Close.
//
// addr takes the forms of lego's --tls.port: "" (all interfaces, port 443),
// ":443", "127.0.0.1:5001", "[::1]:5001", or a bare port such as "5001".
// Port 0 picks a free port; Port reports it. A port that is already taken, a
// privileged port without the right to bind it, and an address that is not on
// this host each get a one-line error naming the fix; the error still matches
// the underlying syscall error with errors.Is.
func (s *Solver) Listen(addr string) (*Server, error) {
	ln, err := addrSpec.Listen(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{
		ln:     ln,
		cfg:    s.TLSConfig(),
		logger: s.logger().With("component", component),
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, maxConns),
	}
	srv.wg.Go(srv.acceptLoop)
	return srv, nil
}

// Addr returns the address the server is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Port returns the TCP port the server is bound to, which is the chosen one
// when Listen was given port 0.
func (s *Server) Port() int {
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Close stops the server: it closes the listener, aborts handshakes in
// flight and waits for every goroutine to end. It returns the error that
// stopped the server early, if any. Calling it again returns the same result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		err := s.ln.Close()
		s.wg.Wait()
		switch {
		case s.acceptErr != nil:
			s.closeErr = s.acceptErr
		case err != nil:
			s.closeErr = fmt.Errorf("%s: close listener on %s: %w", component, s.ln.Addr(), err)
		}
	})
	return s.closeErr
}

// acceptLoop accepts connections until the listener fails or is closed.
func (s *Server) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return // closed by Close
			}
			if transientAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), maxAcceptBackoff)
				s.logger.Warn("accept failed; retrying", "error", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-s.ctx.Done():
					return
				}
			}
			s.logger.Error("server stopped", "address", s.ln.Addr().String(), "error", err)
			s.acceptErr = fmt.Errorf("%s: server on %s stopped: %w", component, s.ln.Addr(), err)
			return
		}
		backoff = 0
		select {
		case s.sem <- struct{}{}:
			s.wg.Go(func() { s.handle(c) })
		default:
			s.logger.Debug("too many connections; closing", "remote_addr", c.RemoteAddr().String())
			_ = c.Close()
		}
	}
}

// handle runs one handshake on c and closes it.
func (s *Server) handle(c net.Conn) {
	defer func() { <-s.sem }()
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("panic in handshake", "remote_addr", c.RemoteAddr().String(), "panic", r)
			_ = c.Close()
		}
	}()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	tc := tls.Server(c, s.cfg)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.logger.Debug("handshake failed", "remote_addr", c.RemoteAddr().String(), "error", err)
	}
	_ = tc.Close() // RFC 8737 §4: no application data follows the handshake
}

// transientAccept reports whether an accept error is worth retrying.
func transientAccept(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
