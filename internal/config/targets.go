package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Target types.
const (
	TargetNetScaler = "netscaler"
	TargetHAProxy   = "haproxy"
	TargetNginx     = "nginx"
	TargetExec      = "exec"
)

// Defaults of the targets section (docs/targets.md lists them).
const (
	DefaultNetScalerPriority = 90
	DefaultNetScalerTimeout  = 60 * time.Second
	DefaultHAProxySocket     = "/run/haproxy/admin.sock"
	DefaultHAProxyCrtDir     = "/etc/haproxy/certs"
	DefaultNginxCertFile     = "/etc/nginx/zoku/{name}/fullchain.pem"
	DefaultNginxKeyFile      = "/etc/nginx/zoku/{name}/privkey.pem"
	DefaultNginxVerify       = "127.0.0.1:443"
	DefaultNginxPIDFile      = "/run/nginx.pid"
	DefaultNginxTimeout      = 60 * time.Second
	DefaultExecTimeout       = 2 * time.Minute
	DefaultVerifyTimeout     = 30 * time.Second
)

// Target is a load balancer without ACME that zoku deploys certificates
// to (`zoku deploy`, and `zoku run` on the renewal schedule). Exactly the
// section named by Type is set.
type Target struct {
	// Type: netscaler, haproxy, nginx or exec.
	Type string `yaml:"type" toml:"type" json:"type"`
	// Certificates this target needs, each a main name and more SANs. zoku
	// orders them itself (with Challenge), so they must not also be in
	// certificates.domains. A netscaler target takes exactly one.
	Certificates []DomainSet `yaml:"certificates" toml:"certificates" json:"certificates"`
	// Challenge says how the CA's HTTP-01 requests reach zoku's answer.
	// For netscaler the default is a responder policy on the appliance.
	Challenge TargetChallenge `yaml:"challenge" toml:"challenge" json:"challenge"`
	// Verify checks over TLS that the new certificate is served.
	Verify *TargetVerify `yaml:"verify" toml:"verify" json:"verify,omitempty"`

	NetScaler *NetScalerTarget `yaml:"netscaler" toml:"netscaler" json:"netscaler,omitempty"`
	HAProxy   *HAProxyTarget   `yaml:"haproxy" toml:"haproxy" json:"haproxy,omitempty"`
	Nginx     *NginxTarget     `yaml:"nginx" toml:"nginx" json:"nginx,omitempty"`
	Exec      *ExecTarget      `yaml:"exec" toml:"exec" json:"exec,omitempty"`
}

