package deploy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/deploy/internal/order"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
	"github.com/zoku/zoku/internal/storage"
)

// Challenge kinds of a target.
const (
	kindResponder = "responder"
	kindListen    = "listen"
	kindWebroot   = "webroot"
	kindExec      = "exec"
	kindDNS       = "dns"
)

// target is one configured target and what the runner knows of it.
type target struct {
	name, typ string
	sets      []certmgr.Set
	impl      Target

	kind      string             // how HTTP-01 is answered (or dns)
	listen    string             // kindListen: zoku's listener address
	provider  challenge.Provider // responder, webroot, exec: the self-checked provider
	selfCheck *selfCheck         // nil when skipped (and for dns)
	verify    *probe.Spec        // TLS check, when configured

	issuer certmgr.Issuer // the CA with this target's way of answering challenges
	jitter float64        // fixed point inside an ARI window, in [0,1)

	status TargetStatus // guarded by Runner.mu
	next   time.Time    // guarded by Runner.mu
}

func (t *target) certNames() []string {
	out := make([]string, len(t.sets))
	for i, s := range t.sets {
		out[i] = s.Name
	}
	return out
}

// cycle runs one target: every certificate it needs, then records the
// outcome and schedules the next run.
func (r *Runner) cycle(ctx context.Context, t *target, o RunOptions) []Result {
	r.run.Lock()
	defer r.run.Unlock()
	if !o.DryRun {
		// One process or node at a time drives a target: the others find
		// it serving the certificate already.
		lease, err := r.store.Backend().Lock(ctx, "deploy/"+t.name)
		if err != nil {
			var results []Result
			for _, s := range t.sets {
				results = append(results, Result{Target: t.name, Certificate: s.Name, Action: Failed, Err: err})
			}
			return results
		}
		defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	}
	if rel, ok := t.impl.(Releaser); ok {
		defer rel.Release(context.WithoutCancel(ctx))
	}
	log := r.log.With("target", t.name)
	var results []Result
	var nextAt []time.Time
	if c, ok := t.impl.(Checker); ok && o.DryRun {
		if err := c.Check(ctx); err != nil {
			for _, s := range t.sets {
				results = append(results, Result{Target: t.name, Certificate: s.Name, Action: Failed, Err: err})
			}
			log.Error("check failed", "error", err)
			return results
		}
	}
	for _, s := range t.sets {
		res, at := r.safeCertCycle(ctx, t, s, o)
		results = append(results, res)
		nextAt = append(nextAt, at)
		attrs := []any{"cert_name", s.Name, "action", string(res.Action), "serial", res.Serial}
		if res.Err != nil {
			log.Error("target run failed; the certificate in service stays", append(attrs, "error", res.Err)...)
		} else {
			log.Info("target run", append(attrs, "reason", res.Reason)...)
		}
	}
	if !o.DryRun {
		r.record(t, results, nextAt)
		if r.opts.OnRun != nil {
			r.opts.OnRun(t.name, results)
		}
	}
	return results
}

// safeCertCycle is certCycle with a panic turned into a failed result, so
// one broken target does not stop `zoku run`.
func (r *Runner) safeCertCycle(ctx context.Context, t *target, set certmgr.Set, o RunOptions) (res Result, at time.Time) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic in a target run", "target", t.name, "cert_name", set.Name, "panic", p, "stack", string(debug.Stack()))
			res = Result{Target: t.name, Certificate: set.Name, Action: Failed, Err: fmt.Errorf("internal error (panic): %v", p)}
			at = r.opts.Now()
		}
	}()
	return r.certCycle(ctx, t, set, o)
}

