// Package http1 serves HTTP/1.1 on a loop of zoku's own for the common
// case, and hands every other connection to net/http.
//
// net/http's server pays, for every request, a goroutine that reads one
// byte in the background (to notice a client that goes away), the read
// system call that finds nothing, and the deadline changes that stop it.
// On a proxy whose requests take a fraction of a millisecond that is a
// large share of the work. This loop reads requests with net/http's own
// parser (http.ReadRequest) and writes answers byte for byte as net/http
// does, but watches for a vanished client only once a request has run for
// WatchAfter.
//
// It takes only what it is sure of: HTTP/1.1 requests whose head fits in
// its 4 KiB buffer, with a valid Host and valid header fields, no
// Expect, no Upgrade, not CONNECT and not "OPTIONS *". Any other request,
// any head net/http would refuse, and TLS connections that negotiated
// another protocol (h2, acme-tls/1) go to the Fallback http.Server with
// the bytes already read replayed, so every unusual case keeps net/http's
// behaviour, refusals included. A connection handed over stays with
// net/http.
package http1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/zoku/zoku/internal/httphead"
	"github.com/zoku/zoku/internal/tcpio"
)

// Why a connection went to net/http, for Server.OnHandOver.
const (
	ReasonHTTP2     = "http2"      // the TLS client chose HTTP/2 (or another protocol) by ALPN
	ReasonVersion   = "version"    // not HTTP/1.1 (HTTP/1.0, the HTTP/2 preface, ...)
	ReasonExpect    = "expect"     // Expect: 100-continue or another expectation
	ReasonUpgrade   = "upgrade"    // Upgrade (WebSocket, h2c, ...)
	ReasonMethod    = "method"     // CONNECT or OPTIONS *
	ReasonLargeHead = "large-head" // a head over 4 KiB
	ReasonMalformed = "malformed"  // a head net/http refuses, or one cut short
)

// WatchAfter is about how long a request runs (between WatchAfter/2 and
// WatchAfter) before its connection is watched for the client going away,
// which cancels the request's context. Shorter requests end before it
// matters, and pay nothing for it.
const WatchAfter = 500 * time.Millisecond

// bufSize is the size of each connection's read and write buffers; a
// request head longer than bufSize goes to net/http.
const bufSize = 4 << 10

// Server serves HTTP/1.1 connections. Its fields are read when Serve
// starts and must not change afterwards.
type Server struct {
	// Handler answers requests. It must not be nil.
	Handler http.Handler
	// Fallback serves what this loop does not take (see the package doc).
	// Its Handler should be Handler, its timeouts these, and its TLSConfig
	// nil (the loop runs the handshakes; net/http then serves HTTP/2 on
	// the connections that chose it). It must not be nil; Serve runs it,
	// Shutdown and Close stop it.
	Fallback *http.Server
	// TLSConfig, when not nil, makes Serve run a TLS handshake on every
	// connection first.
	TLSConfig *tls.Config
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout mean
	// what they mean on http.Server; zero is no limit (ReadTimeout stands
	// in for a zero ReadHeaderTimeout or IdleTimeout, as there).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ErrorLog receives what net/http's server would log (TLS handshake
	// errors, handler panics, misuse of the ResponseWriter), in the same
	// words. Nil logs through the log package.
	ErrorLog *log.Logger
	// OnHandOver, when set, is told of each connection handed to
	// Fallback, with why: one of the Reason constants.
	OnHandOver func(reason string)

	handoff *handoffListener // set by Serve before it accepts
	wake    chan struct{}    // the first connection wakes the sweep (ctx.go); set with handoff

	mu    sync.Mutex // guards ln and conns
	ln    net.Listener
	conns map[*conn]struct{}

	shutting   atomic.Bool  // Shutdown or Close was called
	tick       atomic.Int64 // the sweep's count, from 1 (ctx.go)
	handedOver atomic.Int64 // connections handed to net/http (for tests; off the common path)
}

