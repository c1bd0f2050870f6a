package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits of the backend transport.
const (
	dialTimeout         = 5 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	idleConnTimeout     = 90 * time.Second
	maxIdleConnsPerHost = 64
	copyBufferSize      = 32 << 10
)

// newTransport returns the transport shared by all tries of one service.
// ResponseHeaderTimeout stays zero on purpose: tryTransport's per-try timer
// does that job and, unlike this one, lets ServeHTTP retry elsewhere.
//
// h2c: the servers speak plain HTTP/2 with prior knowledge (h2c:// in the
// config, gRPC's usual way): requests to their http:// URLs go out as
// HTTP/2 frames, never HTTP/1.1.
func newTransport(tlsConfig *tls.Config, https, h2c bool) *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		// Backends are dialled directly, never through HTTP_PROXY.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig.Clone(),
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ForceAttemptHTTP2:     https,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ExpectContinueTimeout: time.Second,
		// Pass bodies through as the backend encoded them, instead of
		// asking for gzip and decoding it here.
		DisableCompression: true,
	}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// Body copy buffers: large ones for bodies of unknown or large size (both
// paths), small ones for the fast path's small bodies of known length, so
// that a short answer does not hold 32 KiB while it is relayed.
var (
	copyBuffers  = &bufferPool{size: copyBufferSize}
	smallBuffers = &bufferPool{size: smallBufferSize}
)

// smallBufferSize is the size of the small copy buffers.
const smallBufferSize = 4 << 10

// bufferPool recycles copy buffers of one size. Get and Put serve
// httputil.ReverseProxy; get and put, which do not allocate, the fast
// path.
type bufferPool struct {
	size int
	pool sync.Pool
}

func (b *bufferPool) Get() []byte { return *b.get() }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == b.size {
		buf = buf[:b.size]
		b.pool.Put(&buf)
	}
}

func (b *bufferPool) get() *[]byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return buf
	}
	buf := make([]byte, b.size)
	return &buf
}

func (b *bufferPool) put(buf *[]byte) { b.pool.Put(buf) }
