package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Defaults of the keys every target has (docs/targets.md lists them).
const (
	// DefaultExecTimeout bounds each challenge.exec hook (and an exec
	// target's command).
	DefaultExecTimeout = 2 * time.Minute
	// DefaultVerifyTimeout bounds the wait in verify.
	DefaultVerifyTimeout = 30 * time.Second
)

// Target is a load balancer without ACME that zoku deploys certificates
// to (`zoku deploy`, and `zoku run` on the renewal schedule): the keys
// every target has, and in Settings the section of its type.
type Target struct {
	// Type names the kind: netscaler, haproxy, nginx, exec, or any other
	// registered one (TargetKinds).
	Type string `yaml:"type" toml:"type" json:"type"`
	// Certificates this target needs, each a main name and more SANs. zoku
	// orders them itself (with Challenge), so they must not also be in
	// certificates.domains. A kind may limit their number.
	Certificates []DomainSet `yaml:"certificates" toml:"certificates" json:"certificates"`
	// Challenge says how the CA's HTTP-01 requests reach zoku's answer.
	// For a kind that answers itself (netscaler: a responder policy on the
	// appliance) that is the default.
	Challenge TargetChallenge `yaml:"challenge" toml:"challenge" json:"challenge"`
	// Verify checks over TLS that the new certificate is served.
	Verify *TargetVerify `yaml:"verify" toml:"verify" json:"verify,omitempty"`

	// Settings is the section named by Type (targets.<name>.<type>), a
	// pointer to the struct its kind registered (RegisterTargetKind); set
	// by Load. The file writes it under the type's name, and so do YAML
	// and the JSON encoding.
	Settings any `yaml:"-" toml:"-" json:"-"`

	// sections are the kinds' sections the file has, by kind name; only
	// the one named by Type may be set.
	sections map[string]any
}

// TargetChallenge is how one target's HTTP-01 challenges are answered; set
// exactly one of Responder, Listen, Webroot, Exec and DNS.
type TargetChallenge struct {
	// Responder lets the target answer itself (a NetScaler responder
	// policy); only kinds registered as responders allow it, and it is
	// their default.
	Responder bool `yaml:"responder" toml:"responder" json:"responder,omitempty"`
	// Listen is host:port of zoku's own HTTP-01 listener; the load
	// balancer forwards /.well-known/acme-challenge/ to it.
	Listen string `yaml:"listen" toml:"listen" json:"listen,omitempty"`
	// Webroot is a folder the web server serves; zoku writes the answer to
	// <webroot>/.well-known/acme-challenge/<token> and removes it after.
	Webroot string `yaml:"webroot" toml:"webroot" json:"webroot,omitempty"`
	// Exec runs commands that put the answer in place and remove it, with
	// certbot's manual-hook variables.
	Exec *ChallengeExec `yaml:"exec" toml:"exec" json:"exec,omitempty"`
	// DNS uses DNS-01 with certificates.acme.challenges.dns (required for
	// wildcards).
	DNS bool `yaml:"dns" toml:"dns" json:"dns,omitempty"`
	// SelfCheckAddress is the host:port zoku fetches the answer from before
	// it tells the CA (the HTTP virtual server); default: each name on
	// port 80.
	SelfCheckAddress string `yaml:"selfCheckAddress" toml:"selfCheckAddress" json:"selfCheckAddress,omitempty"`
	// SkipSelfCheck tells the CA without fetching the answer first.
	SkipSelfCheck bool `yaml:"skipSelfCheck" toml:"skipSelfCheck" json:"skipSelfCheck,omitempty"`
}

// ChallengeExec is a certbot-style manual hook pair (run with /bin/sh -c).
type ChallengeExec struct {
	Present string   `yaml:"present" toml:"present" json:"present"`
	Cleanup string   `yaml:"cleanup" toml:"cleanup" json:"cleanup"`
	Timeout Duration `yaml:"timeout" toml:"timeout" json:"timeout"` // default 2m
}

