package http01

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/challenge/listen"
)

// component prefixes every error and log line of this package.
const component = "http-01"

// addrSpec reads the --http.port value Listen takes; an empty one means port
// 80 (RFC 8555 §8.3).
var addrSpec = listen.Spec{Component: component, Flag: "--http.port", DefaultPort: "80"}

// Limits of the server started by Listen. A challenge request is one small
// GET, so these are far below net/http's defaults.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 30 * time.Second
	maxHeaderBytes    = 8 << 10
)

// Server is a running HTTP-01 server started by Solver.Listen.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned

	serveErr error // written before done is closed

	closeOnce sync.Once
	closeErr  error
}

// Listen binds addr now and serves s.Handler(nil) on it until Close.
//
// addr takes the forms of lego's --http.port: "" (all interfaces, port 80),
// ":80", "127.0.0.1:5002", "[::1]:5002", or a bare port such as "5002".
// Port 0 picks a free port; Port reports it. A port that is already taken, a
// privileged port without the right to bind it, and an address that is not on
// this host each get a one-line error naming the fix; the error still matches
// the underlying syscall error with errors.Is.
func (s *Solver) Listen(addr string) (*Server, error) {
	ln, err := addrSpec.Listen(addr)
	if err != nil {
		return nil, err
	}
	logger := s.logger().With("component", component)
	srv := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           s.Handler(nil),
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(srv.done)
		if err := srv.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("server stopped", "address", ln.Addr().String(), "error", err)
			srv.serveErr = fmt.Errorf("%s: server on %s stopped: %w", component, ln.Addr(), err)
		}
	}()
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

// Close stops the server, closing the listener and every open connection,
// and waits for its goroutine to end. It returns the error that stopped the
// server early, if any. Calling it again returns the same result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err := s.srv.Close()
		<-s.done
		switch {
		case s.serveErr != nil:
			s.closeErr = s.serveErr
		case err != nil:
			s.closeErr = fmt.Errorf("%s: close server on %s: %w", component, s.ln.Addr(), err)
		}
	})
	return s.closeErr
}
