package tcpio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// readable reports whether c has bytes waiting, without waiting or
// consuming them.
func readable(t *testing.T, c *net.TCPConn) bool {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var perr error
	var b [1]byte
	if err := rc.Control(func(fd uintptr) {
		_, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); err != nil {
		t.Fatal(err)
	}
	return perr == nil
}

// TestWriteAwaitRead: the call returns once the answer is there, not
// before; the Read after it gets the answer.
func TestWriteAwaitRead(t *testing.T) {
	a, b := pair(t)
	safetyNet(a, b)
	wa := Wrap(a).(*Conn)
	pinged, answer := make(chan struct{}), make(chan struct{})
	go func() {
		got := make([]byte, 4)
		if _, err := io.ReadFull(b, got); err != nil || string(got) != "ping" {
			t.Errorf("peer read %q, %v", got, err)
		}
		close(pinged)
		<-answer
		_, _ = b.Write([]byte("pong"))
	}()
	done := make(chan error, 1)
	go func() {
		n, err := wa.WriteAwaitRead([]byte("ping"))
		if err == nil && n != 4 {
			err = errors.New("short write")
		}
		done <- err
	}()
	<-pinged
	select { // the request is out; the call must still be waiting
	case err := <-done:
		t.Fatalf("WriteAwaitRead returned (%v) before the answer came", err)
	default:
	}
	close(answer)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !readable(t, a) {
		t.Fatal("WriteAwaitRead returned with nothing to read")
	}
	got := make([]byte, 10)
	n, err := wa.Read(got)
	if err != nil || string(got[:n]) != "pong" {
		t.Fatalf("Read after the wait: %q, %v", got[:n], err)
	}
}

// TestWriteAwaitReadEnds: a wait ends with the read deadline, a close by
// the peer, or a Close, without an error of its own; the next Read reports
// why.
func TestWriteAwaitReadEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		end     func(local *Conn, peer *net.TCPConn)
		wantErr error // of the next Read
	}{
		{"read deadline", func(local *Conn, _ *net.TCPConn) {
			_ = local.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		}, os.ErrDeadlineExceeded},
		{"peer closed", func(_ *Conn, peer *net.TCPConn) {
			go func() { _, _ = io.ReadFull(peer, make([]byte, 4)); _ = peer.Close() }()
		}, io.EOF},
		{"peer reset", func(_ *Conn, peer *net.TCPConn) {
			_ = peer.SetLinger(0)
			go func() { _, _ = io.ReadFull(peer, make([]byte, 4)); _ = peer.Close() }()
		}, syscall.ECONNRESET},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t)
			safetyNet(b)
			wa := Wrap(a).(*Conn)
			_ = wa.SetWriteDeadline(time.Now().Add(time.Minute))
			tc.end(wa, b)
			if n, err := wa.WriteAwaitRead([]byte("ping")); n != 4 || err != nil {
				t.Fatalf("WriteAwaitRead: %d, %v", n, err)
			}
			_, err := wa.Read(make([]byte, 10))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Read after the wait: %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("closed while waiting", func(t *testing.T) {
		a, _ := pair(t)
		wa := Wrap(a).(*Conn)
		done := make(chan error, 1)
		go func() {
			_, err := wa.WriteAwaitRead([]byte("ping"))
			done <- err
		}()
		// Close may come before the write: then WriteAwaitRead reports it.
		_ = wa.Close()
		if err := <-done; err != nil {
			wantOpError(t, err, "write", net.ErrClosed)
		}
		_, err := wa.Read(make([]byte, 1))
		wantOpError(t, err, "read", net.ErrClosed)
	})
}

// TestWriteAwaitReadNoRoom: when the socket cannot take all of p, the call
// returns what it wrote without waiting, and Write sends the rest.
func TestWriteAwaitReadNoRoom(t *testing.T) {
	a, b := pair(t)
	_ = a.SetWriteBuffer(4096)
	_ = b.SetReadBuffer(4096)
	safetyNet(a, b)
	wa := Wrap(a).(*Conn)
	p := make([]byte, MaxDirect)
	for i := range p {
		p[i] = byte(i % 253)
	}
	// The peer reads nothing until the call returned: were it to wait,
	// it would wait for the safety net.
	n, err := wa.WriteAwaitRead(p)
	if err != nil || n == 0 || n >= len(p) {
		t.Fatalf("WriteAwaitRead into a full socket: %d, %v", n, err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := wa.Write(p[n:])
		if err == nil {
			err = a.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, p) {
		t.Fatalf("peer got %d bytes, not what was written", len(got))
	}
}

// TestWriteAwaitReadPastReadDeadline: a read deadline already past does
// not stop the write; the next Read reports the deadline.
func TestWriteAwaitReadPastReadDeadline(t *testing.T) {
	a, b := pair(t)
	safetyNet(b)
	wa := Wrap(a).(*Conn)
	_ = wa.SetReadDeadline(time.Now().Add(-time.Second))
	if n, err := wa.WriteAwaitRead([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("WriteAwaitRead: %d, %v", n, err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "ping" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	_, err := wa.Read(make([]byte, 1))
	wantOpError(t, err, "read", os.ErrDeadlineExceeded)
}
