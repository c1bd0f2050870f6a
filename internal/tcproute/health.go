package tcproute

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// checker is a TCP service's active health check: on a ticker it opens a
// connection to every server (within the timeout) and closes it again; a
// server that does not accept is down until it does. It sends nothing,
// not even a PROXY header: servers that require one see a connection
// closed before it spoke.
type checker struct {
	s        *Service
	interval time.Duration
	timeout  time.Duration

	mu     sync.Mutex // guards cancel, done and closed
	cancel context.CancelFunc
	done   chan struct{}
	closed bool
}

func newChecker(s *Service, interval, timeout time.Duration) *checker {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &checker{s: s, interval: interval, timeout: timeout}
}

// start runs a round at once, then one every interval, until close.
func (c *checker) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil || c.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go c.loop(ctx)
}

// close stops the loop and waits for it.
func (c *checker) close() {
	c.mu.Lock()
	c.closed = true
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (c *checker) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.safeRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *checker) safeRound(ctx context.Context) {
	defer func() {
		if v := recover(); v != nil {
			c.s.log.Error("tcp health check round panicked", "service", c.s.name, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	c.round(ctx)
}

// round probes every server once, concurrently.
func (c *checker) round(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range c.s.servers {
		wg.Go(func() {
			err := c.probe(ctx, b.addr)
			if ctx.Err() != nil {
				return // stopping: the result says nothing about the server
			}
			up := err == nil
			if b.h.SetActive(up, c.s.now(), err) {
				if up {
					c.s.log.Info("upstream up", "service", c.s.name, "upstream", b.addr)
				} else {
					c.s.log.Warn("upstream down", "service", c.s.name, "upstream", b.addr, "error", err)
				}
			}
		})
	}
	wg.Wait()
}

func (c *checker) probe(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.s.dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tcproute: health check: %w", err)
	}
	return conn.Close()
}

// CheckNow runs one round of the active health check at once and returns
// when every result is recorded; it does nothing for a service without
// one.
func (s *Service) CheckNow(ctx context.Context) {
	if s.checker != nil {
		s.checker.round(ctx)
	}
}
