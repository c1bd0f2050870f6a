package tcpio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a TCP connection whose short reads and writes bypass the
// scheduler's system-call hand-off. Its other methods are the
// *net.TCPConn's: among them ReadFrom and WriteTo, so io.Copy between two
// connections still splices.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu   sync.Mutex // serialises Reads: rbuf, rn, rerr and readF's use
	rbuf  []byte
	rn    int
	rerr  syscall.Errno
	readF func(fd uintptr) bool

	wmu    sync.Mutex // serialises Writes
	wbuf   []byte
	wn     int
	werr   syscall.Errno
	writeF func(fd uintptr) bool

	// WriteAwaitRead's state, under both mutexes: the write is done and
	// the wait began.
	written bool
	awaitF  func(fd uintptr) bool
}

// wrap returns c as a *Conn, or c itself when it is not a *net.TCPConn
// whose descriptor can be reached.
func wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{TCPConn: tc, rc: rc}
	w.readF = w.readFD
	w.writeF = w.writeFD
	w.awaitF = w.awaitFD
	return w
}

// Read reads as (*net.TCPConn).Read does.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 || len(p) > MaxDirect {
		return c.TCPConn.Read(p)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readF)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case c.rerr != 0:
		return 0, c.opError("read", os.NewSyscallError("read", c.rerr))
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// readFD makes one read; false asks the poller to wait for data.
func (c *Conn) readFD(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rerr = e
		return true
	}
}

// Write writes all of p as (*net.TCPConn).Write does.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 || len(p) > MaxDirect {
		return c.TCPConn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeF)
	n := c.wn
	c.wbuf = nil
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case c.werr != 0:
		return n, c.opError("write", os.NewSyscallError("write", c.werr))
	}
	return n, nil
}

// writeFD writes what is left of wbuf; false asks the poller to wait for
// room.
func (c *Conn) writeFD(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		rest := c.wbuf[c.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			c.wn += int(n)
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.werr = e
		return true
	}
	return true
}

// opError shapes err as net's own read and write errors: a *net.OpError
// around the cause (os.ErrDeadlineExceeded, net.ErrClosed or the system
// call's error).
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// WriteAwaitRead writes p as Write does and then waits, as Read would,
// until the connection has something to read, its read deadline passes or
// it is closed; the Read that follows finds the data at once. It suits a
// request whose answer comes on the same connection: a plain Write
// followed by Read asks the kernel for the answer once in vain before it
// waits.
//
// The write is made after the poller's readiness is reset for the wait,
// so an answer cannot arrive unseen between the two. Bytes that arrived
// before the call and were not read do not end the wait: use it only
// where the peer sends nothing unasked (a server answering a request;
// one that closed the connection answers the write with a reset, which
// does end it). The part written directly does not look at the write
// deadline; the wait ends at the read deadline.
//
// When the socket has no room for all of p, WriteAwaitRead returns the
// count written so far and a nil error without waiting; the caller writes
// the rest. A wait that ends in the read deadline or a Close is not an
// error here: the next Read reports it.
func (c *Conn) WriteAwaitRead(p []byte) (int, error) {
	if len(p) == 0 || len(p) > MaxDirect {
		return c.Write(p)
	}
	n, tried, err := c.writeAwait(p)
	if !tried {
		// The read side failed before the write (a past read deadline, a
		// closed connection): Write reports the write side's own state.
		return c.Write(p)
	}
	return n, err
}

// writeAwait is WriteAwaitRead's direct part; tried is false when nothing
// was attempted.
func (c *Conn) writeAwait(p []byte) (n int, tried bool, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.wbuf, c.wn, c.werr, c.written = p, 0, 0, false
	rerr := c.rc.Read(c.awaitF)
	n = c.wn
	c.wbuf = nil
	switch {
	case c.written:
		return n, true, nil
	case c.werr != 0:
		return n, true, c.opError("write", os.NewSyscallError("write", c.werr))
	case rerr != nil:
		return 0, false, nil
	}
	return n, true, nil // no room for the rest
}

// awaitFD writes wbuf on its first call and asks to wait; it stops when
// the socket is full or the write fails, and ends the wait when called
// again (the connection became readable).
func (c *Conn) awaitFD(fd uintptr) bool {
	if c.written {
		return true
	}
	if !c.writeFD(fd) || c.werr != 0 {
		return true
	}
	c.written = true
	return false
}