// Serve accepts connections on l until l is closed or Shutdown or Close
// is called, then returns http.ErrServerClosed (after those) or the
// accept error. Temporary accept errors back off, as on http.Server. It
// is called once per Server.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = l
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	if s.handoff == nil {
		s.handoff = newHandoff(l.Addr())
		s.wake = make(chan struct{}, 1)
	}
	s.mu.Unlock()

	s.tick.CompareAndSwap(0, 1)
	sweepDone := make(chan struct{})
	defer close(sweepDone)
	go s.sweep(sweepDone)

	fallbackDone := make(chan struct{})
	go func() {
		defer close(fallbackDone)
		_ = s.Fallback.Serve(s.handoff)
	}()
	defer func() {
		_ = s.handoff.Close()
		<-fallbackDone
	}()

	var backoff time.Duration
	for {
		rw, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // as http.Server does
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("http: Accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &conn{srv: s, rwc: tcpio.Wrap(rw), born: time.Now()}
		if !s.track(c, true) {
			_ = rw.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish (their answers say "Connection: close"), and returns when
// every connection is closed or ctx ends, as http.Server.Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.mu.Unlock()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()

	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	wait := time.Millisecond
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			wait = min(2*wait, 500*time.Millisecond)
			tick.Reset(wait)
		}
	}
	return <-fallback
}

// Close closes the listener and every connection now, as http.Server.Close
// does.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		_ = c.rwc.Close()
		delete(s.conns, c)
	}
	s.mu.Unlock()
	if ferr := s.Fallback.Close(); err == nil {
		err = ferr
	}
	return err
}

// closeIdle closes the connections waiting for a request (and those that
// never sent one within 5 s, as net/http does); it reports whether no
// connection is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		st := c.state.Load()
		if st == stateNew && time.Since(c.born) < 5*time.Second {
			continue
		}
		if (st == stateIdle || st == stateNew) && c.state.CompareAndSwap(st, stateClosed) {
			_ = c.rwc.Close()
			delete(s.conns, c)
		}
	}
	return len(s.conns) == 0
}

// track adds or removes c; adding fails once the server shuts down.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.shutting.Load() {
		return false
	}
	if len(s.conns) == 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// tlsHandshakeTimeout is the smallest non-zero of the read and write
// timeouts, as on http.Server.
func (s *Server) tlsHandshakeTimeout() time.Duration {
	var d time.Duration
	for _, v := range []time.Duration{s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout} {
		if v > 0 && (d == 0 || v < d) {
			d = v
		}
	}
	return d
}

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout != 0 {
		return s.ReadHeaderTimeout
	}
	return s.ReadTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout != 0 {
		return s.IdleTimeout
	}
	return s.ReadTimeout
}

// Connection states, for Shutdown.
const (
	stateNew int32 = iota
	stateActive
	stateIdle
	stateClosed
)

// conn is one client connection served by the loop.
type conn struct {
	srv   *Server
	rwc   net.Conn // the socket, or the TLS connection over it (set under srv.mu)
	born  time.Time
	state atomic.Int32

	remote string
	tls    *tls.ConnectionState
	ctx    context.Context // the connection's values, never cancelled
	br     *bufio.Reader
	bw     *bufio.Writer // the connection's writer; answers go through it
	head   []byte        // while a request is read: its raw head, for a hand-over
	werr   error         // the first write error
	gone   atomic.Bool   // the watch saw the client go away
	watch  watch         // ctx.go

	lastMethod string
	handedOff  bool

	// snap and snapVals hold an answer's header as it was when the
	// handler called WriteHeader (response.snapshot), reused from one
	// request to the next.
	snap     http.Header
	snapVals []string
	// extra is what the server adds to an answer's head, reused
	// (chunkWriter.writeHeader).
	extra extraHeader
	// req is the request readSimpleRequest reads into; the handler gets
	// a copy (serveRequest), and it is zeroed once that is made. Its
	// header map, reqHeader, is cleared after each answer and given to
	// the next (as header is; one that grew past maxKeptSnapKeys is
	// dropped).
	req       http.Request
	reqHeader http.Header
	// header is the handler's header map, cleared after each answer and
	// given to the next (one that grew past maxKeptSnapKeys is dropped,
	// as is one whose handler panicked).
	header http.Header
}

