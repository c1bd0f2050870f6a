package netscaler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/deploy/netscaler/internal/nitro"
)

// objPrefix starts the name of every responder object zoku creates, so
// leftovers of a crashed run are recognisable.
const objPrefix = "zoku_acme_"

var _ challenge.Provider = (*responder)(nil)

// binding is one challenge's objects on the appliance.
type binding struct {
	action, policy string
	priority       int
}

// responder answers HTTP-01 with a responder action and policy per token.
type responder struct {
	t        *Target
	mu       sync.Mutex
	inflight map[string]binding // guarded by mu; by policy name
}

// objectNames derives short, URL-safe names from the token (the token
// itself is not in them).
func objectNames(token string) (act, pol string) {
	sum := sha256.Sum256([]byte(token))
	h := hex.EncodeToString(sum[:5])
	return objPrefix + "a_" + h, objPrefix + "p_" + h
}

// respondWith is the action's target: the whole raw HTTP response as one
// expression literal. The \r\n are escapes inside the literal (backslash,
// r), not CR bytes; encoding/json doubles the backslashes on the wire.
func respondWith(keyAuth string) string {
	return `"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ` + strconv.Itoa(len(keyAuth)) +
		`\r\nConnection: close\r\n\r\n` + keyAuth + `"`
}

func (r *responder) checkFeature(ctx context.Context) error {
	var f map[string]any
	if err := r.t.nc.Get(ctx, "nsfeature", "", "", &f); err != nil {
		return fmt.Errorf("netscaler: read the enabled features: %w", err)
	}
	if v, ok := f["responder"]; ok && fmt.Sprint(v) != "true" {
		return errors.New("netscaler: the Responder feature is off; enable it (enable ns feature RESPONDER), zoku answers HTTP-01 with a responder policy")
	}
	return nil
}

// Present creates the action and policy and binds the policy on the HTTP
// vserver ahead of the redirect. On failure it removes what it created.
func (r *responder) Present(ctx context.Context, domain, token, keyAuth string) error {
	t := r.t
	act, pol := objectNames(token)
	if err := r.checkFeature(ctx); err != nil {
		return err
	}
	rule := `HTTP.REQ.URL.EQ("/.well-known/acme-challenge/` + token + `")`
	if err := r.create(ctx, act, pol, respondWith(keyAuth), rule); err != nil {
		return fmt.Errorf("netscaler: %w", err)
	}
	prio, err := r.bind(ctx, pol)
	if err != nil {
		if cerr := r.remove(ctx, binding{action: act, policy: pol}); cerr != nil {
			t.log.Warn("challenge objects not removed", "policy", pol, "error", cerr)
		}
		return fmt.Errorf("netscaler: %w", err)
	}
	r.mu.Lock()
	r.inflight[pol] = binding{action: act, policy: pol, priority: prio}
	r.mu.Unlock()
	t.log.Info("challenge policy bound", "domain", domain, "vserver", t.opts.HTTPVserver, "policy", pol, "priority", prio)
	return nil
}

// CleanUp unbinds the policy, then deletes it, then the action; each step
// treats "not there" as done.
func (r *responder) CleanUp(ctx context.Context, _, token, _ string) error {
	act, pol := objectNames(token)
	r.mu.Lock()
	b, ok := r.inflight[pol]
	delete(r.inflight, pol)
	r.mu.Unlock()
	if !ok {
		b = binding{action: act, policy: pol}
	}
	if err := r.remove(ctx, b); err != nil {
		return fmt.Errorf("netscaler: remove challenge policy %s: %w", pol, err)
	}
	r.t.log.Debug("challenge policy removed", "policy", pol)
	return nil
}

func (r *responder) create(ctx context.Context, act, pol, target, rule string) error {
	add := func() error {
		if err := r.t.nc.Add(ctx, "responderaction", map[string]any{"name": act, "type": "respondwith", "target": target}); err != nil {
			return fmt.Errorf("add responder action %s: %w", act, err)
		}
		if err := r.t.nc.Add(ctx, "responderpolicy", map[string]any{"name": pol, "rule": rule, "action": act}); err != nil {
			if derr := r.t.nc.Delete(context.WithoutCancel(ctx), "responderaction", act, ""); derr != nil && !nitro.NotFound(derr) {
				r.t.log.Warn("responder action not removed", "action", act, "error", derr)
			}
			return fmt.Errorf("add responder policy %s: %w", pol, err)
		}
		return nil
	}
	err := add()
	if nitro.HasCode(err, nitro.CodeAlreadyExists) {
		// Objects of an earlier attempt for the same token: replace them.
		r.t.log.Info("removing challenge objects left from an earlier attempt", "policy", pol)
		if rerr := r.remove(ctx, binding{action: act, policy: pol}); rerr != nil {
			return errors.Join(err, rerr)
		}
		err = add()
	}
	return err
}

