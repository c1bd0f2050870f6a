package tlsalpn01

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "", want: ":443"},
		{in: ":443", want: ":443"},
		{in: "5002", want: ":5002"},
		{in: " 5002 ", want: ":5002"},
		{in: "127.0.0.1:5002", want: "127.0.0.1:5002"},
		{in: "[::1]:5002", want: "[::1]:5002"},
		{in: "localhost:0", want: "localhost:0"},
		{in: "::1", wantErr: `tls-alpn-01: invalid --tls.port "::1" (want ":port", "host:port", "[ipv6]:port" or a bare port): address ::1: too many colons in address`},
		{in: "localhost", wantErr: `tls-alpn-01: invalid --tls.port "localhost" (want ":port", "host:port", "[ipv6]:port" or a bare port): address localhost: missing port in address`},
		{in: "70000", wantErr: `tls-alpn-01: invalid --tls.port ":70000": the port must be a number from 0 to 65535`},
		{in: "127.0.0.1:http", wantErr: `tls-alpn-01: invalid --tls.port "127.0.0.1:http": the port must be a number from 0 to 65535`},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := addrSpec.Addr(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseAddr(%q) error: got %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAddr(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseAddr(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestListenAddressInUse holds a real port, then asks Listen for it in each
// accepted form.
func TestListenAddressInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hold a port: %v", err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)

	tests := []struct {
		name, addr, want string
	}{
		{"host and port", "127.0.0.1:" + port,
			"tls-alpn-01: address 127.0.0.1:" + port + " is already in use; stop what holds it or choose another --tls.port"},
		{"bare port", port,
			"tls-alpn-01: address :" + port + " is already in use; stop what holds it or choose another --tls.port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := NewSolver().Listen(tt.addr)
			if err == nil {
				srv.Close()
				t.Fatalf("Listen(%q): got nil error, want %q", tt.addr, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Listen(%q) error:\n got %q\nwant %q", tt.addr, err, tt.want)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("errors.Is(err, EADDRINUSE): got false, want true")
			}
		})
	}
}

// TestBindErrorLines checks the wording for causes that cannot be produced
// for real in every environment (tests often run as root).
func TestBindErrorLines(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	tests := []struct {
		name, hostPort string
		err            error
		want           string
	}{
		{"in use", "127.0.0.1:5002", opErr(syscall.EADDRINUSE),
			"tls-alpn-01: address 127.0.0.1:5002 is already in use; stop what holds it or choose another --tls.port"},
		{"privileged port", ":443", opErr(syscall.EACCES),
			"tls-alpn-01: no permission to bind :443: ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary); grant it or choose a --tls.port of 1024 or above"},
		{"not on this host", "192.0.2.1:5002", opErr(syscall.EADDRNOTAVAIL),
			"tls-alpn-01: cannot bind 192.0.2.1:5002: the host part is not an address of this machine; choose another --tls.port"},
		{"permission on a high port", ":5002", opErr(syscall.EACCES),
			"tls-alpn-01: cannot listen on :5002: listen tcp: bind: permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := addrSpec.BindError(tt.hostPort, tt.err)
			if err.Error() != tt.want {
				t.Errorf("bindError:\n got %q\nwant %q", err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("errors.Is(err, cause): got false, want true")
			}
		})
	}
}

// TestListenPrivilegedPort binds a port below 1024 for real when the test
// runs without the right to do so.
func TestListenPrivilegedPort(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which may bind any port; the wording is covered by TestBindErrorLines")
	}
	srv, err := NewSolver().Listen("127.0.0.1:1")
	if err == nil {
		srv.Close()
		t.Skip("this host lets unprivileged users bind port 1 (net.ipv4.ip_unprivileged_port_start)")
	}
	want := "tls-alpn-01: no permission to bind 127.0.0.1:1: ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary); grant it or choose a --tls.port of 1024 or above"
	if err.Error() != want {
		t.Errorf("Listen error:\n got %q\nwant %q", err, want)
	}
}

func TestListenPortAndIPv6(t *testing.T) {
	tests := []struct{ name, addr string }{
		{"ipv4 loopback", "127.0.0.1:0"},
		{"ipv6 loopback", "[::1]:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sol := NewSolver()
			srv, err := sol.Listen(tt.addr)
			if err != nil {
				if tt.addr == "[::1]:0" {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatalf("Listen: %v", err)
			}
			defer srv.Close()
			if got, want := srv.Port(), srv.Addr().(*net.TCPAddr).Port; got == 0 || got != want {
				t.Errorf("Port: got %d, want %d (non-zero)", got, want)
			}
			if err := sol.Present(context.Background(), "example.test", "token", testKeyAuth); err != nil {
				t.Fatalf("Present: %v", err)
			}
			conn, err := dial(t, srv.Addr().String(), validatorConfig("example.test"))
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			conn.Close()
		})
	}
}

func TestServerClose(t *testing.T) {
	srv, err := NewSolver().Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	// A connection that never sends a ClientHello must not keep Close waiting.
	idle, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer idle.Close()

	addr := srv.Addr().String()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("dial after Close: got a connection, want refused")
	}
}