// Write records the first error of a write to the client.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.rwc.Write(p)
	if err != nil && c.werr == nil {
		c.werr = err
	}
	return n, err
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
	answers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferBeforeChunking) }}
	heads   = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}
)

func (c *conn) serve() {
	s := c.srv
	defer func() {
		if err := recover(); err != nil && err != http.ErrAbortHandler {
			const size = 64 << 10
			buf := make([]byte, size)
			buf = buf[:runtime.Stack(buf, false)]
			s.logf("http: panic serving %v: %v\n%s", c.remote, err, buf)
		}
		if !c.handedOff {
			if c.bw != nil {
				_ = c.bw.Flush()
			}
			_ = c.rwc.Close()
		}
		c.state.Store(stateClosed)
		s.track(c, false)
		c.release()
	}()
	if ra := c.rwc.RemoteAddr(); ra != nil {
		c.remote = ra.String()
	}
	if s.TLSConfig != nil {
		if !c.handshake() {
			return
		}
		if p := c.tls.NegotiatedProtocol; p == "http/1.0" {
			c.handOver(nil, ReasonVersion)
			return
		} else if p != "" && p != "http/1.1" {
			c.handOver(nil, ReasonHTTP2)
			return
		}
	}
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	c.ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.rwc.LocalAddr())
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.rwc)
	c.bw = writers.Get().(*bufio.Writer)
	c.bw.Reset(c)
	if d := s.readHeaderTimeout(); d > 0 {
		_ = c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	for {
		req, ok := c.readRequest()
		if !ok {
			return
		}
		if !c.serveRequest(req) {
			return
		}
		if !c.state.CompareAndSwap(stateActive, stateIdle) || s.shutting.Load() {
			return
		}
		if d := s.idleTimeout(); d > 0 {
			_ = c.rwc.SetReadDeadline(time.Now().Add(d))
		} else {
			_ = c.rwc.SetReadDeadline(time.Time{})
		}
		// Four bytes, as net/http waits for: fewer and the end of the
		// stream close the connection without an answer.
		if _, err := c.br.Peek(4); err != nil {
			return
		}
		if d := s.readHeaderTimeout(); d > 0 {
			_ = c.rwc.SetReadDeadline(time.Now().Add(d))
		} else {
			_ = c.rwc.SetReadDeadline(time.Time{})
		}
	}
}

// release returns the connection's buffers to their pools (the answer
// buffer and the head's go back after each request).
func (c *conn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.bw = nil
	}
}