// TargetVerify is the TLS check after a deploy: a handshake with SNI whose
// leaf must be the new certificate.
type TargetVerify struct {
	// Address is host:port of the TLS listener (the SSL virtual server).
	Address string `yaml:"address" toml:"address" json:"address"`
	// ServerName is the SNI; default: the certificate's main name.
	ServerName string `yaml:"serverName" toml:"serverName" json:"serverName,omitempty"`
	// Timeout bounds the wait for the new certificate; default 30s.
	Timeout Duration `yaml:"timeout" toml:"timeout" json:"timeout"`
}

// targetNameChar is a character a target name may hold (NetScaler's
// object-name characters, so a name can become part of any appliance's).
func targetNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func validTargetName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !targetNameChar(s[i]) {
			return false
		}
	}
	return true
}

// applyTargetDefaults fills the targets' defaults: the common keys here,
// the section by its kind (targetkinds.go).
func (c *Config) applyTargetDefaults() {
	for _, t := range c.Targets {
		if t == nil {
			continue
		}
		t.Type = strings.ToLower(strings.TrimSpace(t.Type))
		for i := range t.Certificates {
			ds := &t.Certificates[i]
			ds.Main = normName(ds.Main)
			for j := range ds.SANs {
				ds.SANs[j] = normName(ds.SANs[j])
			}
		}
		if e := t.Challenge.Exec; e != nil {
			setDur(&e.Timeout, DefaultExecTimeout)
		}
		if v := t.Verify; v != nil {
			setDur(&v.Timeout, DefaultVerifyTimeout)
		}
		t.applyKindDefaults()
	}
}

