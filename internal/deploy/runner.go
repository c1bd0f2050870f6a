package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/challenge/shared"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/storage"
)

// DefaultCheckInterval is how often Run looks at a target with nothing
// due, to see that it still serves the right certificate.
const DefaultCheckInterval = 12 * time.Hour

// Engine is the certificate manager as targets use it: they order through
// its one issuing path and subscribe to its events.
type Engine interface {
	OrderNow(ctx context.Context, o certmgr.Order) (certmgr.Result, error)
	Subscribe(f func(certmgr.Event)) (cancel func())
}

// IssuerFunc returns the issuer a target orders with: the configured CA
// and account, answering challenges with solvers.
type IssuerFunc func(target string, solvers acmeclient.Solvers) certmgr.Issuer

// Options configure a Runner. Config, Store, Engine and NewIssuer are
// required.
type Options struct {
	// Config holds the targets.
	Config *config.Config
	// Store is where certificates are kept (and the deploy state).
	Store *storage.Store
	// Engine orders certificates and reports their events.
	Engine Engine
	// NewIssuer makes each target's issuer.
	NewIssuer IssuerFunc
	// DNS serves the targets with challenge.dns: the DNS-01 solver of
	// certificates.acme.challenges.dns; nil when none is configured.
	DNS *acmeclient.Solvers
	// OrderDue makes runs order what is due themselves (`zoku deploy`,
	// from cron). In `zoku run` it is false: the manager keeps the
	// targets' certificates fresh (Sets) and the runner deploys on its
	// events.
	OrderDue bool
	// AccountID, AccountEmail and Server are given to exec targets' hook
	// variables.
	AccountID, AccountEmail, Server string
	// Logger; nil discards.
	Logger *slog.Logger
	// Output receives what exec targets' commands print; nil discards.
	Output io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CheckInterval; zero means DefaultCheckInterval.
	CheckInterval time.Duration
	// OnRun, when set, is called after each run of a target (not dry
	// runs) with its results, from the goroutine that ran it.
	OnRun func(target string, results []Result)
}

// RunOptions tune one RunOnce.
type RunOptions struct {
	// Target limits the run to one target; empty means all.
	Target string
	// Force renews every certificate, due or not.
	Force bool
	// DryRun only looks: it checks each target (credentials, objects) and
	// says what a run would do; nothing is ordered, written or pushed.
	DryRun bool
}

// Runner runs the targets of one config. Its methods are safe for
// concurrent use; runs are serialised.
type Runner struct {
	opts  Options
	log   *slog.Logger
	store *storage.Store

	run sync.Mutex // one target run at a time in this process

	mu        sync.Mutex // guards the fields below
	targets   map[string]*target
	listeners map[string]*listener // challenge.listen, by address
	state     *stateFile

	kick chan struct{}
}

type listener struct {
	solver *http01.Solver
	srv    *http01.Server
}

