package tcpio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   *net.TCPConn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.AcceptTCP()
		ch <- accepted{c, err}
	}()
	a, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	acc := <-ch
	if acc.err != nil {
		t.Fatal(acc.err)
	}
	b = acc.c
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

// safetyNet turns a transfer that never ends into a failure.
func safetyNet(cs ...net.Conn) {
	for _, c := range cs {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
	}
}

func TestWrap(t *testing.T) {
	a, _ := pair(t)
	direct := Wrap(a) != net.Conn(a)
	if want := runtime.GOOS == "linux"; direct != want {
		t.Fatalf("Wrap(*net.TCPConn) wrapped it: %v, want %v", direct, want)
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if Wrap(p) != p {
		t.Fatal("Wrap changed a connection that is not TCP")
	}
}

// sides runs f with the connection as net gives it and wrapped, so that
// every case checks that both behave alike.
func sides(t *testing.T, f func(t *testing.T, wrap func(net.Conn) net.Conn)) {
	t.Run("net", func(t *testing.T) { f(t, func(c net.Conn) net.Conn { return c }) })
	t.Run("direct", func(t *testing.T) { f(t, Wrap) })
}

// wantOpError checks err is a *net.OpError for op that matches target.
func wantOpError(t *testing.T, err error, op string, target error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op {
		t.Fatalf("error %#v is not a *net.OpError for %q", err, op)
	}
	if errors.As(oe.Err, new(*net.OpError)) {
		t.Fatalf("error %v wraps a second *net.OpError", err)
	}
	if !errors.Is(err, target) {
		t.Fatalf("error %v is not %v", err, target)
	}
	if oe.Source == nil || oe.Addr == nil {
		t.Fatalf("error %v lacks its addresses", err)
	}
}

func TestShortReadsAndWrites(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, b := pair(t)
		wa, wb := wrap(a), wrap(b)
		for i := range 100 {
			msg := bytes.Repeat([]byte{byte(i)}, 1+i*97)
			if n, err := wa.Write(msg); n != len(msg) || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(wb, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("read back %d bytes: %v (equal %v)", len(got), err, bytes.Equal(got, msg))
			}
		}
		if n, err := wa.Write(nil); n != 0 || err != nil {
			t.Fatalf("empty Write: %d, %v", n, err)
		}
		if n, err := wb.Read(nil); n != 0 || err != nil {
			t.Fatalf("empty Read: %d, %v", n, err)
		}
	})
}

func TestLargeTransfers(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, b := pair(t)
		wa, wb := wrap(a), wrap(b)
		safetyNet(a, b)
		msg := make([]byte, 4<<20)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		errc := make(chan error, 1)
		go func() {
			// Above MaxDirect in one call, then in direct chunks.
			_, err := wa.Write(msg[:2<<20])
			for off := 2 << 20; err == nil && off < len(msg); off += MaxDirect {
				_, err = wa.Write(msg[off : off+MaxDirect])
			}
			if err == nil {
				err = a.CloseWrite()
			}
			errc <- err
		}()
		var got bytes.Buffer
		buf := make([]byte, 3*MaxDirect) // above MaxDirect: net's read
		small := make([]byte, 1500)      // direct
		for i := 0; ; i++ {
			p := small
			if i%2 == 0 {
				p = buf
			}
			n, err := wb.Read(p)
			got.Write(p[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), msg) {
			t.Fatalf("read %d bytes, not what was written", got.Len())
		}
	})
}

func TestEOF(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, b := pair(t)
		_ = a.Close()
		n, err := wrap(b).Read(make([]byte, 10))
		if n != 0 || err != io.EOF {
			t.Fatalf("Read after the peer closed: %d, %v; want 0, io.EOF", n, err)
		}
	})
}

func TestReadDeadline(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		_, b := pair(t)
		wb := wrap(b)
		// Nothing comes: the read waits in the poller until the deadline.
		_ = wb.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := wb.Read(make([]byte, 10))
		wantOpError(t, err, "read", os.ErrDeadlineExceeded)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("%v is not a timeout", err)
		}
		// A deadline already past fails before any read.
		_ = wb.SetReadDeadline(time.Now().Add(-time.Second))
		_, err = wb.Read(make([]byte, 10))
		wantOpError(t, err, "read", os.ErrDeadlineExceeded)
	})
}

