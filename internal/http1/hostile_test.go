package http1

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestHostileInput feeds the loop what a hostile client sends, under a
// memory limit: each case ends with the answer net/http's server gives
// (heads too large go to it) and the connection closed, never with the
// loop holding what the client sends.
func TestHostileInput(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	t.Run("plain", func(t *testing.T) { hostileInput(t, nil, nil) })
	t.Run("TLS", func(t *testing.T) {
		server, client := tlsConfigs(t)
		hostileInput(t, server, client)
	})
}

func hostileInput(t *testing.T, serverTLS, clientTLS *tls.Config) {
	_, addr, srv := pair(t, handler(), serverTLS)
	endless := func(prefix, unit string, n int) func(io.Writer) {
		return func(w io.Writer) {
			if _, err := io.WriteString(w, prefix); err != nil {
				return
			}
			chunk := strings.Repeat(unit, 64<<10/len(unit))
			for sent := 0; sent < n; sent += len(chunk) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return // the server closed: what we want
				}
			}
		}
	}
	// handed: the head goes to net/http (too large), or the loop itself
	// serves the request and refuses the body.
	cases := []struct {
		name   string
		send   func(io.Writer)
		want   string // in the answer
		handed bool
	}{
		{"endless header line", endless("GET /echo HTTP/1.1\r\nHost: a\r\nX-A: ", "y", 64<<20), "HTTP/1.1 431 ", true},
		{"endless header lines", endless("GET /echo HTTP/1.1\r\nHost: a\r\n", "X-A: b\r\n", 64<<20), "HTTP/1.1 431 ", true},
		{"endless request line", endless("GET /", "a", 64<<20), "HTTP/1.1 431 ", true},
		{"endless chunked body, not read", endless("POST /noread HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "4\r\nabcd\r\n", 64<<20), "Connection: close\r\n\r\ndid not read", false},
		{"huge length, not read", endless("POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000\r\n\r\n", "z", 64<<20), "Connection: close\r\n\r\ndid not read", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if clientTLS != nil {
				c = tls.Client(c, clientTLS)
			}
			_ = c.SetDeadline(time.Now().Add(60 * time.Second)) // a hang guard
			over := srv.handedOver.Load()
			go tc.send(c)
			b, err := io.ReadAll(c)
			if err != nil && !isReset(err) {
				t.Fatalf("read: %v (after %q)", err, short(string(b)))
			}
			if !strings.Contains(string(b), tc.want) {
				t.Fatalf("answer %q, want it to hold %q", short(string(b)), tc.want)
			}
			if handed := srv.handedOver.Load() > over; handed != tc.handed {
				t.Errorf("handed to net/http: %v, want %v", handed, tc.handed)
			}
		})
	}
}

// TestLargeHeadEndsClean sends a head just over net/http's limit, whole,
// before it reads: the 431 that net/http gives (the loop hands it the
// connection) ends with a half-close, so the client reads it to a clean
// end, not to the reset that the close of a connection with unread bytes
// brings half a second later.
func TestLargeHeadEndsClean(t *testing.T) {
	serverTLS, clientTLS := tlsConfigs(t)
	for _, tc := range []struct {
		name              string
		server, clientTLS *tls.Config
	}{{"plain", nil, nil}, {"TLS", serverTLS, clientTLS}} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr, srv := pair(t, handler(), tc.server)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.clientTLS != nil {
				c = tls.Client(c, tc.clientTLS)
			}
			_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a hang guard
			head := "GET /echo HTTP/1.1\r\nHost: a\r\nX-A: " + strings.Repeat("y", 1<<20+64<<10) + "\r\n\r\n"
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatalf("send the head: %v", err)
			}
			b, err := io.ReadAll(c)
			if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 431 ") {
				t.Fatalf("read %q, %v; want a 431 and a clean end", short(string(b)), err)
			}
			if srv.handedOver.Load() != 1 {
				t.Errorf("handed over %d connections, want 1", srv.handedOver.Load())
			}
		})
	}
}

// TestManyPipelined sends 10,000 requests in one stream: all are
// answered, in order, on one connection.
func TestManyPipelined(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	_, addr, _ := pair(t, handler(), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second)) // a hang guard
	const n = 10000
	go func() {
		bw := bufio.NewWriter(c)
		for i := range n {
			fmt.Fprintf(bw, "GET /echo?i=%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		}
		_ = bw.Flush()
	}()
	br := bufio.NewReader(c)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf("GET /echo?i=%d ", i); !strings.HasPrefix(string(b), want) {
			t.Fatalf("answer %d: %q", i, short(string(b)))
		}
	}
}

// TestTimeouts checks that a head sent too slowly and a connection idle
// too long are closed, as net/http closes them (no answer).
func TestTimeouts(t *testing.T) {
	h := handler()
	s := &Server{Handler: h, ErrorLog: quiet, ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond,
		Fallback: &http.Server{Handler: h, ErrorLog: quiet, ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	for _, tc := range []struct{ name, raw, want string }{
		{"half a head, then nothing", "GET /echo HTTP/1.1\r\nHo", ""},
		{"one request, then idle", "GET /cl HTTP/1.1\r\nHost: a\r\n\r\n", "hello"},
		{"nothing at all", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a hang guard
			_, _ = io.WriteString(c, tc.raw)
			b, err := io.ReadAll(c) // ends when the server closes
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !strings.HasSuffix(string(b), tc.want) {
				t.Fatalf("got %q, want it to end with %q", b, tc.want)
			}
		})
	}
}

// TestPlainToTLS checks the answer to plain HTTP sent to a TLS port is
// net/http's.
func TestPlainToTLS(t *testing.T) {
	server, _ := tlsConfigs(t)
	std, loop, _ := pair(t, handler(), server)
	raw := "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"
	if want, got := exchange(t, std, nil, raw), exchange(t, loop, nil, raw); got != want || !strings.Contains(got, "HTTPS server") {
		t.Errorf("net/http answered %q, the loop %q", want, got)
	}
}
