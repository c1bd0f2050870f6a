package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The HTTP/1.1 fast path forwards a request to a plain-HTTP server on the
// handler's goroutine: it writes the request to a kept-alive connection of
// its own pool and reads the answer back (the usual head with a parser of
// its own, response.go; anything else with http.ReadResponse), with no
// per-request goroutine, channel hand-off, request clone or timer. It
// does what httputil.ReverseProxy does for the requests it takes
// (hop-by-hop headers, X-Forwarded-*, 1xx answers, streaming flushes,
// trailers, aborting a broken body), and leaves to
// ReverseProxy and http.Transport everything else: HTTP/2 clients,
// upgrades, Expect: 100-continue, request trailers, https:// servers and
// servers with a path or query in their URL.
//
// Client requests were parsed by net/http's server before they get here,
// so request smuggling attempts (Content-Length with Transfer-Encoding,
// duplicate Content-Length, bad chunk sizes, obs-fold, bare CR) were
// refused there; the fast path writes the request with its own framing
// (Content-Length, or chunked when the length is unknown).

// aLongTimeAgo is a deadline in the past: setting it makes blocked I/O on
// a connection return at once.
var aLongTimeAgo = time.Unix(1, 0)

// errFastClosed is the error of a try whose connection was cut because
// the client went away.
var errFastClosed = errors.New("proxy: client went away")

// fastEligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.URL == nil || r.URL.Opaque != "" || r.Trailer != nil {
		return false
	}
	if p := r.URL.Path; p != "" && p[0] != '/' {
		return false // "OPTIONS *" and the like
	}
	if !httpguts.ValidHostHeader(r.Host) || !validMethod(r.Method) {
		return false
	}
	for k, vv := range r.Header {
		switch k {
		case "Upgrade", "Expect":
			return false
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return true
	}
	return m != "" && httpguts.ValidHeaderFieldName(m) // a token
}

// fastTry is the outcome of one try on the fast path.
type fastTry struct {
	err       error
	gotConn   bool // a connection was had: the request may have been sent
	responded bool // response headers arrived
	timedOut  bool
	status    int
	headersAt time.Time
}

// tryFast makes one attempt on u over the fast path, answering w when the
// server answers. body is the request body to send (nil: none).
func (s *Service) tryFast(w http.ResponseWriter, r *http.Request, u *upstream, body *trackedBody, res *fastTry) {
	*res = fastTry{}
	u.state.StartRequest()
	defer u.state.EndRequest()
	ctx := r.Context()

	c := u.conns.get()
	for {
		if c == nil {
			var err error
			if c, err = u.conns.dial(ctx); err != nil {
				res.err = err
				if ctx.Err() != nil {
					res.err = errFastClosed
				}
				return
			}
		}
		res.gotConn = true
		// The client going away cuts the connection, whatever it is
		// waiting for.
		var watch clientWatch
		watch.start(ctx, c)
		resp, bw, err := s.roundTrip(w, c, r, u, body)
		if err == nil {
			s.relay(w, r, u, c, resp, bw, &watch, res)
			return
		}
		watch.end()
		_ = c.conn.Close()
		bodyLeft := bw == nil || bw.cancel()
		// A kept-alive connection the server had already closed: make the
		// request again on a fresh one, as http.Transport does, when
		// nothing can have reached the server.
		if c.reused && c.nread == 0 && ctx.Err() == nil && bodyLeft && replayOnFresh(r, body, err) {
			c = nil
			continue
		}
		res.err = err
		var ne net.Error
		res.timedOut = errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil
		if ctx.Err() != nil {
			res.err = errFastClosed
		}
		return
	}
}

// cancelHooks is a request context that tells an object it was
// cancelled without allocating anything per request: the HTTP/1.1 loop's
// (internal/http1). Other contexts go through context.AfterFunc.
type cancelHooks interface {
	AddCancelHook(h interface{ ContextCancelled() })
	RemoveCancelHook(h interface{ ContextCancelled() }) bool
}

// clientWatch cuts an upstream connection when the client goes away (the
// request's context is cancelled) while a try waits on it.
type clientWatch struct {
	hooks cancelHooks // the request's context, when it takes hooks
	c     *upConn
	stop  func() bool // context.AfterFunc's, for other contexts
}

