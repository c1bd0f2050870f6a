package http01

import (
	"context"
	"errors"
	"net"
	"net/http"
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
		{in: "", want: ":80"},
		{in: ":80", want: ":80"},
		{in: "5002", want: ":5002"},
		{in: " 5002 ", want: ":5002"},
		{in: "127.0.0.1:5002", want: "127.0.0.1:5002"},
		{in: "[::1]:5002", want: "[::1]:5002"},
		{in: "localhost:0", want: "localhost:0"},
		{in: "::1", wantErr: `http-01: invalid --http.port "::1" (want ":port", "host:port", "[ipv6]:port" or a bare port): address ::1: too many colons in address`},
		{in: "localhost", wantErr: `http-01: invalid --http.port "localhost" (want ":port", "host:port", "[ipv6]:port" or a bare port): address localhost: missing port in address`},
		{in: "70000", wantErr: `http-01: invalid --http.port ":70000": the port must be a number from 0 to 65535`},
		{in: "127.0.0.1:http", wantErr: `http-01: invalid --http.port "127.0.0.1:http": the port must be a number from 0 to 65535`},
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
			"http-01: address 127.0.0.1:" + port + " is already in use; stop what holds it or choose another --http.port"},
		{"bare port", port,
			"http-01: address :" + port + " is already in use; stop what holds it or choose another --http.port"},
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
			"http-01: address 127.0.0.1:5002 is already in use; stop what holds it or choose another --http.port"},
		{"privileged port", ":80", opErr(syscall.EACCES),
			"http-01: no permission to bind :80: ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary); grant it or choose a --http.port of 1024 or above"},
		{"not on this host", "192.0.2.1:5002", opErr(syscall.EADDRNOTAVAIL),
			"http-01: cannot bind 192.0.2.1:5002: the host part is not an address of this machine; choose another --http.port"},
		{"permission on a high port", ":5002", opErr(syscall.EACCES),
			"http-01: cannot listen on :5002: listen tcp: bind: permission denied"},
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
	want := "http-01: no permission to bind 127.0.0.1:1: ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary); grant it or choose a --http.port of 1024 or above"
	if err.Error() != want {
		t.Errorf("Listen error:\n got %q\nwant %q", err, want)
	}
}

func TestListenServesPresentedToken(t *testing.T) {
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
			if srv.Port() == 0 {
				t.Fatalf("Port: got 0, want the chosen port")
			}
			if got, want := srv.Port(), srv.Addr().(*net.TCPAddr).Port; got != want {
				t.Errorf("Port: got %d, want %d", got, want)
			}
			url := "http://" + srv.Addr().String() + PathPrefix + testToken

			if status, _, _ := get(t, http.MethodGet, url); status != http.StatusNotFound {
				t.Errorf("before Present: got %d, want 404", status)
			}
			if err := sol.Present(context.Background(), "example.test", testToken, testKeyAuth); err != nil {
				t.Fatalf("Present: %v", err)
			}
			status, h, body := get(t, http.MethodGet, url)
			if status != http.StatusOK || body != testKeyAuth {
				t.Errorf("after Present: got %d %q, want 200 %q", status, body, testKeyAuth)
			}
			if got := h.Get("Content-Type"); got != "text/plain" {
				t.Errorf("Content-Type: got %q, want %q", got, "text/plain")
			}
			if err := sol.CleanUp(context.Background(), "example.test", testToken, testKeyAuth); err != nil {
				t.Fatalf("CleanUp: %v", err)
			}
			if status, _, _ := get(t, http.MethodGet, url); status != http.StatusNotFound {
				t.Errorf("after CleanUp: got %d, want 404", status)
			}
		})
	}
}

func TestServerLimitsAndClose(t *testing.T) {
	srv, err := NewSolver().Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	hs := srv.srv
	for name, got := range map[string]int64{
		"ReadHeaderTimeout": int64(hs.ReadHeaderTimeout),
		"ReadTimeout":       int64(hs.ReadTimeout),
		"WriteTimeout":      int64(hs.WriteTimeout),
		"IdleTimeout":       int64(hs.IdleTimeout),
		"MaxHeaderBytes":    int64(hs.MaxHeaderBytes),
	} {
		if got <= 0 {
			t.Errorf("%s: got %d, want > 0", name, got)
		}
	}
	if hs.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes: got %d, want a small limit", hs.MaxHeaderBytes)
	}

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
