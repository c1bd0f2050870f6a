package tcproute

import (
	"io"
	"net"
	"sync"
)

// closeWriter is a connection that can be half-closed (*net.TCPConn,
// *tls.Conn, *Upstream).
type closeWriter interface {
	CloseWrite() error
}

// Pipe copies client to server and server to client until both
// directions end, then closes both. When one side ends its direction
// cleanly (EOF), the other side's write half is closed and the other
// direction goes on (half-close, which some protocols rely on); an error
// in either direction closes both at once. If head is not empty it is
// written to server first (the bytes Peek read ahead). Pipe returns the
// bytes copied each way.
func Pipe(client, server net.Conn, head []byte) (fromClient, fromServer int64) {
	var once sync.Once
	abort := func() {
		once.Do(func() {
			_ = client.Close()
			_ = server.Close()
		})
	}
	// Copy socket to socket (io.Copy splices two TCP connections); the
	// Upstream wrapper only counts the connection, and is what abort
	// closes.
	srv := server
	if u, ok := server.(*Upstream); ok {
		srv = u.Conn
	}
	if len(head) > 0 {
		n, err := srv.Write(head)
		fromClient += int64(n)
		if err != nil {
			abort()
			return fromClient, 0
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fromServer = copyHalf(client, srv, abort)
	}()
	fromClient += copyHalf(srv, rawOf(client), abort)
	wg.Wait()
	abort()
	return fromClient, fromServer
}

// rawOf returns the connection under a Peek'd Conn whose bytes read ahead
// were all taken, so io.Copy sees two sockets and can splice.
func rawOf(c net.Conn) net.Conn {
	if pc, ok := c.(*Conn); ok && len(pc.buf) == 0 {
		return pc.Conn
	}
	return c
}

// copyHalf copies src to dst; at src's EOF it half-closes dst, on an error
// it aborts both directions.
func copyHalf(dst, src net.Conn, abort func()) int64 {
	n, err := io.Copy(dst, src)
	if err != nil {
		// A reset, or a connection closed under us (by the other
		// direction, or by a drain): end both directions.
		abort()
		return n
	}
	if cw, ok := dst.(closeWriter); ok {
		if cw.CloseWrite() == nil {
			return n
		}
	}
	abort()
	return n
}
