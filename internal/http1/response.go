package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// bufferBeforeChunking is how much of an answer is held before its head
// is written: an answer that fits gets a Content-Length (net/http's
// bufferBeforeChunkingSize).
const bufferBeforeChunking = 2048

// maxPostHandlerReadBytes is how much of a request body the handler left
// unread is read to keep the connection (net/http's figure).
const maxPostHandlerReadBytes = 256 << 10

// response is the loop's http.ResponseWriter. Its wire format and its
// rules (automatic Content-Length, sniffed Content-Type, chunking,
// trailers, headers dropped for 1xx, 204 and 304, HEAD) are net/http's,
// so a client cannot tell the two servers apart.
type response struct {
	conn *conn
	req  *http.Request
	body *body // the request body, when it has one

	header        http.Header // the handler's
	calledHeader  bool
	wroteHeader   bool // logically: WriteHeader was called
	status        int
	written       int64
	contentLength int64 // from the handler's Content-Length, or -1
	handlerDone   bool
	wantsClose    bool
	closeAfter    bool
	tooLarge      bool
	fullDuplex    bool
	writeDeadline bool // a write deadline is set and must be cleared
	trailers      []string

	w  *bufio.Writer // the first bytes of the body, in front of cw
	cw chunkWriter

	scratch [64]byte
	ctx     requestContext // the request's context
}

// errFinished is what a handler's goroutine gets for writing after the
// handler returned (net/http's server has no such check).
var errFinished = errors.New("http1: the answer is finished: the handler returned")

// Header returns the answer's header map.
func (w *response) Header() http.Header {
	if w.cw.header == nil && w.wroteHeader && !w.cw.wroteHeader {
		// Written logically but not yet on the wire: later changes must
		// not reach the wire.
		w.cw.header = w.snapshot()
	}
	w.calledHeader = true
	return w.header
}

// Bounds on the header snapshot a connection keeps for its next answers;
// a larger one is dropped after use.
const (
	maxKeptSnapKeys = 64
	maxKeptSnapVals = 256
)

// snapshot returns a copy of the handler's header as it is now, as
// http.Header.Clone makes (net/http's server clones it at WriteHeader), in
// a map and a slice the connection reuses for its next answers: the copy
// lives only until the answer's head is on the wire, which is before the
// connection reads its next request.
func (w *response) snapshot() http.Header {
	c := w.conn
	if c.snap == nil {
		c.snap = make(http.Header, len(w.header))
	} else {
		clear(c.snap)
	}
	vals := c.snapVals[:0]
	for k, vv := range w.header {
		if vv == nil {
			c.snap[k] = nil
			continue
		}
		i := len(vals)
		vals = append(vals, vv...)
		c.snap[k] = vals[i:len(vals):len(vals)] // an append copies
	}
	c.snapVals = vals
	return c.snap
}

// releaseSnapshot lets go of a snapshot too large to keep, and of the
// strings a kept one points to.
func (c *conn) releaseSnapshot() {
	if len(c.snap) > maxKeptSnapKeys || cap(c.snapVals) > maxKeptSnapVals {
		c.snap, c.snapVals = nil, nil
		return
	}
	clear(c.snap)
	clear(c.snapVals)
	c.snapVals = c.snapVals[:0]
}

// WriteHeader sends (or, for a final status, records) the status.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		w.conn.srv.logf("http: superfluous response.WriteHeader call from %s", caller())
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		bw := w.conn.bw
		writeStatusLine(bw, code, w.scratch[:0])
		_ = w.header.WriteSubset(bw, excludedNoBody)
		_, _ = bw.WriteString("\r\n")
		_ = bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	if w.calledHeader && w.cw.header == nil {
		w.cw.header = w.snapshot()
	}
	if cl := first(w.header, "Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.conn.srv.logf("http: invalid Content-Length of %q", cl)
			w.header.Del("Content-Length")
		}
	}
}

// caller names the handler code that misused the writer, for the log.
func caller() string {
	pc := make([]uintptr, 16)
	n := runtime.Callers(1, pc)
	frames := runtime.CallersFrames(pc[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "github.com/zoku/zoku/internal/http1.") && !strings.HasPrefix(f.Function, "net/http.") {
			return fmt.Sprintf("%s (%s:%d)", f.Function, path.Base(f.File), f.Line)
		}
		if !more {
			return "?"
		}
	}
}

// Write writes body bytes.
func (w *response) Write(p []byte) (int, error) { return w.write(len(p), p, "") }

// WriteString writes body bytes.
func (w *response) WriteString(s string) (int, error) { return w.write(len(s), nil, s) }

