package http1

import (
	"io"
	"net/http"
	"sync"
)

// body is a request body as the loop hands it to the handler: it counts
// what is left, and a Close with much left does not read it all (the
// connection is closed instead), as net/http's body does on its server.
type body struct {
	mu     sync.Mutex
	rc     io.ReadCloser
	left   int64 // bytes not yet read when the length is known, else -1
	eof    bool
	closed bool
	early  bool // closed with more than maxPostHandlerReadBytes unread
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close ends the body; up to maxPostHandlerReadBytes unread bytes are
// read and dropped, so the connection can carry the next request; with
// more left, it cannot.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.eof {
		return nil
	}
	if b.left > maxPostHandlerReadBytes {
		b.early = true
		return nil
	}
	n, err := io.CopyN(io.Discard, b.rc, maxPostHandlerReadBytes)
	if err == io.EOF {
		b.eof, err = true, nil
	}
	if n == maxPostHandlerReadBytes {
		b.early = true
	}
	return err
}

func (b *body) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *body) sawEOF() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

// done reports whether the handler can no longer read from the
// connection through the body.
func (b *body) done() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof || b.closed
}

// unread is the number of bytes known to be left (0 when unknown).
func (b *body) unread() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof || b.left < 0 {
		return 0
	}
	return b.left
}

// closedEarly reports whether Close left bytes unread on the connection.
func (b *body) closedEarly() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.early
}
