package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/tcpio"
)

// Limits of the HTTP/1.1 fast path's upstream connections.
const (
	// maxIdleFast is the number of idle connections kept per server.
	maxIdleFast = 128
	// maxResponseHeaderBytes bounds a response's status line and headers
	// (and any 1xx answers before it), as http.Transport's default does.
	maxResponseHeaderBytes = 10 << 20
	connBufferSize         = 4 << 10
	// checkIdleAfter is how long a connection may sit idle before it is
	// checked for a close by the server when taken from the pool.
	checkIdleAfter = time.Second
)

// errHeaderTooLarge ends a response whose headers exceed
// maxResponseHeaderBytes.
var errHeaderTooLarge = errors.New("proxy: server response headers exceed 10 MiB")

// upConn is one kept-alive HTTP/1.1 connection to a server, used by one
// request at a time.
type upConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	pool *connPool

	// limit is the number of bytes still allowed while reading response
	// headers; negative: no limit (reading a body).
	limit int64
	// nread counts bytes read since the request was written: zero after a
	// failure means the server sent nothing at all.
	nread int64
	// reused: the connection served an earlier request.
	reused bool
	// answer is what readSimpleResponse reuses for each answer.
	answer answer
	idleAt time.Time
	// await: the next write, the request's last, also waits for the
	// server's answer (awaitWriter); set by roundTrip before its flush.
	await bool
}

// awaitWriter is a connection that can write and then wait for the
// answer in one step (*tcpio.Conn on Linux): the read that follows does
// not ask the kernel in vain first.
type awaitWriter interface {
	WriteAwaitRead(p []byte) (int, error)
}

// Write implements io.Writer for bw.
func (c *upConn) Write(p []byte) (int, error) {
	aw, ok := c.conn.(awaitWriter)
	if !c.await || !ok {
		return c.conn.Write(p)
	}
	c.await = false
	n, err := aw.WriteAwaitRead(p)
	if err == nil && n < len(p) {
		var m int
		m, err = c.conn.Write(p[n:])
		n += m
	}
	return n, err
}

// Read implements io.Reader for br, applying the header limit.
func (c *upConn) Read(p []byte) (int, error) {
	if c.limit >= 0 {
		if c.limit == 0 {
			return 0, errHeaderTooLarge
		}
		if int64(len(p)) > c.limit {
			p = p[:c.limit]
		}
	}
	n, err := c.conn.Read(p)
	c.nread += int64(n)
	if c.limit >= 0 {
		c.limit -= int64(n)
	}
	return n, err
}

// fastDialer dials every fast-path connection.
var fastDialer = &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}

// connPool keeps one server's idle connections, most recently used first
// out, and closes those idle longer than idleConnTimeout.
type connPool struct {
	addr string
	// checkAfter: connections idle this long are checked before use
	// (checkIdleAfter; tests lower it).
	checkAfter time.Duration

	mu     sync.Mutex
	idle   []*upConn // guarded by mu; the newest last
	closed bool      // guarded by mu
	sweep  *time.Timer
}

func newConnPool(addr string) *connPool {
	return &connPool{addr: addr, checkAfter: checkIdleAfter}
}

// get returns an idle connection, or nil when there is none. A connection
// that sat idle for a while is first checked: one the server closed in
// the meantime (as servers with short keep-alive timeouts do), or that has
// unexpected bytes waiting, is closed instead of used. http.Transport
// learns of such closes from its read goroutine; this pool has none.
func (p *connPool) get() *upConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if time.Since(c.idleAt) < p.checkAfter || c.usable() {
			return c
		}
		_ = c.conn.Close()
	}
}

// usable reports whether an idle connection can carry a request: nothing
// is buffered and the server has neither closed it nor sent anything.
func (c *upConn) usable() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	// A try may have left its deadline on the connection.
	if err := c.conn.SetDeadline(time.Time{}); err != nil {
		return false
	}
	return peekIdle(c.conn)
}

// dial opens a new connection; ctx (the client's request) cancels it.
func (p *connPool) dial(ctx context.Context) (*upConn, error) {
	nc, err := fastDialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	nc = tcpio.Wrap(nc)
	c := &upConn{conn: nc, pool: p, limit: -1}
	c.br = bufio.NewReaderSize(c, connBufferSize)
	c.bw = bufio.NewWriterSize(c, connBufferSize)
	return c, nil
}

// put returns c for reuse, or closes it when the pool is full or closed.
func (p *connPool) put(c *upConn) {
	c.reused = true
	c.idleAt = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdleFast {
		p.mu.Unlock()
		_ = c.conn.Close()
		return
	}
	p.idle = append(p.idle, c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(idleConnTimeout, p.closeStale)
	}
	p.mu.Unlock()
}

// closeStale closes the connections idle longer than idleConnTimeout and
// reschedules itself while connections stay idle.
func (p *connPool) closeStale() {
	cutoff := time.Now().Add(-idleConnTimeout)
	p.mu.Lock()
	var stale []*upConn
	keep := p.idle[:0]
	for _, c := range p.idle { // oldest first
		if c.idleAt.Before(cutoff) {
			stale = append(stale, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.sweep = nil
	if len(p.idle) > 0 && !p.closed {
		p.sweep = time.AfterFunc(idleConnTimeout/2, p.closeStale)
	}
	p.mu.Unlock()
	for _, c := range stale {
		_ = c.conn.Close()
	}
}

// close closes the idle connections; connections in use are closed when
// they come back.
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.conn.Close()
	}
}