// handshake runs the TLS handshake as net/http does, with its deadlines
// and its log line.
func (c *conn) handshake() bool {
	s := c.srv
	tc := tls.Server(c.rwc, s.TLSConfig)
	s.mu.Lock() // Close and closeIdle read rwc under it
	c.rwc = tc
	s.mu.Unlock()
	d := s.tlsHandshakeTimeout()
	if d > 0 {
		dl := time.Now().Add(d)
		_ = tc.SetReadDeadline(dl)
		_ = tc.SetWriteDeadline(dl)
	}
	if err := tc.HandshakeContext(context.Background()); err != nil {
		var reason string
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			_ = re.Conn.Close()
			reason = "client sent an HTTP request to an HTTPS server"
		} else {
			reason = err.Error()
		}
		s.logf("http: TLS handshake error from %s: %v", c.remote, reason)
		return false
	}
	if d > 0 {
		_ = tc.SetReadDeadline(time.Time{})
		_ = tc.SetWriteDeadline(time.Time{})
	}
	cs := tc.ConnectionState()
	c.tls = &cs
	return true
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// readRequest reads the next request, or hands the connection to net/http
// (ok false, with the connection no longer this loop's) when the request
// is not one the loop takes.
func (c *conn) readRequest() (*http.Request, bool) {
	s := c.srv
	if c.lastMethod == "POST" {
		// RFC 9112 section 2.2 tolerance for old buggy clients, as net/http.
		peek, _ := c.br.Peek(4)
		n := 0
		for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
			n++
		}
		_, _ = c.br.Discard(n)
	}
	n, err := c.peekHead()
	if err != nil {
		return nil, false
	}
	buf, _ := c.br.Peek(n)
	if !crlfOnly(buf) {
		c.handOver(nil, ReasonMalformed)
		return nil, false
	}
	// The head is kept (in a pooled buffer, so that an idle connection
	// holds only its two 4 KiB buffers) until the loop knows it takes the
	// request.
	hb := heads.Get().(*[]byte)
	c.head = append((*hb)[:0], buf...)
	defer func() {
		*hb, c.head = c.head[:0], nil
		heads.Put(hb)
	}()
	before := c.br.Buffered()
	var req *http.Request
	if c.reqHeader == nil {
		c.reqHeader = make(http.Header)
	}
	if readSimpleRequest(buf, &c.req, c.reqHeader) {
		req = &c.req
		_, _ = c.br.Discard(n)
	} else {
		req, err = http.ReadRequest(c.br)
	}
	reason := ReasonMalformed
	if err == nil {
		reason = c.takes(req)
	}
	if reason != "" {
		c.handOver(c.head[:min(before-c.br.Buffered(), len(c.head))], reason)
		return nil, false
	}
	c.lastMethod = req.Method
	delete(req.Header, "Host")
	req.RemoteAddr = c.remote
	req.TLS = c.tls
	if req.Body != http.NoBody {
		req.Body = &body{rc: req.Body, left: req.ContentLength}
	}
	if s.ReadTimeout > 0 {
		_ = c.rwc.SetReadDeadline(time.Now().Add(s.ReadTimeout))
	} else if s.readHeaderTimeout() > 0 {
		_ = c.rwc.SetReadDeadline(time.Time{})
	}
	return req, true
}

// crlfOnly reports whether every line of the head ends in CRLF, the only
// kind the loop takes (a bare LF or CR goes to net/http to judge).
func crlfOnly(head []byte) bool {
	for i, b := range head {
		switch b {
		case '\n':
			if i == 0 || head[i-1] != '\r' {
				return false
			}
		case '\r':
			if i+1 >= len(head) || head[i+1] != '\n' {
				return false
			}
		}
	}
	return true
}

// peekHead waits until the buffer holds a whole request head (up to its
// first empty line) and returns its length, leaving it unread. A head
// that does not fit in the buffer, or that the client ends half-way, is
// handed over; an error means the connection is no longer the loop's.
func (c *conn) peekHead() (int, error) {
	for want := 1; ; {
		buf, err := c.br.Peek(want)
		if len(buf) > 0 && !c.activate() {
			return 0, net.ErrClosed
		}
		if err != nil {
			if len(buf) > 0 {
				// Part of a head, then the end of the stream or the
				// header timeout: net/http answers that (a 400 for a
				// line cut short, nothing at a line's end), so it gets
				// the bytes and the error, at once.
				c.handOverThen(nil, err, ReasonMalformed)
				return 0, errHandedOver
			}
			return 0, err
		}
		buf, _ = c.br.Peek(c.br.Buffered())
		if n := headEnd(buf); n > 0 {
			return n, nil
		}
		if len(buf) >= c.br.Size() {
			c.handOver(nil, ReasonLargeHead)
			return 0, errHandedOver
		}
		if !plausible(buf) {
			// A line net/http refuses as soon as it has it: its answer,
			// now, not after the rest of the head.
			c.handOver(nil, ReasonMalformed)
			return 0, errHandedOver
		}
		want = len(buf) + 1
	}
}

// activate marks the connection busy once a request's bytes arrive; it
// fails when Shutdown closed the connection just before.
func (c *conn) activate() bool {
	for {
		switch st := c.state.Load(); st {
		case stateActive:
			return true
		case stateClosed:
			return false
		default:
			if c.state.CompareAndSwap(st, stateActive) {
				return true
			}
		}
	}
}

