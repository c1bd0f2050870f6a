package http1

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// requestContext is a request's context: the connection's values, and a
// cancellation that costs nothing until something waits for it. It is
// cancelled when the handler returns, or when the watch sees the client
// go away. context.AfterFunc on it registers a function (it implements
// the AfterFunc method the context package looks for) instead of starting
// a goroutine.
type requestContext struct {
	context.Context // the connection's values; never cancelled

	mu    sync.Mutex
	done  chan struct{} // made on demand
	err   error
	funcs []*afterFunc
	hooks []CancelHook // AddCancelHook's, in hookBuf until it is full
	// hookBuf holds the first hooks, so that the usual one or two cost
	// no allocation.
	hookBuf [2]CancelHook
}

// A CancelHook is told, on a goroutine of its own, that a request's
// context was cancelled: the client went away, or the handler returned.
// The proxy registers its upstream connection as one. It is an alias, so
// that a package can name the methods below in an interface of its own
// without importing this one.
type CancelHook = interface{ ContextCancelled() }

// The shape internal/proxy looks for on a request's context.
var _ interface {
	AddCancelHook(interface{ ContextCancelled() })
	RemoveCancelHook(interface{ ContextCancelled() }) bool
} = (*requestContext)(nil)

type afterFunc struct{ f func() }

func newRequestContext(parent context.Context) *requestContext {
	c := &requestContext{}
	c.init(parent)
	return c
}

// init readies a zero requestContext (one inside a response).
func (c *requestContext) init(parent context.Context) {
	c.Context = parent
	c.hooks = c.hookBuf[:0]
}

// Done returns a channel closed when the context is cancelled.
func (c *requestContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

// Err is nil until the context is cancelled.
func (c *requestContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Deadline: a request's context has none.
func (c *requestContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// AfterFunc arranges for f to run on its own goroutine once the context is
// cancelled; stop undoes it, reporting whether it did.
func (c *requestContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &afterFunc{f: f}
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	c.funcs = append(c.funcs, a)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, b := range c.funcs {
			if b == a {
				c.funcs = append(c.funcs[:i], c.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// AddCancelHook is AfterFunc for an object that is already on the heap:
// h.ContextCancelled runs on its own goroutine once the context is
// cancelled (at once when it already is). Unlike context.AfterFunc, it
// allocates neither a context, nor a closure, nor a stop function.
// h is a comparable value, usually a pointer.
func (c *requestContext) AddCancelHook(h CancelHook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go h.ContextCancelled()
		return
	}
	c.hooks = append(c.hooks, h)
}

// RemoveCancelHook undoes AddCancelHook, reporting whether h was still
// waiting (false: it has run or is about to, or was never added).
func (c *requestContext) RemoveCancelHook(h CancelHook) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.hooks {
		if x == h {
			c.hooks = slices.Delete(c.hooks, i, i+1) // clears the freed slot
			return true
		}
	}
	return false
}

// cancel cancels the context with err (the first call wins).
func (c *requestContext) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	funcs, hooks := c.funcs, c.hooks
	c.funcs, c.hooks = nil, nil
	c.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
	for _, h := range hooks {
		go h.ContextCancelled()
	}
}

// watch looks, on one connection, for the client going away while a long
// request runs: once the server's sweep finds the request running for
// WatchAfter, it reads ahead on the connection (when the request body is
// done with it) and cancels the request's context if the read ends the
// stream. A request that ends sooner costs two uncontended locks and no
// timer.
type watch struct {
	mu      sync.Mutex // guards w, ctx, reading and stopped
	w       *response  // the request running, or nil
	ctx     *requestContext
	reading bool
	stopped chan struct{} // closed when the read ahead returns
	since   atomic.Int64  // the sweep tick the request began at; 0 when none
}

// beginWatch marks the start of a request's handler.
func (c *conn) beginWatch(w *response, ctx *requestContext) {
	wa := &c.watch
	wa.mu.Lock()
	wa.w, wa.ctx = w, ctx
	wa.mu.Unlock()
	wa.since.Store(c.srv.tick.Load())
}

// endWatch marks the end of the handler; a read ahead that runs is cut
// short and waited for.
func (c *conn) endWatch() {
	wa := &c.watch
	wa.since.Store(0)
	wa.mu.Lock()
	reading := wa.reading
	wa.w, wa.ctx, wa.reading = nil, nil, false
	wa.mu.Unlock()
	if !reading {
		return
	}
	_ = c.rwc.SetReadDeadline(aLongTimeAgo)
	<-wa.stopped
	_ = c.rwc.SetReadDeadline(time.Time{})
}

// look starts the read ahead when the request is still running and no
// longer reads its body.
func (c *conn) look() {
	wa := &c.watch
	wa.mu.Lock()
	defer wa.mu.Unlock()
	if wa.w == nil || wa.reading || (wa.w.body != nil && !wa.w.body.done()) {
		return
	}
	if c.br.Buffered() > 0 {
		// The client sent more (a pipelined request): it is there, and
		// the read ahead must not go past those bytes. (The handler no
		// longer reads the connection, so the buffer is still.)
		return
	}
	wa.reading = true
	wa.stopped = make(chan struct{})
	ctx, stopped := wa.ctx, wa.stopped
	go func() {
		defer close(stopped)
		_, err := c.br.Peek(1)
		if err != nil && !isTimeout(err) {
			c.gone.Store(true)
			ctx.cancel(context.Canceled)
		}
	}()
}

// sweep runs while Serve does: every WatchAfter/2 it has the connections
// whose request has run for at least WatchAfter/2 (two ticks) look. With
// no connection open it sleeps until one comes (wake), so an idle server
// costs no wake-ups.
func (s *Server) sweep(done <-chan struct{}) {
	t := time.NewTicker(WatchAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := s.tick.Add(1)
		s.mu.Lock()
		for c := range s.conns {
			if since := c.watch.since.Load(); since != 0 && now-since >= 2 {
				c.look()
			}
		}
		idle := len(s.conns) == 0
		s.mu.Unlock()
		if idle {
			t.Stop()
			select {
			case <-done:
				return
			case <-s.wake:
			}
			t.Reset(WatchAfter / 2)
		}
	}
}

var aLongTimeAgo = time.Unix(1, 0)
