package middleware

import (
	"net/http"
	"sync"
)

// statusWriter notes the final status written through it and runs before,
// if set, just before the headers go out. It passes Flush, Hijack
// (WebSocket) and the rest through Unwrap, which http.ResponseController
// uses.
type statusWriter struct {
	http.ResponseWriter
	status int // final status; 0 until headers are written
	bytes  int64
	before func(h http.Header, status int)
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// getStatusWriter wraps w; give it back with putStatusWriter.
func getStatusWriter(w http.ResponseWriter, before func(http.Header, int)) *statusWriter {
	sw := statusWriters.Get().(*statusWriter)
	sw.ResponseWriter, sw.before = w, before
	return sw
}

func putStatusWriter(sw *statusWriter) {
	*sw = statusWriter{}
	statusWriters.Put(sw)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.before != nil {
			w.before(w.ResponseWriter.Header(), code)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush sends the headers (running before) and what was written.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
