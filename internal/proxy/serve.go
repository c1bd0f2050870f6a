package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/zoku/zoku/internal/proxy/balance"
)

// errTryTimeout is the error of a try that had no response headers within
// the service's TryTimeout.
var errTryTimeout = errors.New("proxy: no response headers within the try timeout")

// Status recorded for a request whose client went away before an answer
// (nginx's convention; never sent).
const statusClientClosed = 499

// stateKey is the context key of *tryState.
type stateKey struct{}

// tryState is one request's state across its tries. The ReverseProxy hooks
// reach it through the request context. Plain fields are only touched on
// the handler goroutine (ReverseProxy calls its hooks there); atomics may
// be set from the transport's or the timer's goroutines.
type tryState struct {
	cur          *upstream // server of the current try
	err          error     // the current try's error, from ErrorHandler
	roundTripped bool      // the current try reached the transport
	responded    bool      // the current try got response headers
	status       int       // their status
	headersAt    time.Time // when they arrived
	timer        *time.Timer

	gotConn  atomic.Bool // the current try got a connection: the request may be sent
	timedOut atomic.Bool // the current try's timer fired

	trace httptrace.ClientTrace
}

func (t *tryState) reset(u *upstream) {
	t.cur, t.err, t.roundTripped, t.responded, t.status = u, nil, false, false, 0
	t.gotConn.Store(false)
	t.timedOut.Store(false)
}

func stateFrom(ctx context.Context) *tryState {
	t, _ := ctx.Value(stateKey{}).(*tryState)
	return t
}

// outcome is what ServeHTTP reports to Stats and the Observer.
type outcome struct {
	server   string
	attempts int
	status   int // when the ResponseWriter did not see one (101, 499)
	upstream time.Duration
}

// ServeHTTP answers r: the static reply, or the answer of a backend chosen
// by the service's strategy, with retries as the package doc describes.
// With no available server it answers 503; when every try failed, 504 if
// the last one timed out and 502 otherwise. A *Stats in r's context (see
// WithStats) is filled in.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ServeWithStats(w, r, statsFrom(r.Context()))
}

// ServeWithStats is ServeHTTP reporting to st (which may be nil) instead
// of a Stats in the request context; st is filled before it returns.
func (s *Service) ServeWithStats(w http.ResponseWriter, r *http.Request, st *Stats) {
	var rec *recorder
	if s.opts.Observer != nil {
		rec = &recorder{ResponseWriter: w}
		w = rec
	}
	var out outcome
	// Deferred so that Stats and the Observer also see requests that
	// are aborted with http.ErrAbortHandler mid-body.
	defer func() {
		if st != nil {
			st.Server, st.Attempts, st.UpstreamDuration = out.server, out.attempts, out.upstream
		}
		if rec != nil {
			status := rec.status
			if status == 0 {
				status = out.status
			}
			s.opts.Observer(RequestInfo{Service: s.name, Server: out.server, Attempts: out.attempts, Status: status, Bytes: rec.bytes, Upstream: out.upstream})
		}
	}()
	if s.static != nil {
		s.static.serve(w, r)
		return
	}
	s.serveProxy(w, r, &out)
}

func (s *Service) serveProxy(w http.ResponseWriter, r *http.Request, out *outcome) {
	i := -1
	var sk *stickyTry
	if s.sticky != nil {
		sk = &stickyTry{}
		i, sk.had = s.sticky.find(r, s.stickyVals, func(i int) bool { return s.ups[i].Available() })
	}
	if i < 0 {
		i = s.sel.Select(s.pool)
	}
	if i < 0 {
		out.status = http.StatusServiceUnavailable
		http.Error(w, "no healthy server for service "+s.name, http.StatusServiceUnavailable)
		return
	}
	var body *trackedBody
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		body = &trackedBody{rc: r.Body}
	}
	if s.fast && fastEligible(r) {
		s.serveFast(w, r, out, i, body, sk)
		return
	}

	ts := &tryState{}
	ts.trace.GotConn = func(httptrace.GotConnInfo) { ts.gotConn.Store(true) }
	ctx := context.WithValue(r.Context(), stateKey{}, ts)
	ctx = httptrace.WithClientTrace(ctx, &ts.trace)

	start := time.Now()
	var tried []bool
	for attempt := 1; ; attempt++ {
		u := s.ups[i]
		out.server, out.attempts = u.key, attempt
		s.markSticky(w, sk, u)
		var reqBody io.ReadCloser // nil: r.Body as it is (none)
		if body != nil {
			reqBody = body
			if body.read.Load() && r.GetBody != nil {
				b, err := r.GetBody()
				if err != nil {
					s.fail(w, out, u, fmt.Errorf("proxy: replay request body: %w", err), attempt-1)
					return
				}
				reqBody = b
			}
		}
		s.try(ctx, w, r, ts, u, reqBody)
		if ts.responded {
			out.status = ts.status
			out.upstream = ts.headersAt.Sub(start)
		} else {
			out.upstream = time.Since(start)
		}
		if ts.err == nil || ts.responded {
			// Answered, or failed after the answer began (a broken
			// upgrade): nothing more can be said to the client.
			return
		}
		if r.Context().Err() != nil {
			out.status = statusClientClosed
			return
		}
		if !ts.roundTripped {
			// ReverseProxy refused the request itself (an invalid
			// Upgrade); the backend is not at fault.
			out.status = http.StatusBadRequest
			http.Error(w, "bad request: "+s.name+" cannot forward it", http.StatusBadRequest)
			return
		}
		if err := body.readError(); err != nil && reqBody == body {
			s.failClient(w, out, err)
			return
		}
		err := ts.err
		if ts.timedOut.Load() {
			err = errTryTimeout
		}
		s.recordFailure(u, err)

		next := s.nextServer(r, i, attempt, &tried, ts.gotConn.Load(), body)
		if next < 0 {
			s.markSticky(w, sk, nil)
			s.fail(w, out, u, err, attempt)
			return
		}
		s.logger().Debug("retrying on another server", "upstream", u.key, "attempt", attempt, "error", err)
		i = next
	}
}

