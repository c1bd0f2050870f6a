package listen

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

var spec = Spec{Component: "x-01", Flag: "--x.port", DefaultPort: "8080"}

func TestAddr(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "", want: ":8080"},
		{in: " 5002 ", want: ":5002"},
		{in: "[::1]:5002", want: "[::1]:5002"},
		{in: "localhost", wantErr: `x-01: invalid --x.port "localhost" (want ":port", "host:port", "[ipv6]:port" or a bare port): address localhost: missing port in address`},
		{in: "70000", wantErr: `x-01: invalid --x.port ":70000": the port must be a number from 0 to 65535`},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := spec.Addr(tt.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if got != tt.want || gotErr != tt.wantErr {
				t.Errorf("Addr(%q): got %q, %q; want %q, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBindError(t *testing.T) {
	cause := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	tests := []struct {
		name, hostPort, want string
	}{
		{"privileged port", ":80", "x-01: no permission to bind :80: ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary); grant it or choose a --x.port of 1024 or above"},
		{"high port", ":5002", "x-01: cannot listen on :5002: listen tcp: bind: permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.BindError(tt.hostPort, cause)
			if err.Error() != tt.want {
				t.Errorf("BindError:\n got %q\nwant %q", err, tt.want)
			}
			if !errors.Is(err, syscall.EACCES) {
				t.Errorf("errors.Is(err, EACCES): got false, want true")
			}
		})
	}
}

// TestListenInUse binds a port that a real listener holds.
func TestListenInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hold a port: %v", err)
	}
	defer held.Close()
	addr := held.Addr().String()
	ln, err := spec.Listen(addr)
	if err == nil {
		ln.Close()
		t.Fatalf("Listen(%q): got nil error, want address in use", addr)
	}
	want := "x-01: address " + addr + " is already in use; stop what holds it or choose another --x.port"
	if err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen(%q) error:\n got %q\nwant %q (matching EADDRINUSE)", addr, err, want)
	}
}