// validateTargets checks the targets.
func (c *Config) validateTargets() error {
	if len(c.Targets) == 0 {
		return nil
	}
	if c.Certificates.ACME.Server == "" {
		return c.errAt("certificates.acme.server", "certificates.acme.server is not set but targets need certificates; set it to letsencrypt, letsencrypt-staging or a directory URL")
	}
	engine := map[string]bool{}
	for _, ds := range c.Certificates.Domains {
		for _, n := range append([]string{ds.Main}, ds.SANs...) {
			engine[n] = true
		}
	}
	if c.Certificates.OnHostRule {
		for _, h := range c.RoutedHosts() {
			engine[h] = true
		}
	}
	owner := map[string]string{} // certificate main name -> domains, across targets
	for _, name := range sortedKeys(c.Targets) {
		if err := c.validateTarget(name, c.Targets[name], engine, owner); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateTarget(name string, t *Target, engine map[string]bool, owner map[string]string) error {
	p := "targets." + name
	if !validTargetName(name) {
		return c.errAt(p, "target name %q may hold only letters, digits, '_', '.' and '-'; rename it", name)
	}
	types := strings.Join(TargetKinds(), ", ")
	if t == nil {
		return c.errAt(p, "%s is empty; give it a type (%s) and certificates", p, types)
	}
	if t.Type == "" {
		return c.errAt(p, "%s has no type; set type to one of %s", p, types)
	}
	k, err := c.targetKind(p, t)
	if err != nil {
		return err
	}
	if len(t.Certificates) == 0 {
		return c.errAt(p, "%s has no certificates; add certificates: [{main: www.example.com}]", p)
	}
	if err := c.validateTargetCerts(p, t, engine, owner); err != nil {
		return err
	}
	if err := c.validateTargetChallenge(p, t, k); err != nil {
		return err
	}
	if v := t.Verify; v != nil {
		if _, err := splitAddress(v.Address); err != nil || v.Address == "" {
			return c.errAt(p+".verify.address", "%s.verify.address %q is not host:port; write the TLS listener, e.g. 127.0.0.1:443", p, v.Address)
		}
		if v.ServerName != "" && !validHostname(v.ServerName, false) {
			return c.errAt(p+".verify.serverName", "%s.verify.serverName %q is not a host name", p, v.ServerName)
		}
	}
	return c.validateSection(p, k, t)
}
func (c *Config) validateTargetCerts(p string, t *Target, engine map[string]bool, owner map[string]string) error {
	seen := map[string]bool{}
	for i, ds := range t.Certificates {
		cp := fmt.Sprintf("%s.certificates[%d]", p, i)
		if ds.Main == "" {
			return c.errAt(cp, "%s has no main name; add main: www.example.com", cp)
		}
		for j, n := range append([]string{ds.Main}, ds.SANs...) {
			np := cp + ".main"
			if j > 0 {
				np = fmt.Sprintf("%s.sans[%d]", cp, j-1)
			}
			if net.ParseIP(n) == nil && (!validHostname(n, true) || !strings.Contains(strings.TrimPrefix(n, "*."), ".")) {
				return c.errAt(np, "%s %q is not a domain name; write e.g. www.example.com", np, n)
			}
			if strings.HasPrefix(n, "*.") && !t.Challenge.DNS {
				return c.errAt(np, "%s %q is a wildcard, which only DNS-01 can validate; set %s.challenge.dns: true", np, n, p)
			}
			if engine[n] {
				return c.errAt(np, "%s %q is also in certificates.domains; a name is ordered either by the router or by a target, so remove it from one of them", np, n)
			}
			if seen[n] {
				return c.errAt(np, "%s %q is listed twice in %s", np, n, p)
			}
			seen[n] = true
		}
		all := strings.Join(append([]string{ds.Main}, ds.SANs...), ",")
		if prev, ok := owner[ds.Main]; ok && prev != all {
			return c.errAt(cp, "%s %q is listed by another target with other names (%s); list the same names everywhere it is used", cp, ds.Main, prev)
		}
		owner[ds.Main] = all
	}
	return nil
}

func (c *Config) validateTargetChallenge(p string, t *Target, k TargetKind) error {
	ch := &t.Challenge
	cp := p + ".challenge"
	var set []string
	for _, s := range []struct {
		on   bool
		name string
	}{{ch.Responder, "responder"}, {ch.Listen != "", "listen"}, {ch.Webroot != "", "webroot"}, {ch.Exec != nil, "exec"}, {ch.DNS, "dns"}} {
		if s.on {
			set = append(set, s.name)
		}
	}
	switch {
	case len(set) == 0:
		return c.errAt(cp, "%s says nothing about HTTP-01; set one of listen (zoku's listener behind the load balancer), webroot, exec or dns", cp)
	case len(set) > 1:
		return c.errAt(cp, "%s sets %s; choose exactly one", cp, strings.Join(set, " and "))
	}
	if ch.Responder && !k.Responder {
		return c.errAt(cp+".responder", "%s.responder is for %s; use listen, webroot, exec or dns", cp, responderKinds())
	}
	if ch.Listen != "" {
		if _, err := splitAddress(ch.Listen); err != nil {
			return c.errAt(cp+".listen", "%s.listen %q: %v; write host:port, e.g. 127.0.0.1:8888", cp, ch.Listen, err)
		}
	}
	if e := ch.Exec; e != nil && (strings.TrimSpace(e.Present) == "" || strings.TrimSpace(e.Cleanup) == "") {
		return c.errAt(cp+".exec", "%s.exec needs both present and cleanup commands", cp)
	}
	if ch.DNS && c.Certificates.ACME.Challenges.DNS == nil {
		return c.errAt(cp+".dns", "%s.dns needs certificates.acme.challenges.dns (the DNS provider); add it", cp)
	}
	if a := ch.SelfCheckAddress; a != "" {
		if _, err := splitAddress(a); err != nil {
			return c.errAt(cp+".selfCheckAddress", "%s.selfCheckAddress %q: %v; write the HTTP virtual server's host:port, e.g. 192.0.2.20:80", cp, a, err)
		}
	}
	return nil
}