// serveFast is serveProxy's loop of tries over the HTTP/1.1 fast path
// (fastpath.go), starting on server i.
func (s *Service) serveFast(w http.ResponseWriter, r *http.Request, out *outcome, i int, body *trackedBody, sk *stickyTry) {
	start := time.Now()
	var tried []bool
	var res fastTry
	for attempt := 1; ; attempt++ {
		u := s.ups[i]
		out.server, out.attempts = u.key, attempt
		s.markSticky(w, sk, u)
		reqBody := body
		if body != nil && body.read.Load() && r.GetBody != nil {
			b, err := r.GetBody()
			if err != nil {
				s.fail(w, out, u, fmt.Errorf("proxy: replay request body: %w", err), attempt-1)
				return
			}
			reqBody = &trackedBody{rc: b}
		}
		s.tryFast(w, r, u, reqBody, &res)
		if res.responded {
			out.status = res.status
			out.upstream = res.headersAt.Sub(start)
		} else {
			out.upstream = time.Since(start)
		}
		if res.err == nil || res.responded {
			return
		}
		if r.Context().Err() != nil {
			out.status = statusClientClosed
			return
		}
		if err := reqBody.readError(); err != nil {
			s.failClient(w, out, err)
			return
		}
		err := res.err
		if res.timedOut {
			err = errTryTimeout
		}
		s.recordFailure(u, err)
		next := s.nextServer(r, i, attempt, &tried, res.gotConn, body)
		if next < 0 {
			s.markSticky(w, sk, nil)
			s.fail(w, out, u, err, attempt)
			return
		}
		s.logger().Debug("retrying on another server", "upstream", u.key, "attempt", attempt, "error", err)
		i = next
	}
}

// stickyTry is a sticky request's cookie state across its tries: the
// value the client sent, and the Set-Cookie an earlier try added.
type stickyTry struct{ had, set string }

// markSticky points the sticky cookie at u for the try about to be made
// (nil: at no server, the request failed). It does nothing for a service
// without sticky sessions (sk nil).
func (s *Service) markSticky(w http.ResponseWriter, sk *stickyTry, u *upstream) {
	if sk == nil {
		return
	}
	value := sk.had // no server: leave the client's cookie alone
	if u != nil {
		value = u.stickyVal
	}
	s.sticky.mark(w.Header(), sk.had, value, &sk.set)
}

// nextServer picks the server of the next try after try number attempt on
// server i failed, or returns -1 when there is to be none. tried marks
// the servers already tried.
func (s *Service) nextServer(r *http.Request, i, attempt int, tried *[]bool, gotConn bool, body *trackedBody) int {
	if attempt > s.retries || !retryable(r, gotConn, body) {
		return -1
	}
	if *tried == nil {
		*tried = make([]bool, len(s.ups))
	}
	(*tried)[i] = true
	return s.sel.Select(exclude(s.pool, *tried))
}

// try makes one attempt on u with body (nil: r's own, empty, body); ctx
// carries the request's tryState.
func (s *Service) try(ctx context.Context, w http.ResponseWriter, r *http.Request, ts *tryState, u *upstream, body io.ReadCloser) {
	ts.reset(u)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ts.timer = time.AfterFunc(s.tryTimeout, func() {
		ts.timedOut.Store(true)
		cancel(errTryTimeout)
	})
	defer ts.timer.Stop()

	out := r.WithContext(ctx)
	if body != nil {
		out.Body = body
	}
	u.state.StartRequest()
	defer u.state.EndRequest()
	s.netHTTP().rp.ServeHTTP(w, out)
}