// TargetChallenge is how one target's HTTP-01 challenges are answered; set
// exactly one of Responder, Listen, Webroot, Exec and DNS.
type TargetChallenge struct {
	// Responder answers with a NetScaler responder action and policy bound
	// on netscaler.httpVserver (netscaler only; its default).
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

// NetScalerTarget is a Citrix ADC / NetScaler driven through NITRO.
type NetScalerTarget struct {
	// URL of the NSIP, https://192.0.2.10.
	URL string `yaml:"url" toml:"url" json:"url"`
	// Username and Password of a NITRO user (${ENV} or file: for the
	// password).
	Username string `yaml:"username" toml:"username" json:"username"`
	Password Secret `yaml:"password" toml:"password" json:"password"`
	// Auth: session (login, cookie; default) or header (X-NITRO-USER/PASS
	// on every request).
	Auth string `yaml:"auth" toml:"auth" json:"auth,omitempty"`
	// CAFile verifies the NSIP's certificate against these CAs.
	CAFile string `yaml:"caFile" toml:"caFile" json:"caFile,omitempty"`
	// Fingerprint pins the NSIP's certificate by its SHA-256 (hex).
	Fingerprint string `yaml:"fingerprint" toml:"fingerprint" json:"fingerprint,omitempty"`
	// ServerName is the name the NSIP's certificate is checked against
	// (it is usually dialled by IP).
	ServerName string `yaml:"serverName" toml:"serverName" json:"serverName,omitempty"`
	// Insecure skips verifying the NSIP's certificate (explicit opt-in).
	Insecure bool `yaml:"insecure" toml:"insecure" json:"insecure,omitempty"`
	// HTTPVserver is the HTTP virtual server the CA reaches on port 80;
	// the responder policy is bound there.
	HTTPVserver string `yaml:"httpVserver" toml:"httpVserver" json:"httpVserver,omitempty"`
	// HTTPVserverType: lb (default) or cs.
	HTTPVserverType string `yaml:"httpVserverType" toml:"httpVserverType" json:"httpVserverType,omitempty"`
	// SSLVserver is the SSL virtual server the certificate is bound to.
	SSLVserver string `yaml:"sslVserver" toml:"sslVserver" json:"sslVserver"`
	// CertKey is the sslcertkey name (the seed's "SSL pair"); default: the
	// certificate's main name made NetScaler-safe.
	CertKey string `yaml:"certKey" toml:"certKey" json:"certKey,omitempty"`
	// SNI binds the certkey as an SNI certificate.
	SNI bool `yaml:"sni" toml:"sni" json:"sni,omitempty"`
	// RedirectPolicy is the HTTP-to-HTTPS responder policy on
	// httpVserver; the challenge policy is bound at a lower number.
	RedirectPolicy string `yaml:"redirectPolicy" toml:"redirectPolicy" json:"redirectPolicy,omitempty"`
	// Priority is where the search for a free priority starts; default 90.
	Priority int `yaml:"priority" toml:"priority" json:"priority,omitempty"`
	// Save runs "save ns config" after a deploy; default true.
	Save *bool `yaml:"save" toml:"save" json:"save,omitempty"`
	// Timeout of each NITRO request; default 60s.
	Timeout Duration `yaml:"timeout" toml:"timeout" json:"timeout"`
}

// HAProxyTarget is an HAProxy updated through its Runtime API.
type HAProxyTarget struct {
	// Socket is the admin socket: a path, or host:port; default
	// /run/haproxy/admin.sock. It needs "level admin".
	Socket string `yaml:"socket" toml:"socket" json:"socket,omitempty"`
	// MasterCLI prefixes commands with "@1 " (master CLI socket).
	MasterCLI bool `yaml:"masterCLI" toml:"masterCLI" json:"masterCLI,omitempty"`
	// CrtDir is where <name>.pem files are written; default
	// /etc/haproxy/certs. The bind line loads it with "crt <dir>/".
	CrtDir string `yaml:"crtDir" toml:"crtDir" json:"crtDir,omitempty"`
	// CrtList is the crt-list file or directory a new certificate is added
	// to; default crtDir.
	CrtList string `yaml:"crtList" toml:"crtList" json:"crtList,omitempty"`
	// LockFile serialises deploys between processes; default
	// <crtDir>/.zoku.lock.
	LockFile string `yaml:"lockFile" toml:"lockFile" json:"lockFile,omitempty"`
}

// NginxTarget is an nginx whose files zoku writes, tests and reloads.
// "{name}" in a path is the certificate's file-safe name.
type NginxTarget struct {
	CertFile string `yaml:"certFile" toml:"certFile" json:"certFile,omitempty"` // full chain
	KeyFile  string `yaml:"keyFile" toml:"keyFile" json:"keyFile,omitempty"`
	// TestCommand checks the config; default [nginx, -t, -q].
	TestCommand []string `yaml:"testCommand" toml:"testCommand" json:"testCommand,omitempty"`
	// ReloadCommand reloads; default [nginx, -s, reload]. An empty list
	// ([]) reloads with SIGHUP to the pidFile's process instead.
	ReloadCommand []string `yaml:"reloadCommand" toml:"reloadCommand" json:"reloadCommand,omitempty"`
	// PIDFile holds the master's pid; default /run/nginx.pid. After a
	// reload zoku waits until the old workers stop taking connections.
	PIDFile string `yaml:"pidFile" toml:"pidFile" json:"pidFile,omitempty"`
	// Timeout of each command; default 60s.
	Timeout Duration `yaml:"timeout" toml:"timeout" json:"timeout"`
}

// ExecTarget runs a command after each new certificate, with the hook
// variables of lego, certbot and acme.sh.
type ExecTarget struct {
	Command string   `yaml:"command" toml:"command" json:"command"`
	Timeout Duration `yaml:"timeout" toml:"timeout" json:"timeout"` // default 2m
}

// NetScalerName makes s a NetScaler object name: letters, digits, '_',
// '.', '-', at most 31 characters (longer names keep a hash of the rest).
func NetScalerName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !nsNameChar(c) {
			b[i] = '_'
		}
	}
	if len(b) <= 31 {
		return string(b)
	}
	sum := sha256.Sum256([]byte(s))
	return string(b[:22]) + "-" + hex.EncodeToString(sum[:4])
}

func nsNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func validNSName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nsNameChar(s[i]) {
			return false
		}
	}
	return true
}

// applyTargetDefaults fills the targets' defaults.
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
		ch := &t.Challenge
		if t.Type == TargetNetScaler && ch.Listen == "" && ch.Webroot == "" && ch.Exec == nil && !ch.DNS {
			ch.Responder = true
		}
		if e := ch.Exec; e != nil {
			setDur(&e.Timeout, DefaultExecTimeout)
		}
		if v := t.Verify; v != nil {
			setDur(&v.Timeout, DefaultVerifyTimeout)
		}
		switch t.Type {
		case TargetNetScaler:
			if t.NetScaler == nil {
				break
			}
			n := t.NetScaler
			setStr(&n.Auth, "session")
			setStr(&n.HTTPVserverType, "lb")
			if n.Priority == 0 {
				n.Priority = DefaultNetScalerPriority
			}
			if n.Save == nil {
				n.Save = new(true)
			}
			setDur(&n.Timeout, DefaultNetScalerTimeout)
			if n.CertKey == "" && len(t.Certificates) > 0 {
				n.CertKey = NetScalerName(t.Certificates[0].Main)
			}
		case TargetHAProxy:
			if t.HAProxy == nil {
				t.HAProxy = &HAProxyTarget{}
			}
			h := t.HAProxy
			setStr(&h.Socket, DefaultHAProxySocket)
			setStr(&h.CrtDir, DefaultHAProxyCrtDir)
			setStr(&h.CrtList, h.CrtDir)
			setStr(&h.LockFile, filepath.Join(h.CrtDir, ".zoku.lock"))
		case TargetNginx:
			if t.Nginx == nil {
				t.Nginx = &NginxTarget{}
			}
			n := t.Nginx
			setStr(&n.CertFile, DefaultNginxCertFile)
			setStr(&n.KeyFile, DefaultNginxKeyFile)
			if len(n.TestCommand) == 0 {
				n.TestCommand = []string{"nginx", "-t", "-q"}
			}
			if n.ReloadCommand == nil {
				n.ReloadCommand = []string{"nginx", "-s", "reload"}
			}
			setStr(&n.PIDFile, DefaultNginxPIDFile)
			setDur(&n.Timeout, DefaultNginxTimeout)
			if t.Verify == nil {
				t.Verify = &TargetVerify{Address: DefaultNginxVerify, Timeout: Duration(DefaultVerifyTimeout)}
			}
		case TargetExec:
			if t.Exec != nil {
				setDur(&t.Exec.Timeout, DefaultExecTimeout)
			}
		}
	}
}

