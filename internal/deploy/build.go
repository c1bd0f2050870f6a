package deploy

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy/exec"
	"github.com/zoku/zoku/internal/deploy/haproxy"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
	"github.com/zoku/zoku/internal/deploy/netscaler"
	"github.com/zoku/zoku/internal/deploy/nginx"
)

// build turns one configured target into a runnable one. The config has
// been validated; errors here are about things only building finds.
func (r *Runner) build(name string, ct *config.Target) (*target, error) {
	t := &target{name: name, typ: ct.Type, jitter: rand.Float64()}
	for _, ds := range ct.Certificates {
		names, err := acmeclient.NormalizeDomains(append([]string{ds.Main}, ds.SANs...), ct.Challenge.DNS)
		if err != nil {
			return nil, err
		}
		t.sets = append(t.sets, certmgr.Set{Name: names[0], Domains: names})
	}
	t.status = TargetStatus{Name: name, Type: ct.Type, Certificates: t.certNames()}
	var vAddr, vName string
	var vTimeout = config.DefaultVerifyTimeout
	if v := ct.Verify; v != nil {
		vAddr, vName, vTimeout = v.Address, v.ServerName, v.Timeout.D()
		t.verify = &probe.Spec{Address: v.Address, ServerName: v.ServerName, Timeout: vTimeout}
	}
	log := r.opts.Logger
	var err error
	switch ct.Type {
	case config.TargetNetScaler:
		n := ct.NetScaler
		var fp []byte
		if n.Fingerprint != "" {
			if fp, err = config.ParseFingerprint(n.Fingerprint); err != nil {
				return nil, err
			}
		}
		if vName == "" && len(t.sets) > 0 {
			vName = probe.ServerName(t.sets[0].Domains)
		}
		save := n.Save == nil || *n.Save
		t.impl, err = netscaler.New(netscaler.Options{
			Name: name, URL: n.URL, Username: n.Username, Password: string(n.Password), HeaderAuth: n.Auth == "header",
			CAFile: n.CAFile, Fingerprint: fp, ServerName: n.ServerName, Insecure: n.Insecure,
			HTTPVserver: n.HTTPVserver, HTTPVserverType: n.HTTPVserverType, SSLVserver: n.SSLVserver,
			CertKey: n.CertKey, SNI: n.SNI, RedirectPolicy: n.RedirectPolicy, Priority: n.Priority, Save: save,
			Timeout: n.Timeout.D(), VerifyAddress: vAddr, VerifyServerName: vName, VerifyTimeout: vTimeout, Logger: log,
		})
	case config.TargetHAProxy:
		h := ct.HAProxy
		t.impl, err = haproxy.New(haproxy.Options{
			Name: name, Socket: h.Socket, MasterCLI: h.MasterCLI, CrtDir: h.CrtDir, CrtList: h.CrtList, LockFile: h.LockFile,
			VerifyAddress: vAddr, VerifyServerName: vName, VerifyTimeout: vTimeout, Logger: log,
		})
	case config.TargetNginx:
		n := ct.Nginx
		t.impl, err = nginx.New(nginx.Options{
			Name: name, CertFile: n.CertFile, KeyFile: n.KeyFile, TestCommand: n.TestCommand, ReloadCommand: n.ReloadCommand,
			PIDFile: n.PIDFile, Timeout: n.Timeout.D(), VerifyAddress: vAddr, VerifyServerName: vName, VerifyTimeout: vTimeout, Logger: log,
		})
	case config.TargetExec:
		t.impl, err = exec.New(exec.Options{
			Name: name, Command: ct.Exec.Command, Timeout: ct.Exec.Timeout.D(), Store: r.store,
			AccountID: r.opts.AccountID, AccountEmail: r.opts.AccountEmail, Server: r.opts.Server,
			VerifyAddress: vAddr, VerifyServerName: vName, VerifyTimeout: vTimeout, Output: r.opts.Output, Logger: log,
		})
	default:
		return nil, fmt.Errorf("unknown type %q", ct.Type)
	}
	if err != nil {
		return nil, err
	}

	ch := ct.Challenge
	if !ch.SkipSelfCheck && !ch.DNS {
		t.selfCheck = &selfCheck{address: ch.SelfCheckAddress, log: r.log.With("target", name)}
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
		t.provider = t.wrap(&exec.Challenge{PresentCommand: ch.Exec.Present, CleanupCommand: ch.Exec.Cleanup, Timeout: ch.Exec.Timeout.D(), Output: r.opts.Output})
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
