package middleware

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// compress encodes answers with the first of its encodings (zstd, gzip)
// the client accepts (Accept-Encoding, q-values honoured), when the
// answer is of a listed content type, not encoded already, not partial
// (206) and at least minSize bytes: an answer of unknown length is held
// until minSize bytes came or it ended; one the service flushes before
// that is a stream, encoded from there on. It adds
// Vary: Accept-Encoding, drops Content-Length and Accept-Ranges, and
// makes a strong ETag weak (the bytes differ from the service's).
// HEAD requests and upgrades (WebSocket) pass untouched.
type compress struct {
	encodings []string
	minSize   int
	exact     map[string]bool // "text/html"
	prefixes  []string        // "text/" for "text/*"
}

func newCompress(c *config.Compress) *compress {
	m := &compress{encodings: c.Encodings, minSize: c.MinSize, exact: map[string]bool{}}
	for _, ct := range c.ContentTypes {
		ct = strings.ToLower(ct)
		if p, ok := strings.CutSuffix(ct, "/*"); ok {
			m.prefixes = append(m.prefixes, p+"/")
		} else {
			m.exact[ct] = true
		}
	}
	return m
}

func (m *compress) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		enc := m.pick(r.Header["Accept-Encoding"])
		if enc == "" || r.Method == http.MethodHead || r.Header["Upgrade"] != nil {
			next(w, r, st)
			return
		}
		cw := compressWriters.Get().(*compressWriter)
		cw.rw, cw.m, cw.enc = w, m, enc
		next(cw, r, st)
		cw.finish()
		cw.reset()
		compressWriters.Put(cw)
	}
}

// pick returns the first of m's encodings that Accept-Encoding accepts.
func (m *compress) pick(accept []string) string {
	if len(accept) == 0 {
		return ""
	}
	for _, e := range m.encodings {
		if accepts(accept, e) {
			return e
		}
	}
	return ""
}

// accepts reports whether the Accept-Encoding values accept coding with a
// q-value above 0 (by name, or by "*" when the name is not listed).
func accepts(values []string, coding string) bool {
	star := false
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			q := 1.0
			if _, qv, ok := strings.Cut(params, "q="); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(qv), 64); err == nil {
					q = f
				}
			}
			switch {
			case strings.EqualFold(name, coding):
				return q > 0
			case name == "*":
				star = q > 0
			}
		}
	}
	return star
}

// eligible reports whether a content type is one m compresses.
func (m *compress) eligible(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		return false
	}
	if m.exact[mt] {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(mt, p) {
			return true
		}
	}
	return false
}

var compressWriters = sync.Pool{New: func() any { return new(compressWriter) }}

// compressWriter is the ResponseWriter compress hands to the rest of the
// request path.
type compressWriter struct {
	rw  http.ResponseWriter
	m   *compress
	enc string

	status  int    // final status, 0 until the service set one
	state   uint8  // pending, passing or encoding
	pending []byte // held back while pending
	encoder io.WriteCloser
}

const (
	cwPending uint8 = iota
	cwPassing
	cwEncoding
)

func (w *compressWriter) reset() {
	p := w.pending[:0]
	if cap(p) > 64<<10 {
		p = nil
	}
	*w = compressWriter{pending: p}
}

func (w *compressWriter) Header() http.Header { return w.rw.Header() }

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *compressWriter) Unwrap() http.ResponseWriter { return w.rw }

func (w *compressWriter) WriteHeader(code int) {
	if code < 200 {
		w.rw.WriteHeader(code) // 1xx pass; 101 only on a hijacked upgrade
		return
	}
	if w.status != 0 {
		return
	}
	w.status = code
	h := w.rw.Header()
	switch {
	case code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusPartialContent,
		h.Get("Content-Encoding") != "", h.Get("Content-Range") != "",
		h.Get("Content-Type") != "" && !w.m.eligible(h.Get("Content-Type")):
		w.pass()
	case h.Get("Content-Length") != "":
		if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n < int64(w.m.minSize) || h.Get("Content-Type") == "" {
			w.pass()
		} else {
			w.start()
		}
	}
	// Otherwise pending: decided by the size of what comes.
}