// start begins watching ctx for c.
func (w *clientWatch) start(ctx context.Context, c *upConn) {
	w.c = c
	if h, ok := ctx.(cancelHooks); ok {
		w.hooks = h
		h.AddCancelHook(c)
		return
	}
	cc := c.conn
	w.stop = context.AfterFunc(ctx, func() { _ = cc.SetDeadline(aLongTimeAgo) })
}

// end stops the watch, reporting whether it ended before the client went
// away (false: the connection's deadline was or is being cut).
func (w *clientWatch) end() bool {
	if w.hooks != nil {
		return w.hooks.RemoveCancelHook(w.c)
	}
	return w.stop()
}

// ContextCancelled cuts whatever c is waiting for (clientWatch's hook).
func (c *upConn) ContextCancelled() { _ = c.conn.SetDeadline(aLongTimeAgo) }

// replayOnFresh reports whether a request that failed on a stale kept-alive
// connection, with no byte of answer, may be sent again: its body (if any)
// was never touched, and either it never left or its method is safe to
// repeat.
func replayOnFresh(r *http.Request, body *trackedBody, err error) bool {
	if body != nil {
		return !body.read.Load()
	}
	var we *writeError
	if errors.As(err, &we) {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// writeError is a failure to send a request without a body.
type writeError struct{ err error }

func (e *writeError) Error() string { return "proxy: send request: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// bodyWriter sends a request body on a goroutine of its own.
type bodyWriter struct {
	// gate is 0 until either side takes it: 1 the writer started (the
	// body may be read), 2 the try was given up first (it never will be).
	gate atomic.Int32
	done chan error
}

// start runs the writer: it sends body after the head c.bw holds. When
// that fails (the client's body broke off, the server went away) it
// closes c, which ends the try.
func (b *bodyWriter) start(c *upConn, n int64, body *trackedBody) {
	b.done = make(chan error, 1)
	go func() {
		if !b.gate.CompareAndSwap(0, 1) {
			b.done <- errFastClosed
			return
		}
		err := writeBody(c.bw, n, body)
		if err != nil {
			_ = c.conn.Close()
		}
		b.done <- err
	}()
}

// cancel keeps the writer from starting; it reports whether the body was
// left untouched.
func (b *bodyWriter) cancel() bool { return b.gate.CompareAndSwap(0, 2) }

// roundTrip writes r to c and reads the answer's headers. A request body
// is written by a goroutine of its own (the returned bodyWriter, nil
// without a body), so that a server answering before it has read the
// whole body is heard. The try timeout runs as a connection deadline.
func (s *Service) roundTrip(w http.ResponseWriter, c *upConn, r *http.Request, u *upstream, body *trackedBody) (*http.Response, *bodyWriter, error) {
	_ = c.conn.SetDeadline(time.Now().Add(s.tryTimeout))
	c.nread, c.limit = 0, maxResponseHeaderBytes
	n := int64(0) // the body's length as sent: -1 chunked
	if body != nil {
		n = r.ContentLength
	}
	writeHead(c.bw, r, n, u, s.trustedPeer(r.RemoteAddr))
	var bw *bodyWriter
	if body == nil {
		c.await = true
		err := c.bw.Flush()
		c.await = false
		if err != nil {
			return nil, nil, &writeError{err}
		}
	} else {
		bw = &bodyWriter{}
		bw.start(c, n, body)
	}
	resp, err := readFinal(c, r, w)
	if err != nil {
		return nil, bw, err
	}
	c.limit = -1
	return resp, bw, nil
}

// readFinal reads answers until a final (non-1xx) one, forwarding 1xx
// answers such as 103 Early Hints to the client as ReverseProxy does.
func readFinal(c *upConn, r *http.Request, w http.ResponseWriter) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := readSimpleResponse(c.br, r, &c.answer)
		if resp == nil && err == nil {
			resp, err = http.ReadResponse(c.br, r)
		}
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if n >= 1000 {
			return nil, errors.New("proxy: server sent more than 1000 informational answers")
		}
		h := w.Header()
		for k, vv := range resp.Header {
			h[k] = append(h[k], vv...)
		}
		w.WriteHeader(code)
		clear(h) // WriteHeader does not for 1xx answers
		c.limit = maxResponseHeaderBytes
	}
}

// writeHead writes the request line and headers of r, as ReverseProxy
// and http.Transport would send them to server u, for a body of n bytes
// (-1: chunked); trusted: the peer is a trusted proxy (see setForwarded).
func writeHead(bw *bufio.Writer, r *http.Request, n int64, u *upstream, trusted bool) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if p := r.URL.EscapedPath(); p != "" {
		bw.WriteString(p)
	} else {
		bw.WriteByte('/')
	}
	if r.URL.ForceQuery || r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	if r.Host != "" {
		bw.WriteString(removeZone(r.Host))
	} else {
		bw.WriteString(u.url.Host) // an HTTP/1.0 client sent none
	}
	bw.WriteString("\r\n")
	if ua := r.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		writeField(bw, "User-Agent", ua[0])
	}
	switch {
	case n > 0, n == 0 && r.Method != http.MethodGet && r.Method != http.MethodHead:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(n, 10))
		bw.WriteString("\r\n")
	case n < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if skipRequestHeader(k, trusted) || (len(conn) > 0 && httpguts.HeaderValuesContainsToken(conn, k)) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	writeForwarded(bw, r, trusted)
	bw.WriteString("\r\n")
}