type respBinding struct {
	Policy   string    `json:"policyname"`
	Priority nitro.Int `json:"priority"`
}

// bind binds pol at the first free priority ahead of the redirect; a
// priority taken meanwhile (3041) moves on to the next.
func (r *responder) bind(ctx context.Context, pol string) (int, error) {
	t := r.t
	res := t.opts.HTTPVserverType + "vserver_responderpolicy_binding"
	tried := map[int]bool{}
	for attempt := 0; attempt < 8; attempt++ {
		var bs []respBinding
		if err := t.nc.Get(ctx, res, t.opts.HTTPVserver, "", &bs); err != nil {
			if nitro.NotFound(err) {
				return 0, fmt.Errorf("no %s vserver named %q; check netscaler.httpVserver", t.opts.HTTPVserverType, t.opts.HTTPVserver)
			}
			return 0, fmt.Errorf("read the policies of %s: %w", t.opts.HTTPVserver, err)
		}
		r.warnLeftovers(bs, pol)
		prio, err := r.choose(bs, pol, tried)
		if err != nil {
			return 0, err
		}
		err = t.nc.Bind(ctx, res, map[string]any{"name": t.opts.HTTPVserver, "policyname": pol, "priority": prio, "gotopriorityexpression": "END"})
		if nitro.HasCode(err, nitro.CodePriorityInUse) {
			t.log.Info("priority taken meanwhile; trying the next one", "vserver", t.opts.HTTPVserver, "priority", prio)
			tried[prio] = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("bind %s to %s at priority %d: %w", pol, t.opts.HTTPVserver, prio, err)
		}
		return prio, nil
	}
	return 0, fmt.Errorf("bind %s to %s: every priority tried was taken meanwhile", pol, t.opts.HTTPVserver)
}

// choose returns the first free priority at or below the start: the
// configured priority (90), but before the redirect policy (or, without
// one named, before every bound policy), counting down.
func (r *responder) choose(bs []respBinding, pol string, tried map[int]bool) (int, error) {
	o := r.t.opts
	used := map[int]bool{}
	start := o.Priority
	redirect := -1
	lowest := 0
	for _, b := range bs {
		if b.Policy == pol {
			continue
		}
		p := int(b.Priority)
		used[p] = true
		if b.Policy == o.RedirectPolicy {
			redirect = p
		}
		if lowest == 0 || p < lowest {
			lowest = p
		}
	}
	switch {
	case o.RedirectPolicy != "" && redirect < 0:
		return 0, fmt.Errorf("redirect policy %q is not bound to %s; check netscaler.redirectPolicy", o.RedirectPolicy, o.HTTPVserver)
	case o.RedirectPolicy != "":
		start = min(start, redirect-1)
	case lowest > 0:
		start = min(start, lowest-1)
	}
	for p := start; p >= 1; p-- {
		if !used[p] && !tried[p] {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free priority below %d on %s for the challenge policy; free one or lower the redirect policy's number", start+1, o.HTTPVserver)
}

func (r *responder) warnLeftovers(bs []respBinding, pol string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range bs {
		if strings.HasPrefix(b.Policy, objPrefix) && b.Policy != pol {
			if _, mine := r.inflight[b.Policy]; !mine {
				r.t.log.Warn("a challenge policy of another run is bound (another zoku, or a crash); remove it if no zoku is running", "vserver", r.t.opts.HTTPVserver, "policy", b.Policy, "priority", int(b.Priority))
			}
		}
	}
}

// remove deletes b's objects in the only order the appliance allows:
// unbind, policy, action. It runs even when ctx is done.
func (r *responder) remove(ctx context.Context, b binding) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	t := r.t
	res := t.opts.HTTPVserverType + "vserver_responderpolicy_binding"
	args := []string{"policyname", b.policy}
	if b.priority > 0 {
		args = append(args, "priority", strconv.Itoa(b.priority))
	}
	var errs []error
	if err := t.nc.Delete(ctx, res, t.opts.HTTPVserver, nitro.Args(args...)); err != nil && !nitro.NotFound(err) {
		errs = append(errs, fmt.Errorf("unbind: %w", err))
	}
	if err := t.nc.Delete(ctx, "responderpolicy", b.policy, ""); err != nil && !nitro.NotFound(err) {
		errs = append(errs, fmt.Errorf("delete policy: %w", err))
	}
	if err := t.nc.Delete(ctx, "responderaction", b.action, ""); err != nil && !nitro.NotFound(err) {
		errs = append(errs, fmt.Errorf("delete action: %w", err))
	}
	return errors.Join(errs...)
}
