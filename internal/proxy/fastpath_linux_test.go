package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/tcpio"
)

// TestFastPathClosedByServer: a server closes kept-alive connections once
// idle (as many do after a few seconds).
//   - A POST, which cannot be sent twice, must not be lost: the pool sees
//     the close before it hands the connection out.
//   - A GET sent on such a connection with the pool not checking it, the
//     close already seen by the poller, is answered: the request's write
//     is followed by a wait for the answer (tcpio's WriteAwaitRead), the
//     reset the write draws ends that wait, and the GET is made again on a
//     new connection. A wait that missed the close would last the whole
//     try timeout and fail the request.
func TestFastPathClosedByServer(t *testing.T) {
	for _, tc := range []struct {
		name, method, body string
		checkAfter         time.Duration
	}{
		{"POST, the pool checks", http.MethodPost, "payload", 0},
		{"GET, the pool does not check", http.MethodGet, "", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, closed := oneAnswerServer(t)
			svc := newService(t, &config.Service{Servers: servers("http://" + addr), Retries: intp(0)}, nil, Options{})
			pool := svc.ups[0].conns
			pool.checkAfter = tc.checkAfter
			f := startFront(t, svc)
			for i := range 3 {
				if code, body := f.do(t, tc.method, "/", tc.body); code != 200 || body != "ok" {
					t.Fatalf("%s %d: %d %q", tc.method, i, code, body)
				}
				f.nextStats(t)
				select {
				case <-closed:
				case <-time.After(testWait):
					t.Fatal("the server did not close its connection")
				}
				waitReadable(t, pool)
			}
		})
	}
}

// oneAnswerServer is a server that answers one request per connection
// ("ok") and then closes it, as one with a short keep-alive timeout does
// once the connection sits idle; closed gets a value after each close.
func oneAnswerServer(t *testing.T) (addr string, closed <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 10)
	go func() {
		for range 10 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.SetDeadline(time.Now().Add(testWait))
				if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
				c.Close()
				ch <- struct{}{}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// waitReadable waits until the pool's idle connection has something to
// read (here: the server's close), without consuming it.
func waitReadable(t *testing.T, p *connPool) {
	t.Helper()
	p.mu.Lock()
	if len(p.idle) != 1 {
		p.mu.Unlock()
		t.Fatalf("%d idle connections, want 1", len(p.idle))
	}
	nc := p.idle[0].conn
	p.mu.Unlock()
	_ = nc.SetReadDeadline(time.Now().Add(testWait))
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(err, syscall.EAGAIN)
	}); err != nil {
		t.Fatalf("wait for the server's close: %v", err)
	}
}

// TestConnPoolDropsClosedIdle: a pooled connection the server closed, or
// on which it sent unasked bytes, is not handed out; a quiet open one is.
func TestConnPoolDropsClosedIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serverSide := make(chan net.Conn, 3)
	go func() {
		for range 3 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serverSide <- c
		}
	}()
	p := newConnPool(ln.Addr().String())
	p.checkAfter = 0
	t.Cleanup(p.close)
	for _, tc := range []struct {
		name   string
		server func(net.Conn)
		want   bool
	}{
		{"open and quiet", func(net.Conn) {}, true},
		{"closed by the server", func(c net.Conn) { c.Close() }, false},
		{"unasked bytes", func(c net.Conn) { _, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := p.dial(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := c.conn.(*tcpio.Conn); !ok {
				t.Fatalf("the pool dialled a %T, not a *tcpio.Conn", c.conn)
			}
			sc := <-serverSide
			t.Cleanup(func() { sc.Close() })
			tc.server(sc)
			p.put(c)
			if !tc.want {
				waitReadable(t, p)
			}
			got := p.get()
			if (got != nil) != tc.want {
				t.Fatalf("get() = %v, want a connection: %v", got, tc.want)
			}
			if got != nil {
				got.conn.Close()
			}
		})
	}
}