// New builds the targets of opts.Config. It does no network I/O: sessions,
// listeners and ACME accounts are set up on first use.
func New(opts Options) (*Runner, error) {
	if opts.Config == nil || opts.Store == nil || opts.Engine == nil || opts.NewIssuer == nil {
		return nil, errors.New("deploy: Config, Store, Engine and NewIssuer are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	r := &Runner{
		opts: opts, log: opts.Logger.With("component", "deploy"), store: opts.Store,
		listeners: map[string]*listener{}, kick: make(chan struct{}, 1),
		state: &stateFile{store: opts.Store},
	}
	targets, err := r.buildAll(opts.Config)
	if err != nil {
		return nil, err
	}
	r.targets = targets
	return r, nil
}

func (r *Runner) buildAll(cfg *config.Config) (map[string]*target, error) {
	out := make(map[string]*target, len(cfg.Targets))
	for _, name := range slices.Sorted(maps.Keys(cfg.Targets)) {
		t, err := r.build(cfg, name)
		if err != nil {
			return nil, fmt.Errorf("deploy: target %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// Prepared is a config's targets, built and not yet in service.
type Prepared struct {
	cfg     *config.Config
	targets map[string]*target
}

// Prepare builds the targets of cfg without changing anything: the first
// half of a reload that is applied whole or not at all.
func (r *Runner) Prepare(cfg *config.Config) (*Prepared, error) {
	targets, err := r.buildAll(cfg)
	if err != nil {
		return nil, err
	}
	return &Prepared{cfg: cfg, targets: targets}, nil
}

// Commit puts prepared targets in service. A target keeps its status and
// schedule when its name stays; runs in progress finish first.
func (r *Runner) Commit(p *Prepared) {
	r.run.Lock()
	defer r.run.Unlock()
	r.mu.Lock()
	for name, t := range p.targets {
		if old, ok := r.targets[name]; ok {
			t.status, t.next, t.jitter = old.status, old.next, old.jitter
			t.status.Certificates = t.certNames()
			t.status.Type = t.typ
		}
	}
	r.targets = p.targets
	r.opts.Config = p.cfg
	r.mu.Unlock()
	r.closeUnusedListeners()
	r.Kick()
}

// Apply replaces the targets with those of cfg (Prepare, then Commit).
func (r *Runner) Apply(cfg *config.Config) error {
	p, err := r.Prepare(cfg)
	if err != nil {
		return err
	}
	r.Commit(p)
	return nil
}

// Kick makes Run look at every target's schedule now.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Close stops the challenge listeners. Call it when the runner is done.
func (r *Runner) Close() error {
	r.mu.Lock()
	ls := r.listeners
	r.listeners = map[string]*listener{}
	r.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.srv.Close())
	}
	return errors.Join(errs...)
}

func (r *Runner) closeUnusedListeners() {
	r.mu.Lock()
	used := map[string]bool{}
	for _, t := range r.targets {
		used[t.listen] = true
	}
	var stale []*listener
	for addr, l := range r.listeners {
		if !used[addr] {
			stale = append(stale, l)
			delete(r.listeners, addr)
		}
	}
	r.mu.Unlock()
	for _, l := range stale {
		_ = l.srv.Close()
	}
}

// listenerFor binds zoku's HTTP-01 listener at addr once and shares it.
func (r *Runner) listenerFor(addr string) (*http01.Solver, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.listeners[addr]; ok {
		return l.solver, nil
	}
	sol := http01.NewSolver()
	sol.Logger = r.log
	// Tokens go to shared storage too: zoku's own entry points, or another
	// node, answer them when the CA reaches those instead.
	sol.Shared = &shared.Answers{Store: r.store.Backend(), Prefix: shared.HTTP01Prefix, Logger: r.log}
	srv, err := sol.Listen(addr)
	if err != nil {
		return nil, err
	}
	r.listeners[addr] = &listener{solver: sol, srv: srv}
	r.log.Info("http-01 listener for targets", "address", srv.Addr().String())
	return sol, nil
}

// Status lists the targets, by name.
func (r *Runner) Status() []TargetStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TargetStatus, 0, len(r.targets))
	for _, name := range slices.Sorted(maps.Keys(r.targets)) {
		t := r.targets[name]
		s := t.status
		s.Certificates = slices.Clone(s.Certificates)
		s.NextRun = t.next
		out = append(out, s)
	}
	return out
}

// Deploy runs one target now, whatever its schedule: renew what is due,
// deploy what the target does not serve. It returns when done, with the
// first failure.
func (r *Runner) Deploy(ctx context.Context, name string) error {
	t := r.target(name)
	if t == nil {
		return fmt.Errorf("%w: %q; known: %s", ErrUnknownTarget, name, strings.Join(r.names(), ", "))
	}
	return firstErr(r.cycle(ctx, t, RunOptions{}))
}

func (r *Runner) target(name string) *target {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.targets[name]
}

func (r *Runner) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.targets))
}

// RunOnce runs the targets one after the other (`zoku deploy`) and
// returns one Result per target and certificate; the error names the
// targets that failed.
func (r *Runner) RunOnce(ctx context.Context, o RunOptions) ([]Result, error) {
	names := r.names()
	if o.Target != "" {
		if r.target(o.Target) == nil {
			return nil, fmt.Errorf("%w: %q; known: %s", ErrUnknownTarget, o.Target, strings.Join(names, ", "))
		}
		names = []string{o.Target}
	}
	var (
		results []Result
		failed  []string
	)
	for _, n := range names {
		t := r.target(n)
		if t == nil {
			continue
		}
		res := r.cycle(ctx, t, o)
		results = append(results, res...)
		if firstErr(res) != nil {
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		return results, &RunError{Failed: failed, Total: len(names)}
	}
	return results, nil
}

// RunError is RunOnce's error when targets failed; each failure is in its
// Result.
type RunError struct {
	// Failed names the targets that failed, Total how many ran.
	Failed []string
	Total  int
}

func (e *RunError) Error() string {
	return fmt.Sprintf("deploy: %d of %d targets failed: %s", len(e.Failed), e.Total, strings.Join(e.Failed, ", "))
}

func firstErr(res []Result) error {
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("%s %s: %w", r.Target, r.Certificate, r.Err)
		}
	}
	return nil
}

// Run looks at every target when its NextRun comes (due renewals, failed
// runs backing off, a periodic check of what is served) until ctx ends.
// It returns nil when ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	for {
		now := r.opts.Now()
		next := now.Add(r.opts.CheckInterval)
		var due []*target
		r.mu.Lock()
		for _, name := range slices.Sorted(maps.Keys(r.targets)) {
			t := r.targets[name]
			if !t.next.After(now) {
				due = append(due, t)
			} else if t.next.Before(next) {
				next = t.next
			}
		}
		r.mu.Unlock()
		for _, t := range due {
			if ctx.Err() != nil {
				return nil
			}
			r.cycle(ctx, t, RunOptions{})
		}
		if len(due) > 0 {
			continue
		}
		timer := time.NewTimer(max(next.Sub(now), time.Second))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-r.kick:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// backoff is the wait after the n-th failure in a row: one minute doubling
// to six hours, with jitter.
func backoff(n int) time.Duration {
	b := min(time.Minute<<min(n-1, 9), 6*time.Hour)
	return b/2 + time.Duration(rand.Int64N(int64(b/2)+1))
}
