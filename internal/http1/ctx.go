package http1

import (
	"context"
	"sync"
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
}

type afterFunc struct{ f func() }

func newRequestContext(parent context.Context) *requestContext {
	return &requestContext{Context: parent}
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
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
}

// watch looks for the client going away while a long request runs: a
// timer that, after WatchAfter, reads ahead on the connection (once the
// request body is done with it) and cancels the request's context when
// the read ends the stream.
type watch struct {
	c   *conn
	w   *response
	ctx *requestContext

	mu      sync.Mutex // guards the fields below
	timer   *time.Timer
	ended   bool
	reading bool
	stopped chan struct{} // closed when the read ahead returns
}

func (c *conn) startWatch(w *response, ctx *requestContext) *watch {
	if c.br.Buffered() > 0 {
		// The client already sent more (a pipelined request): it is
		// there, and the loop must not read ahead past that.
		return nil
	}
	wa := &watch{c: c, w: w, ctx: ctx}
	wa.timer = time.AfterFunc(WatchAfter, wa.fire)
	return wa
}

func (wa *watch) fire() {
	wa.mu.Lock()
	defer wa.mu.Unlock()
	if wa.ended || (wa.w.body != nil && !wa.w.body.done()) {
		// The handler still reads the body: a client gone ends that
		// read with an error instead.
		return
	}
	wa.reading = true
	wa.stopped = make(chan struct{})
	go func() {
		defer close(wa.stopped)
		_, err := wa.c.br.Peek(1)
		if err != nil && !isTimeout(err) {
			wa.c.gone.Store(true)
			wa.ctx.cancel(context.Canceled)
		}
	}()
}

// stop ends the watch: the read ahead, when one runs, is cut short and
// waited for.
func (wa *watch) stop() {
	if wa == nil {
		return
	}
	wa.mu.Lock()
	wa.ended = true
	wa.timer.Stop()
	reading := wa.reading
	wa.mu.Unlock()
	if !reading {
		return
	}
	_ = wa.c.rwc.SetReadDeadline(aLongTimeAgo)
	<-wa.stopped
	_ = wa.c.rwc.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)