// record updates t's status and next run.
func (r *Runner) record(t *target, results []Result, nextAt []time.Time) {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &t.status
	st.LastDeploy = now
	serials := make([]string, 0, len(results))
	for _, res := range results {
		serials = append(serials, res.Serial)
	}
	st.ServedSerial = strings.Join(serials, ",")
	if err := firstErr(results); err != nil {
		st.LastResult, st.LastError = "failed", err.Error()
		st.Failures++
		t.next = now.Add(backoff(st.Failures))
		return
	}
	st.LastResult, st.LastError, st.Failures, st.LastSuccess = "ok", "", 0, now
	next := now.Add(r.opts.CheckInterval)
	for _, at := range nextAt {
		next = minTime(next, at)
	}
	t.next = maxTime(next, now.Add(time.Minute))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// certCycle renews set if due (when the runner orders: `zoku deploy`)
// and deploys it if t does not serve it. It returns the result and when
// the certificate is next due.
func (r *Runner) certCycle(ctx context.Context, t *target, set certmgr.Set, o RunOptions) (Result, time.Time) {
	res := Result{Target: t.name, Certificate: set.Name}
	now := r.opts.Now()
	b, leaf, why := r.load(ctx, set)
	due, at := true, now
	res.Reason = why
	policy := certmgr.Policy{Force: o.Force, Rand: fraction(t.jitter)}
	if leaf != nil {
		d := certmgr.Due(leaf, b.Meta.RenewalInfo, now, policy)
		due, at, res.Reason, res.RenewAt = d.Due, d.At, d.Reason, d.At
	}
	served, err := r.served(ctx, t, set)
	if err != nil {
		res.Action, res.Err = Failed, err
		return res, now
	}
	res.Serial = certfile.SerialHex(served)
	if o.DryRun {
		switch {
		case due && leaf == nil:
			res.Action = WouldObtain
		case due:
			res.Action = WouldRenew
		case served == nil || served.Cmp(leaf.SerialNumber) != 0:
			res.Action = WouldDeploy
		default:
			res.Action = UpToDate
		}
		return res, at
	}
	action := Deployed
	if due && (r.opts.OrderDue || o.Force) {
		seen := ""
		if leaf != nil {
			seen = leaf.SerialNumber.Text(16)
		}
		rr, err := r.opts.Engine.OrderNow(ctx, certmgr.Order{Set: set, Seen: seen, Renew: leaf != nil, Force: o.Force, Issuer: t.issuer})
		if err != nil {
			res.Action, res.Err = Failed, err
			return res, now
		}
		if rr.Action == certmgr.Ordered {
			action = Renewed
			if leaf == nil {
				action = Obtained
			}
		}
		b, leaf = rr.Bundle, rr.Leaf
		at = certmgr.Due(leaf, b.Meta.RenewalInfo, now, certmgr.Policy{Rand: fraction(t.jitter)}).At
		res.RenewAt, res.Reason = at, firstNonEmpty(res.Reason, rr.Reason)
	}
	if leaf == nil {
		// zoku run: the manager is ordering it; its event wakes the target.
		res.Action, res.Reason = Waiting, why
		return res, now.Add(r.opts.CheckInterval)
	}
	if served != nil && served.Cmp(leaf.SerialNumber) == 0 {
		res.Action = UpToDate
		return res, at
	}
	if err := t.impl.Deploy(ctx, b); err != nil {
		res.Action, res.Err = Failed, err
		return res, now
	}
	if err := r.state.record(t.name, set.Name, leaf.SerialNumber, r.opts.Now()); err != nil {
		r.log.Warn("deploy state not saved; the next run checks again", "target", t.name, "error", err)
	}
	res.Action, res.Serial = action, certfile.SerialHex(leaf.SerialNumber)
	return res, at
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func fraction(f float64) func(int64) int64 {
	return func(n int64) int64 { return int64(f * float64(n)) }
}

// load returns the stored certificate of set when it is usable (it covers
// every name and has its key), else nil and why a new one is needed.
func (r *Runner) load(ctx context.Context, set certmgr.Set) (*storage.Bundle, *x509.Certificate, string) {
	b, err := r.store.LoadCertificate(ctx, set.Name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, "no certificate stored yet"
	case err != nil:
		r.log.Warn("stored certificate unreadable; ordering a new one", "cert_name", set.Name, "error", err)
		return nil, nil, "the stored certificate is unreadable"
	}
	leaf, err := b.Leaf()
	if err != nil || len(b.PrivateKey) == 0 {
		return nil, nil, "the stored certificate is unusable"
	}
	for _, d := range set.Domains {
		if ip := net.ParseIP(d); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return nil, nil, "the stored certificate does not cover " + d
			}
		} else if !slices.Contains(leaf.DNSNames, d) {
			return nil, nil, "the stored certificate does not cover " + d
		}
	}
	return b, leaf, ""
}