// retryable reports whether a failed try may be made again elsewhere:
// nothing was sent, or the method is idempotent and the body can be sent
// again.
func retryable(r *http.Request, gotConn bool, body *trackedBody) bool {
	replayable := body == nil || !body.read.Load() || r.GetBody != nil
	if !replayable {
		return false
	}
	return !gotConn || idempotent(r.Method)
}

// fail answers the client after the last try failed.
func (s *Service) fail(w http.ResponseWriter, out *outcome, u *upstream, err error, attempts int) {
	status, text := http.StatusBadGateway, "bad gateway: no answer from service "+s.name
	if errors.Is(err, errTryTimeout) {
		status, text = http.StatusGatewayTimeout, "gateway timeout: service "+s.name+" did not answer in time"
	}
	out.status = status
	s.logger().Warn("proxy request failed", "upstream", u.key, "attempts", attempts, "status", status, "error", err)
	http.Error(w, text, status)
}

// failClient answers a request whose try failed because its own body could
// not be read: over the entry point's maxBodyBytes (413), too slow (408),
// or malformed or cut short (400). The server is not at fault: the try is
// not made again, passive health does not count it, and it is no warning.
func (s *Service) failClient(w http.ResponseWriter, out *outcome, err error) {
	status, text := http.StatusBadRequest, "bad request: the request body is malformed or incomplete"
	var tooLarge *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooLarge):
		status, text = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: the limit is %d bytes", tooLarge.Limit)
	case errors.As(err, &ne) && ne.Timeout():
		status, text = http.StatusRequestTimeout, "request timeout: the request body did not arrive in time"
	}
	out.status = status
	s.logger().Debug("request body could not be read", "status", status, "error", err)
	http.Error(w, text, status)
}

// recordFailure feeds passive health and logs when it takes u out.
func (s *Service) recordFailure(u *upstream, err error) {
	if u.state.RecordFailure(s.now(), s.passive, err) {
		s.logger().Warn("upstream taken out by passive health", "upstream", u.key, "cooldown", s.passive.Cooldown, "error", err)
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// exclude returns a copy of pool in which the tried entries are unavailable.
func exclude(pool []balance.Backend, tried []bool) []balance.Backend {
	view := make([]balance.Backend, len(pool))
	for i, b := range pool {
		if tried[i] {
			b = unavailable{}
		}
		view[i] = b
	}
	return view
}

// unavailable is a Backend that is never chosen.
type unavailable struct{}

func (unavailable) Available() bool { return false }
func (unavailable) Weight() int     { return 1 }
func (unavailable) InFlight() int64 { return 0 }

// errorHandler is ReverseProxy's ErrorHandler: it keeps the error for
// serveProxy, which retries or answers.
func (s *Service) errorHandler(_ http.ResponseWriter, r *http.Request, err error) {
	if ts := stateFrom(r.Context()); ts != nil {
		ts.err = err
	}
}

// modifyResponse is ReverseProxy's ModifyResponse: it notes the answer and
// feeds passive health.
func (s *Service) modifyResponse(resp *http.Response) error {
	ts := stateFrom(resp.Request.Context())
	if ts == nil {
		return nil
	}
	ts.responded, ts.status, ts.headersAt = true, resp.StatusCode, time.Now()
	s.notePassive(ts.cur, resp.StatusCode)
	return nil
}

// notePassive feeds passive health with a server's answer.
func (s *Service) notePassive(u *upstream, status int) {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		s.recordFailure(u, fmt.Errorf("proxy: backend answered %d", status))
	default:
		u.state.RecordSuccess()
	}
}

// tryTransport ends a try that has no response headers within the try
// timeout. Once headers arrive the timer is stopped, so a long body or an
// upgraded connection is not cut off.
type tryTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t tryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ts := stateFrom(req.Context())
	if ts == nil {
		return t.base.RoundTrip(req)
	}
	ts.roundTripped = true
	resp, err := t.base.RoundTrip(req)
	if !ts.timer.Stop() {
		// The timer fired: the answer, if any, came too late and its
		// context is already cancelled.
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, errTryTimeout
	}
	return resp, err
}

// trackedBody notes whether the request body was ever read, which decides
// whether a failed try can be made again, and the first error reading it
// gave (the client's fault, not the server's).
type trackedBody struct {
	rc    io.ReadCloser
	read  atomic.Bool
	fault atomic.Pointer[error]
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.fault.CompareAndSwap(nil, &err)
	}
	return n, err
}

// readError is the first error reading the body gave, other than its end.
func (b *trackedBody) readError() error {
	if b == nil {
		return nil
	}
	if p := b.fault.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *trackedBody) Close() error { return b.rc.Close() }
