package router

import (
	"context"
	"errors"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// l4Listener is an entry point's listener as its HTTP server sees it. On
// an entry point without TCP routes or PROXY protocol, Accept is the
// socket's own Accept (one atomic load more per connection). Once the
// running config gives the entry point a connection plan, a goroutine
// accepts instead, and each connection is looked at on a goroutine of its
// own (so a slow client cannot hold up the others): it goes to a TCP
// route, which this listener serves and tracks, or is handed to the HTTP
// server through Accept. A reload changes the plan for new connections
// only; connections already forwarded stay up.
type l4Listener struct {
	net.Listener
	r    *Router
	name string

	ready  chan net.Conn // connections for the HTTP server
	errs   chan error    // the accept loop's errors, for Accept to return
	done   chan struct{} // closed by Close
	closed sync.Once
	bg     atomic.Bool   // the accept loop runs
	loop   chan struct{} // closed when the accept loop returns

	mu    sync.Mutex            // guards conns
	conns map[net.Conn]struct{} // connections served by TCP routes or being looked at
	wg    sync.WaitGroup        // their goroutines
}

func newL4Listener(r *Router, name string, ln net.Listener) *l4Listener {
	return &l4Listener{Listener: ln, r: r, name: name, ready: make(chan net.Conn), errs: make(chan error), done: make(chan struct{}), loop: make(chan struct{}), conns: map[net.Conn]struct{}{}}
}

// Accept returns the next connection for the HTTP server.
func (l *l4Listener) Accept() (net.Conn, error) {
	for !l.bg.Load() {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p := l.r.l4Of(l.name)
		if p == nil {
			return c, nil
		}
		// From now on the accept loop runs, and Accept waits on it.
		l.bg.Store(true)
		go l.acceptLoop()
		l.dispatch(c, p)
	}
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// acceptLoop accepts until the listener is closed, handing connections
// to dispatch, and temporary errors to Accept (the HTTP server backs off
// on them).
func (l *l4Listener) acceptLoop() {
	defer close(l.loop)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.dispatch(c, l.r.l4Of(l.name))
	}
}

// dispatch starts the connection's own goroutine, or hands it straight to
// the HTTP server when the entry point has no plan (any more).
func (l *l4Listener) dispatch(c net.Conn, p *epL4) {
	if p == nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.toHTTP(c)
		}()
		return
	}
	l.track(c, true)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.track(c, false)
		defer func() {
			if v := recover(); v != nil {
				l.r.log.Error("connection handler panicked", "entry_point", l.name, "panic", v, "stack", string(debug.Stack()))
				_ = c.Close()
			}
		}()
		l.handle(c, p)
	}()
}

// toHTTP hands c to the HTTP server (through Accept).
func (l *l4Listener) toHTTP(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *l4Listener) track(c net.Conn, add bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if add {
		l.conns[c] = struct{}{}
	} else {
		delete(l.conns, c)
	}
}

// Close stops accepting; connections served by TCP routes go on until
// drain.
func (l *l4Listener) Close() error {
	var err error
	l.closed.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// drain waits until the TCP connections end by themselves or ctx ends,
// then closes those still open, and waits for their goroutines.
func (l *l4Listener) drain(ctx context.Context) {
	_ = l.Close()
	if l.bg.Load() {
		<-l.loop // no dispatch after this
	}
	idle := make(chan struct{})
	go func() { l.wg.Wait(); close(idle) }()
	select {
	case <-idle:
		return
	case <-ctx.Done():
	}
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	select {
	case <-idle:
	case <-time.After(5 * time.Second):
		l.r.log.Warn("tcp connections did not end after being closed", "entry_point", l.name)
	}
}

// openTCP is the number of connections served by TCP routes (or being
// looked at) now.
func (l *l4Listener) openTCP() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}