var targetTypes = []string{TargetNetScaler, TargetHAProxy, TargetNginx, TargetExec}

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
	if !validNSName(name) {
		return c.errAt(p, "target name %q may hold only letters, digits, '_', '.' and '-'; rename it", name)
	}
	if t == nil {
		return c.errAt(p, "%s is empty; give it a type (%s) and certificates", p, strings.Join(targetTypes, ", "))
	}
	if t.Type == "" {
		return c.errAt(p, "%s has no type; set type to one of %s", p, strings.Join(targetTypes, ", "))
	}
	if !slices.Contains(targetTypes, t.Type) {
		return c.errAt(p+".type", "%s.type %q is unknown; use one of %s%s", p, t.Type, strings.Join(targetTypes, ", "), didYouMean(t.Type, targetTypes))
	}
	sections := map[string]bool{TargetNetScaler: t.NetScaler != nil, TargetHAProxy: t.HAProxy != nil, TargetNginx: t.Nginx != nil, TargetExec: t.Exec != nil}
	for _, s := range targetTypes {
		if sections[s] && s != t.Type {
			return c.errAt(p+"."+s, "%s.%s is set but the type is %s; remove it or change the type", p, s, t.Type)
		}
	}
	if len(t.Certificates) == 0 {
		return c.errAt(p, "%s has no certificates; add certificates: [{main: www.example.com}]", p)
	}
	if t.Type == TargetNetScaler && len(t.Certificates) > 1 {
		return c.errAt(p+".certificates", "%s has %d certificates; a netscaler target updates one certkey, so add one target per certificate", p, len(t.Certificates))
	}
	if err := c.validateTargetCerts(p, t, engine, owner); err != nil {
		return err
	}
	if err := c.validateTargetChallenge(p, t); err != nil {
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
	switch t.Type {
	case TargetNetScaler:
		return c.validateNetScaler(p, t)
	case TargetHAProxy:
		return c.validateHAProxy(p, t.HAProxy)
	case TargetNginx:
		return c.validateNginx(p, t)
	default:
		if t.Exec == nil || strings.TrimSpace(t.Exec.Command) == "" {
			return c.errAt(p, "%s has no exec.command; add exec: {command: /usr/local/bin/push-cert} (it gets the lego, certbot and acme.sh hook variables)", p)
		}
	}
	return nil
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

func (c *Config) validateTargetChallenge(p string, t *Target) error {
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
	if ch.Responder && t.Type != TargetNetScaler {
		return c.errAt(cp+".responder", "%s.responder is for netscaler targets; use listen, webroot, exec or dns", cp)
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

func (c *Config) validateNetScaler(p string, t *Target) error {
	n := t.NetScaler
	np := p + ".netscaler"
	if n == nil {
		return c.errAt(p, "%s has no netscaler section; add url, username, password, sslVserver (and httpVserver for the responder)", p)
	}
	u, err := url.Parse(n.URL)
	switch {
	case n.URL == "":
		return c.errAt(np, "%s has no url; set it to the NSIP, e.g. https://192.0.2.10", np)
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return c.errAt(np+".url", "%s.url %q is not a URL; write https://<NSIP>", np, n.URL)
	case u.Scheme == "http" && !n.Insecure:
		return c.errAt(np+".url", "%s.url uses http://, which sends the password in clear; use https:// (or set insecure: true for a lab)", np)
	case u.Path != "" && u.Path != "/":
		return c.errAt(np+".url", "%s.url must not have a path; zoku adds /nitro/v1/...", np)
	}
	if n.Username == "" || n.Password == "" {
		return c.errAt(np, "%s needs username and password (write the password as ${ENV} or file:/path)", np)
	}
	if n.Auth != "session" && n.Auth != "header" {
		return c.errAt(np+".auth", "%s.auth %q is unknown; use session or header", np, n.Auth)
	}
	if n.Insecure && (n.CAFile != "" || n.Fingerprint != "") {
		return c.errAt(np+".insecure", "%s.insecure turns verification off, but caFile or fingerprint is set; remove insecure", np)
	}
	if n.CAFile != "" {
		b, err := os.ReadFile(n.CAFile)
		if err != nil {
			return c.errAt(np+".caFile", "%s.caFile: %v; check the path", np, cause(err))
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return c.errAt(np+".caFile", "%s.caFile %s holds no PEM certificate", np, n.CAFile)
		}
	}
	if f := n.Fingerprint; f != "" {
		if _, err := ParseFingerprint(f); err != nil {
			return c.errAt(np+".fingerprint", "%s.fingerprint: %v", np, err)
		}
	}
	if n.ServerName != "" && net.ParseIP(n.ServerName) == nil && !validHostname(n.ServerName, false) {
		return c.errAt(np+".serverName", "%s.serverName %q is not a host name", np, n.ServerName)
	}
	if t.Challenge.Responder && n.HTTPVserver == "" {
		return c.errAt(np, "%s has no httpVserver; name the HTTP virtual server the CA reaches on port 80 (the responder policy is bound there)", np)
	}
	if n.HTTPVserverType != "lb" && n.HTTPVserverType != "cs" {
		return c.errAt(np+".httpVserverType", "%s.httpVserverType %q is unknown; use lb or cs", np, n.HTTPVserverType)
	}
	if n.SSLVserver == "" {
		return c.errAt(np, "%s has no sslVserver; name the SSL virtual server the certificate is bound to", np)
	}
	for _, f := range []struct{ key, val string }{{"httpVserver", n.HTTPVserver}, {"sslVserver", n.SSLVserver}, {"certKey", n.CertKey}, {"redirectPolicy", n.RedirectPolicy}} {
		if f.val != "" && !validNSName(f.val) {
			return c.errAt(np+"."+f.key, "%s.%s %q may hold only letters, digits, '_', '.' and '-'", np, f.key, f.val)
		}
	}
	if len(n.CertKey) > 31 {
		return c.errAt(np+".certKey", "%s.certKey %q is longer than 31 characters, NetScaler's limit", np, n.CertKey)
	}
	if n.Priority < 2 || n.Priority > 2147483647 {
		return c.errAt(np+".priority", "%s.priority %d is out of range; use 2 to 2147483647 (default 90)", np, n.Priority)
	}
	return nil
}

// ParseFingerprint reads a SHA-256 fingerprint written as 64 hex digits,
// with or without ':' or spaces between bytes.
func ParseFingerprint(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%q is not a SHA-256 fingerprint; write 64 hex digits (openssl x509 -noout -fingerprint -sha256)", s)
	}
	return b, nil
}

func (c *Config) validateHAProxy(p string, h *HAProxyTarget) error {
	hp := p + ".haproxy"
	if !strings.HasPrefix(h.Socket, "/") {
		if _, err := splitAddress(h.Socket); err != nil {
			return c.errAt(hp+".socket", "%s.socket %q is neither an absolute path nor host:port", hp, h.Socket)
		}
	}
	if !filepath.IsAbs(h.CrtDir) {
		return c.errAt(hp+".crtDir", "%s.crtDir %q must be an absolute path: HAProxy names certificates by the path in its config", hp, h.CrtDir)
	}
	if !filepath.IsAbs(strings.TrimSuffix(h.CrtList, "/")) {
		return c.errAt(hp+".crtList", "%s.crtList %q must be an absolute path", hp, h.CrtList)
	}
	return nil
}

func (c *Config) validateNginx(p string, t *Target) error {
	n := t.Nginx
	np := p + ".nginx"
	if n.CertFile == n.KeyFile {
		return c.errAt(np, "%s.certFile and keyFile are the same file; give them different paths", np)
	}
	if len(t.Certificates) > 1 && (!strings.Contains(n.CertFile, "{name}") || !strings.Contains(n.KeyFile, "{name}")) {
		return c.errAt(np, "%s serves %d certificates; put {name} in certFile and keyFile so each gets its own files", np, len(t.Certificates))
	}
	if len(n.TestCommand) == 0 || n.TestCommand[0] == "" {
		return c.errAt(np+".testCommand", "%s.testCommand is empty; the default is [nginx, -t, -q]", np)
	}
	return nil
}
