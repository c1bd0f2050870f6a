package http01

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// component prefixes every error and log line of this package.
	component = "http-01"
	// flagName is the CLI flag whose value Listen takes, named in errors.
	flagName = "--http.port"
	// defaultPort is used when the address is empty (RFC 8555 §8.3: port 80).
	defaultPort = "80"
)

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
	hostPort, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", hostPort)
	if err != nil {
		return nil, bindError(hostPort, err)
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

// parseAddr turns a --http.port value into a host:port for net.Listen.
func parseAddr(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	switch {
	case addr == "":
		addr = ":" + defaultPort
	case isDigits(addr):
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s: invalid %s %q (want \":port\", \"host:port\", \"[ipv6]:port\" or a bare port): %w",
			component, flagName, addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%s: invalid %s %q: the port must be a number from 0 to 65535", component, flagName, addr)
	}
	return net.JoinHostPort(host, port), nil
}

// isDigits reports whether s is non-empty and only ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// listenError is a one-line bind failure that still unwraps to its cause.
type listenError struct {
	msg string
	err error
}

func (e *listenError) Error() string { return e.msg }
func (e *listenError) Unwrap() error { return e.err }

// bindError explains why binding hostPort failed, naming the fix where the
// cause is a common one.
func bindError(hostPort string, err error) error {
	_, port, _ := net.SplitHostPort(hostPort)
	n, _ := strconv.Atoi(port)
	var msg string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		msg = fmt.Sprintf("%s: address %s is already in use; stop what holds it or choose another %s",
			component, hostPort, flagName)
	case errors.Is(err, syscall.EACCES) && n > 0 && n < 1024:
		msg = fmt.Sprintf("%s: no permission to bind %s: ports below 1024 need root or CAP_NET_BIND_SERVICE "+
			"(setcap cap_net_bind_service=+ep on the binary); grant it or choose a %s of 1024 or above",
			component, hostPort, flagName)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		msg = fmt.Sprintf("%s: cannot bind %s: the host part is not an address of this machine; choose another %s",
			component, hostPort, flagName)
	default:
		return fmt.Errorf("%s: cannot listen on %s: %w", component, hostPort, err)
	}
	return &listenError{msg: msg, err: err}
}