var errHandedOver = errors.New("http1: connection handed to net/http")

// plausible reports whether the complete lines of a head not yet whole
// are ones the loop would take: "METHOD URI HTTP/1.1", then "Name: value"
// fields with a valid name and value, each ending in CRLF. net/http reads
// a head line by line and refuses a bad line when it comes; the loop
// waits for a whole head only while no line is in doubt.
func plausible(head []byte) bool {
	for i, first := 0, true; ; first = false {
		j := bytes.IndexByte(head[i:], '\n')
		if j < 0 {
			return true
		}
		line := head[i : i+j+1]
		i += j + 1
		if !crlfOnly(line) {
			return false
		}
		line = line[:len(line)-2]
		if first {
			method, rest, ok1 := bytes.Cut(line, []byte(" "))
			_, proto, ok2 := bytes.Cut(rest, []byte(" "))
			if !ok1 || !ok2 || !httpguts.ValidHeaderFieldName(string(method)) || string(proto) != "HTTP/1.1" {
				return false
			}
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !httpguts.ValidHeaderFieldName(string(name)) || !httpguts.ValidHeaderFieldValue(string(value)) {
			return false
		}
	}
}

// headEnd returns the length of the head in buf up to and including its
// first empty line, or 0 when buf holds no empty line yet. Lines may end
// in LF alone here; crlfOnly sends those to net/http.
func headEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		if i == 1 || (i == 2 && buf[0] == '\r') {
			// An empty first line: not a request the loop takes.
			return i
		}
		if i < len(buf) && buf[i] == '\n' {
			return i + 1
		}
		if i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			return i + 2
		}
	}
}

// takes tells whether the loop serves req itself (""), or why net/http
// should (see the package doc).
func (c *conn) takes(req *http.Request) string {
	switch {
	case req.ProtoMajor != 1 || req.ProtoMinor != 1:
		return ReasonVersion
	case req.Method == http.MethodConnect || req.RequestURI == "*":
		return ReasonMethod
	}
	host, n := hostHeader(c.head)
	if n != 1 {
		return ReasonMalformed
	}
	v := req.Host // the field's value, for a request in origin form
	if req.URL.Host != "" {
		v = string(host)
	}
	if !httpguts.ValidHostHeader(v) {
		// http.ReadRequest drops the Host header; net/http's server
		// checks the one in the head, so this does too.
		return ReasonMalformed
	}
	for k, vv := range req.Header {
		switch k {
		case "Expect":
			return ReasonExpect
		case "Upgrade":
			return ReasonUpgrade
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return ReasonMalformed
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return ReasonMalformed
			}
		}
	}
	if httpguts.HeaderValuesContainsToken(req.Header["Connection"], "upgrade") {
		return ReasonUpgrade
	}
	return ""
}

// hostHeader returns the value of the head's Host field and how many
// there are (field names are case-insensitive; http.ReadRequest refused
// heads where a space precedes the colon).
func hostHeader(head []byte) ([]byte, int) {
	var host []byte
	n := 0
	i := bytes.IndexByte(head, '\n') + 1 // past the request line
	for i < len(head) {
		j := bytes.IndexByte(head[i:], '\n')
		if j < 0 {
			break
		}
		line := head[i : i+j]
		i += j + 1
		if len(line) >= 5 && bytes.EqualFold(line[:5], []byte("host:")) {
			n++
			host = bytes.Trim(line[5:], " \t\r")
		}
	}
	return host, n
}

// handOver gives the connection to net/http, replaying read (the part of
// the head already consumed) and whatever else is buffered; reason is
// for OnHandOver.
func (c *conn) handOver(read []byte, reason string) { c.handOverThen(read, nil, reason) }