// served asks the target what it serves for set: its Inspector, else a
// TLS look at verify.address, else the record of the last deploy.
func (r *Runner) served(ctx context.Context, t *target, set certmgr.Set) (*big.Int, error) {
	if in, ok := t.impl.(Inspector); ok {
		s, err := in.Serving(ctx, set.Name)
		if err != nil {
			return nil, fmt.Errorf("read what the target serves: %w", err)
		}
		return s, nil
	}
	if t.verify != nil {
		sni := t.verify.ServerName
		if sni == "" {
			sni = probe.ServerName(set.Domains)
		}
		leaf, err := probe.Leaf(ctx, t.verify.Address, sni)
		if err != nil {
			return nil, fmt.Errorf("TLS check of %s (SNI %q): %w", t.verify.Address, sni, err)
		}
		return leaf.SerialNumber, nil
	}
	return r.state.served(t.name, set.Name)
}

// orderDomains tells the target's challenge providers every name of the
// order they answer for (certbot's CERTBOT_ALL_DOMAINS), whoever orders.
type orderDomains struct{ certmgr.Issuer }

func (o orderDomains) Obtain(ctx context.Context, req acmeclient.ObtainRequest) (*acmeclient.Certificate, error) {
	return o.Issuer.Obtain(order.With(ctx, req.Domains), req)
}

func (o orderDomains) Renew(ctx context.Context, req acmeclient.RenewRequest) (*acmeclient.Certificate, error) {
	return o.Issuer.Renew(order.With(ctx, req.Domains), req)
}

// lazyListener is zoku's own HTTP-01 listener of a target, bound at the
// first challenge (New does no network I/O) and shared by the targets on
// the same address.
type lazyListener struct {
	r    *Runner
	addr string
}

func (l *lazyListener) Present(ctx context.Context, domain, token, keyAuth string) error {
	sol, err := l.r.listenerFor(l.addr)
	if err != nil {
		return err
	}
	return sol.Present(ctx, domain, token, keyAuth)
}

func (l *lazyListener) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	sol, err := l.r.listenerFor(l.addr)
	if err != nil {
		return err
	}
	return sol.CleanUp(ctx, domain, token, keyAuth)
}

// Sets are the certificates the targets need, each with its target's
// issuer: `zoku run` hands them to the manager, which keeps them fresh.
// A name two targets need goes to the first by name.
func (r *Runner) Sets() []certmgr.Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []certmgr.Set
	for _, name := range slices.Sorted(maps.Keys(r.targets)) {
		for _, s := range r.targets[name].sets {
			if seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			out = append(out, s)
		}
	}
	return out
}

// OnEvent wakes the targets that need a certificate that was obtained,
// renewed, or stored by another process: they deploy it at once.
func (r *Runner) OnEvent(ev certmgr.Event) {
	switch ev.Kind {
	case certmgr.EventObtained, certmgr.EventRenewed, certmgr.EventLoaded:
	default:
		return
	}
	r.mu.Lock()
	woke := false
	for _, t := range r.targets {
		if slices.Contains(t.certNames(), ev.Name) {
			t.next, woke = time.Time{}, true
		}
	}
	r.mu.Unlock()
	if woke {
		r.Kick()
	}
}
