// Package listen binds the TCP port a challenge server answers on. It
// reads the address forms of lego's --http.port and --tls.port flags and
// turns the common bind failures into one-line errors that name the fix.
package listen

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Spec names what is being bound, for the address default and the error
// wording. Every field is required.
type Spec struct {
	// Component prefixes every error, e.g. "http-01".
	Component string
	// Flag is the CLI flag the address comes from, named in errors, e.g.
	// "--http.port".
	Flag string
	// DefaultPort is used when the address is empty, e.g. "80".
	DefaultPort string
}

// Listen binds addr (see Addr for its forms) on TCP now. A port that is
// already taken, a privileged port without the right to bind it, and an
// address that is not on this host each get a one-line error naming the
// fix (see BindError).
func (s Spec) Listen(addr string) (net.Listener, error) {
	hostPort, err := s.Addr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", hostPort)
	if err != nil {
		return nil, s.BindError(hostPort, err)
	}
	return ln, nil
}

// Addr turns a flag value into a host:port for net.Listen. It takes ""
// (all interfaces, DefaultPort), ":80", "127.0.0.1:5002", "[::1]:5002" or
// a bare port such as "5002"; surrounding spaces are ignored. Anything
// else, and a port outside 0-65535, is an error naming the flag.
func (s Spec) Addr(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	switch {
	case addr == "":
		addr = ":" + s.DefaultPort
	case isDigits(addr):
		addr = ":" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s: invalid %s %q (want \":port\", \"host:port\", \"[ipv6]:port\" or a bare port): %w",
			s.Component, s.Flag, addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%s: invalid %s %q: the port must be a number from 0 to 65535", s.Component, s.Flag, addr)
	}
	return net.JoinHostPort(host, port), nil
}

// BindError explains why binding hostPort failed with err, naming the fix
// where the cause is a common one (port in use, privileged port, address
// not on this host). The result still matches err with errors.Is.
func (s Spec) BindError(hostPort string, err error) error {
	_, port, _ := net.SplitHostPort(hostPort)
	n, _ := strconv.Atoi(port)
	var msg string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		msg = fmt.Sprintf("%s: address %s is already in use; stop what holds it or choose another %s",
			s.Component, hostPort, s.Flag)
	case errors.Is(err, syscall.EACCES) && n > 0 && n < 1024:
		msg = fmt.Sprintf("%s: no permission to bind %s: ports below 1024 need root or CAP_NET_BIND_SERVICE "+
			"(setcap cap_net_bind_service=+ep on the binary); grant it or choose a %s of 1024 or above",
			s.Component, hostPort, s.Flag)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		msg = fmt.Sprintf("%s: cannot bind %s: the host part is not an address of this machine; choose another %s",
			s.Component, hostPort, s.Flag)
	default:
		return fmt.Errorf("%s: cannot listen on %s: %w", s.Component, hostPort, err)
	}
	return &bindError{msg: msg, err: err}
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

// bindError is a one-line bind failure that still unwraps to its cause.
type bindError struct {
	msg string
	err error
}

func (e *bindError) Error() string { return e.msg }
func (e *bindError) Unwrap() error { return e.err }