// handOverThen is handOver, with the replay followed by err instead of
// the connection's next bytes when err is not nil (the read that ended
// the loop's wait, for net/http to meet as if it had made it).
func (c *conn) handOverThen(read []byte, err error, reason string) {
	var replay []byte
	if c.br != nil {
		rest, _ := c.br.Peek(c.br.Buffered())
		replay = append(append(make([]byte, 0, len(read)+len(rest)), read...), rest...)
	}
	var nc net.Conn = c.rwc
	switch {
	case (len(replay) > 0 || err != nil) && c.tls != nil:
		nc = &replayTLSConn{replayConn{Conn: c.rwc, buf: replay, err: err}, *c.tls}
	case len(replay) > 0 || err != nil:
		nc = &replayConn{Conn: c.rwc, buf: replay, err: err}
	}
	_ = c.rwc.SetReadDeadline(time.Time{})
	c.handedOff = true
	c.srv.handedOver.Add(1)
	if c.srv.OnHandOver != nil {
		c.srv.OnHandOver(reason)
	}
	c.srv.handoff.give(nc)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveRequest runs the handler on req and finishes the answer; it
// reports whether the connection can carry another request.
func (c *conn) serveRequest(req *http.Request) bool {
	s := c.srv
	h := c.header
	c.header = nil
	if h == nil {
		h = make(http.Header)
	}
	w := &response{conn: c, header: h, contentLength: -1, wantsClose: req.Close}
	ctx := &w.ctx // one allocation for both: they live as long
	ctx.init(c.ctx)
	req = req.WithContext(ctx)
	c.req = http.Request{} // the copy is the handler's: let go of what the request held
	w.req = req
	w.body, _ = req.Body.(*body)
	w.cw.res = w
	w.w = answers.Get().(*bufio.Writer)
	w.w.Reset(&w.cw)
	if s.WriteTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
		w.writeDeadline = true
	}
	c.beginWatch(w, ctx)
	returned := false
	defer func() {
		if !returned {
			// The handler panicked: serve recovers (and logs the stack,
			// still whole here, as net/http does).
			c.endWatch()
			ctx.cancel(context.Canceled)
			if w.body != nil {
				_ = w.body.Close()
			}
		}
	}()
	s.Handler.ServeHTTP(w, req)
	returned = true
	c.endWatch()
	ctx.cancel(context.Canceled)
	w.finish()
	c.header = httphead.Recycle(h, maxKeptSnapKeys)
	c.reqHeader = httphead.Recycle(c.reqHeader, maxKeptSnapKeys)
	if w.writeDeadline {
		_ = c.rwc.SetWriteDeadline(time.Time{})
	}
	if !w.reusable() || c.gone.Load() {
		if w.tooLarge || (w.body != nil && w.body.closedEarly()) {
			c.closeWriteAndWait()
		}
		return false
	}
	return true
}

// closeWriteAndWait flushes, half-closes and waits a moment before the
// close, so the client reads the answer before a reset (as net/http).
func (c *conn) closeWriteAndWait() {
	_ = c.bw.Flush()
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	time.Sleep(500 * time.Millisecond)
}

// handoffListener feeds net/http the connections the loop hands over.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoff(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// Accept returns the next connection handed over.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; connections handed over later are closed.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the listener's address.
func (l *handoffListener) Addr() net.Addr { return l.addr }

// replayConn reads buf before the connection, or, when err is set, buf
// and then err for good.
type replayConn struct {
	net.Conn
	buf []byte
	err error
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	return r.Conn.Read(p)
}

// CloseWrite half-closes the connection, as net/http does before it closes
// one after an error answer (a 431 for a head too large), so that the
// client reads the answer to its end before the close resets the
// connection.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// replayTLSConn is a replayConn over TLS: its ConnectionState makes
// net/http fill in Request.TLS, as for the *tls.Conn it wraps.
type replayTLSConn struct {
	replayConn
	state tls.ConnectionState
}

// ConnectionState is the TLS connection's state.
func (r *replayTLSConn) ConnectionState() tls.ConnectionState { return r.state }

// hasToken reports whether v holds token, case-insensitively, as a
// comma-separated element (net/http's check for "close").
func hasToken(v, token string) bool {
	return httpguts.HeaderValuesContainsToken([]string{v}, token)
}
