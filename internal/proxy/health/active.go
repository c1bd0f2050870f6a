package health

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Defaults of Active's zero fields.
const (
	DefaultPath     = "/"
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 2 * time.Second
)

// maxProbeBody is how much of a probe's response body is read (and
// dropped) so that the connection can be reused.
const maxProbeBody = 64 << 10

// Active is a service's active health check. Zero fields take the defaults
// above.
type Active struct {
	// Path (and optional query) to GET; "" means "/". It is joined to the
	// server URL's own path, the same way a client request is proxied.
	Path string
	// Interval between rounds; 0 means 10s.
	Interval time.Duration
	// Timeout of one probe; 0 means 2s.
	Timeout time.Duration
	// ExpectedStatus is the status a healthy server answers; 0 means any
	// 2xx or 3xx. Redirects are not followed.
	ExpectedStatus int
}

// CheckerOptions are the Checker's dependencies. Zero fields are documented.
type CheckerOptions struct {
	// Transport sends the probes; nil means a private transport without
	// any HTTP proxy. Pass the service's own transport to reuse its
	// connections and TLS settings.
	Transport http.RoundTripper
	// Now stamps probes; nil means time.Now.
	Now func() time.Time
	// Logger gets a line when a server goes down or comes back; nil
	// discards.
	Logger *slog.Logger
}

// target is one probed server.
type target struct {
	server *Server
	url    string // probe URL
	shown  string // probe URL safe for logs
}

// Checker probes the servers of one service. Start runs rounds on a ticker
// in a goroutine that Close stops and waits for; CheckNow runs one round
// synchronously. Rounds never overlap.
type Checker struct {
	cfg     Active
	targets []target
	client  *http.Client
	now     func() time.Time
	log     *slog.Logger

	roundMu sync.Mutex // held for a whole round, so rounds never overlap

	mu      sync.Mutex // guards the fields below
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when the loop exits; nil if never started
}

// NewChecker prepares a checker of servers under cfg. It does no I/O; the
// error is about cfg.Path or a server URL.
func NewChecker(cfg Active, servers []*Server, opts CheckerOptions) (*Checker, error) {
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	ref, err := url.Parse(cfg.Path)
	if err != nil || ref.Scheme != "" || ref.Host != "" || !strings.HasPrefix(ref.Path, "/") {
		return nil, fmt.Errorf("health: check path %q must be an absolute path such as /healthz", cfg.Path)
	}
	c := &Checker{
		cfg:    cfg,
		now:    opts.Now,
		log:    opts.Logger,
		client: &http.Client{Transport: opts.Transport},
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.client.Transport == nil {
		c.client.Transport = &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	// A 3xx is an answer, not something to follow.
	c.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, s := range servers {
		base, err := url.Parse(s.URL())
		if err == nil && base.Scheme == "h2c" {
			base.Scheme = "http" // plain HTTP/2: the caller's Transport speaks it
		}
		if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return nil, fmt.Errorf("health: server URL %q must be an absolute http:// or https:// URL", s.URL())
		}
		u := *base
		u.Path = joinPath(base.Path, ref.Path)
		u.RawPath = ""
		u.RawQuery = ref.RawQuery
		u.Fragment = ""
		c.targets = append(c.targets, target{server: s, url: u.String(), shown: u.Redacted()})
	}
	return c, nil
}

func joinPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(p, "/")
}

// Start launches the loop: a round at once, then one every Interval until
// Close. Calling it again, or after Close, does nothing.
func (c *Checker) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.loop(ctx)
}

// Close stops the loop and waits for it to exit, abandoning a round in
// progress. It is safe to call more than once and without Start.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (c *Checker) loop(ctx context.Context) {
	defer close(c.done)
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		c.safeRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// safeRound runs a round and turns a panic into a log line, so one bad
// probe cannot kill the loop.
func (c *Checker) safeRound(ctx context.Context) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("health check round panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	c.CheckNow(ctx)
}

// CheckNow probes every server once, concurrently, and returns when all
// results are recorded. If a round is already running it waits for it
// first. Probes that ctx cuts short are not recorded.
func (c *Checker) CheckNow(ctx context.Context) {
	c.roundMu.Lock()
	defer c.roundMu.Unlock()
	var wg sync.WaitGroup
	for _, t := range c.targets {
		wg.Go(func() { c.probe(ctx, t) })
	}
	wg.Wait()
}

func (c *Checker) probe(ctx context.Context, t target) {
	err := c.get(ctx, t.url)
	if ctx.Err() != nil {
		return // stopping: the result says nothing about the server
	}
	up := err == nil
	if changed := t.server.SetActive(up, c.now(), err); changed {
		if up {
			c.log.Info("upstream up", "upstream", t.shown)
		} else {
			c.log.Warn("upstream down", "upstream", t.shown, "error", err)
		}
	}
}

func (c *Checker) get(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("health: probe request: %w", err)
	}
	req.Header.Set("User-Agent", "zoku-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("health: probe failed: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	_ = resp.Body.Close()
	switch want := c.cfg.ExpectedStatus; {
	case want != 0 && resp.StatusCode != want:
		return fmt.Errorf("health: probe answered %d, want %d", resp.StatusCode, want)
	case want == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
		return fmt.Errorf("health: probe answered %d, want 2xx or 3xx", resp.StatusCode)
	}
	return nil
}
