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
func newTransport(tlsConfig *tls.Config, https bool) *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
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
}

// copyBuffers are the body copy buffers of both paths.
var copyBuffers = &bufferPool{}

// bufferPool recycles copy buffers.
type bufferPool struct {
	pool sync.Pool
}

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		buf = buf[:copyBufferSize]
		b.pool.Put(&buf)
	}
}