// TestWriteWaitsForRoom fills the socket's buffers: the writer must wait
// for room, and its deadline ends the wait with the count of bytes the
// kernel took, all of which the peer then reads.
func TestWriteWaitsForRoom(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, b := pair(t)
		_ = a.SetWriteBuffer(4096)
		_ = b.SetReadBuffer(4096)
		wa := wrap(a)
		_ = wa.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		chunk := make([]byte, MaxDirect)
		for i := range chunk {
			chunk[i] = byte(i % 251)
		}
		total := 0
		var err error
		for i := 0; i < 1024 && err == nil; i++ { // at most 64 MiB
			var n int
			n, err = wa.Write(chunk)
			total += n
		}
		wantOpError(t, err, "write", os.ErrDeadlineExceeded)
		if total == 0 || total >= 1024*MaxDirect {
			t.Fatalf("wrote %d bytes before the deadline", total)
		}
		_ = a.CloseWrite()
		got, rerr := io.ReadAll(b)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if len(got) != total {
			t.Fatalf("peer read %d bytes, the writer counted %d", len(got), total)
		}
		for i, c := range got {
			if c != byte(i%MaxDirect%251) {
				t.Fatalf("byte %d is %d, want %d", i, c, byte(i%MaxDirect%251))
			}
		}
	})
}

func TestClosed(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, _ := pair(t)
		wa := wrap(a)
		_ = wa.Close()
		_, err := wa.Read(make([]byte, 10))
		wantOpError(t, err, "read", net.ErrClosed)
		_, err = wa.Write([]byte("x"))
		wantOpError(t, err, "write", net.ErrClosed)
	})
}

func TestCloseWhileReading(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, _ := pair(t)
		wa := wrap(a)
		errc := make(chan error, 1)
		go func() {
			_, err := wa.Read(make([]byte, 10))
			errc <- err
		}()
		_ = wa.Close()
		wantOpError(t, <-errc, "read", net.ErrClosed)
	})
}

func TestReset(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, b := pair(t)
		_ = a.SetLinger(0)
		_ = a.Close() // sends a reset
		_, err := wrap(b).Read(make([]byte, 10))
		wantOpError(t, err, "read", syscall.ECONNRESET)
		var se *os.SyscallError
		if !errors.As(err, &se) || se.Syscall != "read" {
			t.Fatalf("%v does not name the read system call", err)
		}
	})
}

// TestConcurrent has several goroutines read and write one connection at
// once, as net.Conn allows; run it with -race.
func TestConcurrent(t *testing.T) {
	sides(t, func(t *testing.T, wrap func(net.Conn) net.Conn) {
		a, b := pair(t)
		wa, wb := wrap(a), wrap(b)
		safetyNet(a, b)
		const writers, msgs, size = 4, 200, 100
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := bytes.Repeat([]byte{byte('a' + w)}, size)
				for range msgs {
					if _, err := wa.Write(msg); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		var mu sync.Mutex
		counts := map[byte]int{}
		var readers sync.WaitGroup
		for range 2 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				buf := make([]byte, 333)
				for {
					n, err := wb.Read(buf)
					mu.Lock()
					for _, c := range buf[:n] {
						counts[c]++
					}
					mu.Unlock()
					if err != nil {
						if err != io.EOF {
							t.Error(err)
						}
						return
					}
				}
			}()
		}
		wg.Wait()
		_ = a.CloseWrite()
		readers.Wait()
		for w := range writers {
			if got := counts[byte('a'+w)]; got != msgs*size {
				t.Errorf("writer %d: %d bytes arrived, want %d", w, got, msgs*size)
			}
		}
	})
}

// BenchmarkPingPong sends 64 bytes back and forth on one loopback
// connection.
func BenchmarkPingPong(b *testing.B) {
	for _, side := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{{"net", func(c net.Conn) net.Conn { return c }}, {"direct", Wrap}} {
		b.Run(side.name, func(b *testing.B) {
			x, y := pair(b)
			wx, wy := side.wrap(x), side.wrap(y)
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(wy, buf); err != nil {
						return
					}
					if _, err := wy.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wx.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(wx, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