// skipRequestHeader reports whether header k of the client's request is
// not passed on as it is: hop-by-hop headers, those this hop writes
// itself, and the forwarding headers of an untrusted peer.
func skipRequestHeader(k string, trusted bool) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Host", "User-Agent", "Content-Length",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	case "Forwarded", "X-Real-Ip":
		return !trusted
	}
	return false
}

// writeForwarded writes X-Forwarded-For, -Host and -Proto as setForwarded
// sets them.
func writeForwarded(bw *bufio.Writer, r *http.Request, trusted bool) {
	if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		if prior := r.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
			for _, v := range prior {
				bw.WriteString(textproto.TrimString(v))
				bw.WriteString(", ")
			}
		}
		bw.WriteString(clientIP)
		bw.WriteString("\r\n")
	}
	host, proto := r.Host, "http"
	if r.TLS != nil {
		proto = "https"
	}
	if trusted {
		if v := r.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
	}
	writeField(bw, "X-Forwarded-Host", host)
	writeField(bw, "X-Forwarded-Proto", proto)
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(textproto.TrimString(v))
	bw.WriteString("\r\n")
}

// removeZone removes an IPv6 zone from a Host header value, as
// http.Transport does ("[fe80::1%en0]:8080" -> "[fe80::1]:8080").
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// writeBody sends the request body after the head that bw holds: n bytes,
// or chunked when n is negative.
func writeBody(bw *bufio.Writer, n int64, body io.Reader) error {
	bp := copyBuffers.get()
	defer copyBuffers.put(bp)
	buf := *bp
	if n >= 0 {
		m, err := io.CopyBuffer(bw, io.LimitReader(body, n), buf)
		if err != nil {
			return err
		}
		if m != n {
			return io.ErrUnexpectedEOF
		}
		return bw.Flush()
	}
	cw := httputil.NewChunkedWriter(bw)
	if _, err := io.CopyBuffer(writerOnly{cw}, body, buf); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// writerOnly hides ReadFrom, so that io.CopyBuffer uses the buffer.
type writerOnly struct{ io.Writer }

// relay sends the server's answer resp to the client and gives the
// connection back to the pool when the exchange ended cleanly.
// watch is the watch on the client going away, ended here.
func (s *Service) relay(w http.ResponseWriter, r *http.Request, u *upstream, c *upConn, resp *http.Response, bw *bodyWriter, watch *clientWatch, res *fastTry) {
	// The try timeout ends with the headers, as it did for the transport;
	// when the whole body is already read in, nothing more will wait on
	// the connection, and the next try sets a deadline of its own.
	if bw != nil || !bodyBuffered(c, resp) {
		_ = c.conn.SetDeadline(time.Time{})
	}
	if r.Context().Err() != nil {
		// The client left just now; the watch may have fired before the
		// deadline was cleared.
		watch.end()
		_ = c.conn.Close()
		res.err = errFastClosed
		return
	}
	res.responded, res.status, res.headersAt = true, resp.StatusCode, time.Now()
	s.notePassive(u, resp.StatusCode)

	if resp.StatusCode == http.StatusSwitchingProtocols {
		// No upgrade was asked for (upgrades take the net/http path).
		watch.end()
		_ = c.conn.Close()
		res.responded = false
		res.err = errors.New("proxy: server switched protocols though no upgrade was requested")
		return
	}
	removeHopByHop(resp.Header)
	h := w.Header()
	for k, vv := range resp.Header {
		if old, ok := h[k]; ok {
			h[k] = append(old, vv...)
		} else {
			h[k] = vv // resp.Header is not used after this: its slices are handed over
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)

	err := copyBody(w, resp, flushEvery(resp))
	clientGone := !watch.end()
	if err != nil || clientGone {
		_ = c.conn.Close()
		if r.Context().Value(http.ServerContextKey) != nil {
			// As ReverseProxy does: the answer is broken, so abort the
			// client's connection instead of ending it cleanly.
			panic(http.ErrAbortHandler)
		}
		return
	}
	if len(resp.Trailer) > 0 {
		_ = http.NewResponseController(w).Flush() // forces chunking
		if len(resp.Trailer) == announced {
			for k, vv := range resp.Trailer {
				h[k] = append(h[k], vv...)
			}
		} else {
			for k, vv := range resp.Trailer {
				k = http.TrailerPrefix + k
				h[k] = append(h[k], vv...)
			}
		}
	}
	reuse := !resp.Close
	if bw != nil {
		if reuse {
			// The server keeps the connection, so it takes the rest of
			// the body (if it answered early): the writer ends once the
			// client has sent it all, as net/http's server would wait for
			// it too before the client's next request.
			reuse = <-bw.done == nil
		} else {
			// The server will close: stop sending the body.
			_ = c.conn.Close()
		}
	}
	if reuse {
		c.pool.put(c)
	} else {
		_ = c.conn.Close()
	}
}

// bodyBuffered reports whether resp's body is all in c's read buffer.
func bodyBuffered(c *upConn, resp *http.Response) bool {
	return resp.Body == http.NoBody || resp.ContentLength >= 0 && int64(c.br.Buffered()) >= resp.ContentLength
}

// flushEvery reports whether every write of resp's body must be flushed to
// the client at once: server-sent events, and bodies of unknown length.
func flushEvery(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	return isEventStream(resp.Header["Content-Type"])
}

// isEventStream reports whether a Content-Type is text/event-stream, as
// mime.ParseMediaType would read it, without allocating.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	const es = "text/event-stream"
	v := strings.TrimLeft(ct[0], " \t")
	if len(v) < len(es) || !strings.EqualFold(v[:len(es)], es) {
		return false
	}
	rest := strings.TrimLeft(v[len(es):], " \t")
	if rest != "" && rest[0] != ';' {
		return false
	}
	base, _, err := mime.ParseMediaType(ct[0]) // rare: confirm
	return err == nil && base == es
}

// copyBody copies resp's body to w, reading it to its end (which fills
// resp.Trailer).
func copyBody(w http.ResponseWriter, resp *http.Response, flush bool) error {
	if resp.Body == http.NoBody {
		return nil
	}
	pool := copyBuffers
	if resp.ContentLength >= 0 && resp.ContentLength <= smallBufferSize {
		pool = smallBuffers
	}
	bp := pool.get()
	defer pool.put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		// The headers go out now, as ReverseProxy sends them, so that a
		// client waiting on a slow or broken stream sees the answer start.
		rc = http.NewResponseController(w)
		if err := rc.Flush(); err != nil {
			return err
		}
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// removeHopByHop removes hop-by-hop headers from a server's answer, as
// ReverseProxy does.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 and the
// older ones ReverseProxy also removes, in canonical form.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}
