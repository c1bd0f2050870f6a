package router

import (
	"net/http"
)

// recorder notes the status and size of a response for the access log. It
// passes Flush, Hijack (WebSocket) and the rest through Unwrap, which
// http.ResponseController uses.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.status, r.wroteHeader = code, true
	} else if !r.wroteHeader {
		r.status = code // 1xx: informational, the final status comes later
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.wroteHeader = true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush lets streaming responses through (httputil.ReverseProxy flushes
// through http.ResponseController, which also finds it via Unwrap).
func (r *recorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
