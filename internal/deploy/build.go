package deploy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
	"github.com/zoku/zoku/internal/deploy/kind"
)

// build turns one configured target of cfg into a runnable one, with the
// constructor its kind registered. The config has been validated; errors
// here are about things only building finds.
func (r *Runner) build(cfg *config.Config, name string) (*target, error) {
	ct := cfg.Targets[name]
	t := &target{name: name, typ: ct.Type, jitter: rand.Float64()}
	env := kind.Env{
		Name: name, Store: r.store, AccountID: r.opts.AccountID, AccountEmail: r.opts.AccountEmail, Server: r.opts.Server,
		Verify: kind.Verify{Timeout: config.DefaultVerifyTimeout}, Output: r.opts.Output, Logger: r.opts.Logger,
	}
	for _, ds := range ct.Certificates {
		names, err := acmeclient.NormalizeDomains(append([]string{ds.Main}, ds.SANs...), ct.Challenge.DNS)
		if err != nil {
			return nil, err
		}
		t.sets = append(t.sets, certmgr.Set{Name: names[0], Domains: names})
		env.Certificates = append(env.Certificates, names)
	}
	t.status = TargetStatus{Name: name, Type: ct.Type, Certificates: t.certNames()}
	if v := ct.Verify; v != nil {
		env.Verify = kind.Verify{Address: v.Address, ServerName: v.ServerName, Timeout: v.Timeout.D()}
		t.verify = &probe.Spec{Address: v.Address, ServerName: v.ServerName, Timeout: v.Timeout.D()}
	}
	newTarget, ok := kind.Lookup(ct.Type)
	if !ok {
		return nil, fmt.Errorf("type %q is not built into this program", ct.Type)
	}
	var err error
	if t.impl, err = newTarget(env, ct); err != nil {
		return nil, err
	}

	ch := ct.Challenge
	if !ch.SkipSelfCheck && !ch.DNS {
		t.selfCheck = &selfCheck{address: selfCheckAddress(cfg, ch), log: r.log.With("target", name)}
	}
	switch {
	case ch.DNS:
		t.kind = kindDNS
	case ch.Listen != "":
		t.kind, t.listen = kindListen, ch.Listen
	case ch.Webroot != "":
		t.kind = kindWebroot
		t.provider = t.wrap(&webroot{dir: ch.Webroot})
	case ch.Exec != nil:
		t.kind = kindExec
		t.provider = t.wrap(&hookPair{PresentCommand: ch.Exec.Present, CleanupCommand: ch.Exec.Cleanup, Timeout: ch.Exec.Timeout.D(), Output: r.opts.Output})
	default:
		resp, ok := t.impl.(Responder)
		if !ok {
			return nil, fmt.Errorf("a %s target cannot answer HTTP-01 itself; set challenge.listen, webroot, exec or dns", ct.Type)
		}
		t.kind = kindResponder
		t.provider = t.wrap(resp.HTTP01Provider())
	}
	var solvers acmeclient.Solvers
	switch t.kind {
	case kindDNS:
		if r.opts.DNS == nil || r.opts.DNS.DNS01 == nil {
			return nil, errors.New("challenge.dns needs certificates.acme.challenges.dns")
		}
		solvers.DNS01, solvers.DNSOptions = r.opts.DNS.DNS01, r.opts.DNS.DNSOptions
	case kindListen:
		solvers.HTTP01 = t.wrap(&lazyListener{r: r, addr: t.listen})
	default:
		solvers.HTTP01 = t.provider
	}
	t.issuer = orderDomains{r.opts.NewIssuer(name, solvers)}
	for i := range t.sets {
		t.sets[i].Issuers = []certmgr.Issuer{t.issuer}
	}
	return t, nil
}

// selfCheckAddress is where the self-check fetches the answer: the
// configured address, else, with the embedded CA, where that CA connects
// (its resolver sends every name to 127.0.0.1, on the port it validates
// HTTP-01 on); else "" (each name on port 80).
func selfCheckAddress(cfg *config.Config, ch config.TargetChallenge) string {
	if ch.SelfCheckAddress != "" || cfg.Certificates.ACME.Server != "embedded" {
		return ch.SelfCheckAddress
	}
	port, _ := cfg.EmbeddedPorts()
	if port == 0 {
		port = 80
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