func (w *compressWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case cwPassing:
		return w.rw.Write(p)
	case cwEncoding:
		return w.encoder.Write(p)
	}
	w.pending = append(w.pending, p...)
	if len(w.pending) >= w.m.minSize {
		h := w.rw.Header()
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", http.DetectContentType(w.pending))
		}
		if w.m.eligible(h.Get("Content-Type")) {
			w.start()
		} else {
			w.pass()
		}
		if err := w.drain(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// pass sends the headers as they are; the body follows unchanged.
func (w *compressWriter) pass() {
	w.state = cwPassing
	w.rw.WriteHeader(w.status)
}

// start sends the headers of an encoded answer and readies the encoder.
func (w *compressWriter) start() {
	w.state = cwEncoding
	h := w.rw.Header()
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Set("Content-Encoding", w.enc)
	if !varies(h) {
		h.Add("Vary", "Accept-Encoding")
	}
	if et := h.Get("Etag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("Etag", "W/"+et)
	}
	w.rw.WriteHeader(w.status)
	w.encoder = getEncoder(w.enc, w.rw)
}

func varies(h http.Header) bool {
	for _, v := range h["Vary"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Accept-Encoding") {
				return true
			}
		}
	}
	return false
}

// drain writes what was held back.
func (w *compressWriter) drain() error {
	if len(w.pending) == 0 {
		return nil
	}
	var err error
	if w.state == cwEncoding {
		_, err = w.encoder.Write(w.pending)
	} else {
		_, err = w.rw.Write(w.pending)
	}
	w.pending = w.pending[:0]
	return err
}

// Flush sends what is held. A pending answer is a stream (or an answer
// of unknown length whose service flushes, as httputil.ReverseProxy
// does at once): it is encoded when its type is listed, whatever its
// size so far, and each flush goes through the encoder.
func (w *compressWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == cwPending {
		h := w.rw.Header()
		if h.Get("Content-Type") == "" && len(w.pending) > 0 {
			h.Set("Content-Type", http.DetectContentType(w.pending))
		}
		if w.m.eligible(h.Get("Content-Type")) {
			w.start()
		} else {
			w.pass()
		}
	}
	_ = w.drain()
	if w.state == cwEncoding {
		if f, ok := w.encoder.(interface{ Flush() error }); ok {
			_ = f.Flush()
		}
	}
	_ = http.NewResponseController(w.rw).Flush()
}

// finish ends the answer: what is still pending goes out as it is, an
// encoder writes its end and goes back to its pool.
func (w *compressWriter) finish() {
	switch w.state {
	case cwPending:
		if w.status == 0 {
			return // nothing written: the server answers its default
		}
		w.pass()
		_ = w.drain()
	case cwEncoding:
		_ = w.encoder.Close()
		putEncoder(w.enc, w.encoder)
		w.encoder = nil
	}
}

var (
	gzipWriters = sync.Pool{New: func() any {
		gw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		return gw
	}}
	zstdWriters = sync.Pool{New: func() any {
		zw, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		return zw
	}}
)

func getEncoder(enc string, w io.Writer) io.WriteCloser {
	if enc == "zstd" {
		zw := zstdWriters.Get().(*zstd.Encoder)
		zw.Reset(w)
		return zw
	}
	gw := gzipWriters.Get().(*gzip.Writer)
	gw.Reset(w)
	return gw
}

func putEncoder(enc string, e io.WriteCloser) {
	if enc == "zstd" {
		zw := e.(*zstd.Encoder)
		zw.Reset(nil)
		zstdWriters.Put(zw)
		return
	}
	gw := e.(*gzip.Writer)
	gw.Reset(io.Discard)
	gzipWriters.Put(gw)
}
