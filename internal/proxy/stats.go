package proxy

import (
	"context"
	"net/http"
	"time"
)

// Stats tells the caller of ServeHTTP how the request was served. Put one
// in the request context with WithStats, call ServeHTTP, then read it; it
// is filled on the handler's goroutine before ServeHTTP returns.
type Stats struct {
	// Server is the URL of the last server tried; empty for a static
	// service or when none was available.
	Server string
	// Attempts is the number of tries (0 when none was made).
	Attempts int
	// UpstreamDuration runs from the first try until the chosen server's
	// response headers arrived (or the last try failed).
	UpstreamDuration time.Duration
}

type statsKey struct{}

// WithStats returns a context carrying a fresh *Stats, and that Stats.
func WithStats(ctx context.Context) (context.Context, *Stats) {
	st := &Stats{}
	return context.WithValue(ctx, statsKey{}, st), st
}

func statsFrom(ctx context.Context) *Stats {
	st, _ := ctx.Value(statsKey{}).(*Stats)
	return st
}

// RequestInfo is what Options.Observer gets once per request. The route is
// not known here; the router adds it.
type RequestInfo struct {
	// Service is the service's name.
	Service string
	// Server as in Stats.
	Server string
	// Attempts as in Stats.
	Attempts int
	// Status sent to the client: 101 for an upgrade, 499 when the client
	// went away before an answer.
	Status int
	// Bytes of response body written to the client (not counting an
	// upgraded connection's traffic).
	Bytes int64
	// Upstream is Stats.UpstreamDuration.
	Upstream time.Duration
}

// recorder notes the status and body size written through it. It keeps
// http.ResponseController working (Flush, Hijack for upgrades, deadlines)
// through Unwrap.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	// 1xx answers other than 101 are interim; the final status follows.
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher for callers that type-assert.
func (r *recorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