func (w *response) write(n int, b []byte, s string) (int, error) {
	if w.w == nil {
		return 0, errFinished
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if n == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(n)
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if b != nil {
		return w.w.Write(b)
	}
	return w.w.WriteString(s)
}

// Flush sends what is buffered.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError sends what is buffered, and says whether that failed.
func (w *response) FlushError() error {
	if w.w == nil {
		return errFinished
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	err := w.w.Flush()
	if !w.cw.wroteHeader {
		w.cw.writeHeader(nil)
	}
	if e := w.conn.bw.Flush(); err == nil {
		err = e
	}
	return err
}

// SetReadDeadline sets the deadline for reading the request body (for
// http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error { return w.conn.rwc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for writing the answer (for
// http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error {
	w.writeDeadline = true
	return w.conn.rwc.SetWriteDeadline(t)
}

// EnableFullDuplex lets the handler read the request body while it writes
// the answer (for http.ResponseController).
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// finish ends the answer after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.w.Flush()
	w.w.Reset(nil)
	answers.Put(w.w)
	w.w = nil
	w.cw.close()
	if w.cw.header != nil {
		w.cw.header = nil
		w.conn.releaseSnapshot()
	}
	_ = w.conn.bw.Flush()
	if w.body != nil {
		_ = w.body.Close()
	}
	if w.req.MultipartForm != nil {
		_ = w.req.MultipartForm.RemoveAll()
	}
}

// reusable reports whether the connection can carry the next request.
func (w *response) reusable() bool {
	switch {
	case w.closeAfter:
		return false
	case w.req.Method != http.MethodHead && w.contentLength != -1 && bodyAllowed(w.status) && w.contentLength != w.written:
		return false
	case w.conn.werr != nil:
		return false
	case w.body != nil && w.body.closedEarly():
		return false
	}
	return true
}

func (w *response) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if !httpguts.ValidTrailerHeader(k) {
		return
	}
	w.trailers = append(w.trailers, k)
}

func (w *response) finalTrailers() http.Header {
	var t http.Header
	for k, vv := range w.header {
		if kk, found := strings.CutPrefix(k, http.TrailerPrefix); found {
			if t == nil {
				t = make(http.Header)
			}
			t[kk] = vv
		}
	}
	for _, k := range w.trailers {
		if t == nil {
			t = make(http.Header)
		}
		for _, v := range w.header[k] {
			t.Add(k, v)
		}
	}
	return t
}

// chunkWriter writes the head on the first write, then the body, framed
// in chunks when the answer has no length.
type chunkWriter struct {
	res         *response
	header      http.Header // the header as written logically, when it was cloned
	wroteHeader bool
	chunking    bool
}

func (cw *chunkWriter) Write(p []byte) (n int, err error) {
	if !cw.wroteHeader {
		cw.writeHeader(p)
	}
	if cw.res.req.Method == http.MethodHead {
		return len(p), nil
	}
	bw := cw.res.conn.bw
	if cw.chunking {
		_, _ = bw.Write(strconv.AppendInt(cw.res.scratch[:0], int64(len(p)), 16))
		_, err = bw.WriteString("\r\n")
		if err != nil {
			_ = cw.res.conn.rwc.Close()
			return 0, err
		}
	}
	n, err = bw.Write(p)
	if cw.chunking && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		_ = cw.res.conn.rwc.Close()
	}
	return n, err
}

func (cw *chunkWriter) close() {
	if !cw.wroteHeader {
		cw.writeHeader(nil)
	}
	if cw.chunking {
		bw := cw.res.conn.bw
		_, _ = bw.WriteString("0\r\n")
		if t := cw.res.finalTrailers(); t != nil {
			_ = t.Write(bw)
		}
		_, _ = bw.WriteString("\r\n")
	}
}

var (
	excludedNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}
	suppressed304  = []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	suppressedNone = []string{"Content-Length", "Transfer-Encoding"}
)

// writeHeader writes the status line and header, with p the first body
// bytes (all of them when the handler is done): net/http's rules, for
// HTTP/1.1 requests.
func (cw *chunkWriter) writeHeader(p []byte) {
	cw.wroteHeader = true
	w := cw.res
	keepAlives := !w.conn.srv.shutting.Load()
	isHEAD := w.req.Method == http.MethodHead

	header := cw.header
	owned := header != nil
	if !owned {
		header = w.header
	}
	var exclude map[string]bool
	del := func(key string) {
		if owned {
			header.Del(key)
			return
		}
		if _, ok := header[key]; !ok {
			return
		}
		if exclude == nil {
			exclude = map[string]bool{}
		}
		exclude[key] = true
	}
	set := &w.conn.extra // not on the stack: it would escape through bw
	*set = extraHeader{}

	trailers := false
	for k := range cw.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if exclude == nil {
				exclude = map[string]bool{}
			}
			exclude[k] = true
			trailers = true
		}
	}
	for _, v := range cw.header["Trailer"] {
		trailers = true
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				w.declareTrailer(k)
			}
		}
	}

	te := first(header, "Transfer-Encoding")
	hasTE := te != ""

	if w.handlerDone && !trailers && !hasTE && bodyAllowed(w.status) && !has(header, "Content-Length") && (!isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		set.contentLength = strconv.AppendInt(set.clen[:0], int64(len(p)), 10)
	}
	hasCL := w.contentLength != -1

	if w.wantsClose {
		w.closeAfter = true
	}
	if first(header, "Connection") == "close" || !keepAlives {
		w.closeAfter = true
	}

	if w.req.ContentLength != 0 && !w.closeAfter && !w.fullDuplex && w.body != nil {
		discard, tooBig := false, false
		switch {
		case w.body.isClosed():
			if !w.body.sawEOF() {
				w.closeAfter = true
			}
		case w.body.unread() >= maxPostHandlerReadBytes:
			tooBig = true
		default:
			discard = true
		}
		if discard {
			_, err := io.CopyN(io.Discard, w.body, maxPostHandlerReadBytes+1)
			switch err {
			case nil:
				tooBig = true
			case http.ErrBodyReadAfterClose:
				// Not closed by the handler (that case is above): net/http's
				// body closed itself on a broken trailer, and nothing after
				// it on the connection can be trusted.
				w.closeAfter = true
			case io.EOF:
				if w.body.Close() != nil {
					w.closeAfter = true
				}
			default:
				w.closeAfter = true
			}
		}
		if tooBig {
			w.closeAfter = true
			w.tooLarge = true
			del("Connection")
			set.connection = "close"
		}
	}

	code := w.status
	if bodyAllowed(code) {
		_, haveType := header["Content-Type"]
		if header.Get("Content-Encoding") == "" && !haveType && !hasTE && len(p) > 0 {
			set.contentType = http.DetectContentType(p)
		}
	} else {
		for _, k := range suppressedFor(code) {
			del(k)
		}
	}

	if !has(header, "Date") {
		set.date = time.Now().UTC().AppendFormat(set.dateBuf[:0], http.TimeFormat)
	}

	if hasCL && hasTE && te != "identity" {
		w.conn.srv.logf("http: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.contentLength)
		del("Content-Length")
		hasCL = false
	}

	switch {
	case isHEAD || !bodyAllowed(code) || code == http.StatusNoContent:
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case hasTE && te == "identity":
		cw.chunking = false
		w.closeAfter = true
		del("Transfer-Encoding")
	default:
		cw.chunking = true
		set.transferEncoding = "chunked"
		if hasTE && te == "chunked" {
			del("Transfer-Encoding")
		}
	}
	if cw.chunking {
		del("Content-Length")
	}

	if w.closeAfter && (!keepAlives || !hasToken(first(cw.header, "Connection"), "close")) && !isProtocolSwitch(code, header) {
		del("Connection")
		set.connection = "close"
	}

	bw := w.conn.bw
	writeStatusLine(bw, code, w.scratch[:0])
	_ = header.WriteSubset(bw, exclude)
	set.write(bw)
	_, _ = bw.WriteString("\r\n")
}

// extraHeader is what the server adds to the handler's header, written in
// net/http's order.
type extraHeader struct {
	date             []byte
	contentLength    []byte
	contentType      string
	connection       string
	transferEncoding string
	dateBuf          [len(http.TimeFormat)]byte
	clen             [20]byte
}

func (h *extraHeader) write(bw *bufio.Writer) {
	if h.date != nil {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(h.date)
		_, _ = bw.WriteString("\r\n")
	}
	if h.contentLength != nil {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(h.contentLength)
		_, _ = bw.WriteString("\r\n")
	}
	for _, kv := range [...][2]string{{"Content-Type", h.contentType}, {"Connection", h.connection}, {"Transfer-Encoding", h.transferEncoding}} {
		if kv[1] != "" {
			_, _ = bw.WriteString(kv[0])
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(kv[1])
			_, _ = bw.WriteString("\r\n")
		}
	}
}

func writeStatusLine(bw *bufio.Writer, code int, scratch []byte) {
	_, _ = bw.WriteString("HTTP/1.1 ")
	if text := http.StatusText(code); text != "" {
		_, _ = bw.Write(strconv.AppendInt(scratch, int64(code), 10))
		_ = bw.WriteByte(' ')
		_, _ = bw.WriteString(text)
		_, _ = bw.WriteString("\r\n")
	} else {
		_, _ = fmt.Fprintf(bw, "%03d status code %d\r\n", code, code)
	}
}

func bodyAllowed(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

func suppressedFor(status int) []string {
	switch {
	case status == http.StatusNotModified:
		return suppressed304
	case !bodyAllowed(status):
		return suppressedNone
	}
	return nil
}

func isProtocolSwitch(code int, h http.Header) bool {
	return code == http.StatusSwitchingProtocols && h.Get("Upgrade") != "" && httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// first is h's first value for the canonical key, without canonicalising.
func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func has(h http.Header, key string) bool {
	_, ok := h[key]
	return ok
}
