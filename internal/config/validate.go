package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Validate checks the whole Config and returns the first problem as an
// *Error naming the key path and, when Load or Parse runs it, the line. Checks run
// in a fixed order (entry points, certificates, middlewares, routes,
// services, logs; names sorted), so the same file always gives the same error. It reads the
// user certificate files (certificates.files) to check that each key
// matches its certificate.
func (c *Config) Validate() error {
	if len(c.EntryPoints) == 0 && len(c.Targets) == 0 {
		return c.errAt("entryPoints", "no entry points; add one, e.g. entryPoints: {web: {address: \":80\"}}")
	}
	for _, name := range sortedKeys(c.EntryPoints) {
		if err := c.validateEntryPoint(name, c.EntryPoints[name]); err != nil {
			return err
		}
	}
	if err := c.validateCertificates(); err != nil {
		return err
	}
	if err := c.validateMiddlewares(); err != nil { // validate_middlewares.go
		return err
	}
	routes := sortedKeys(c.Routes) // once: 100,000 routes take a while to sort
	for _, name := range routes {
		if err := c.validateRoute(name, c.Routes[name]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(c.Services) {
		if err := c.validateService(name, c.Services[name]); err != nil {
			return err
		}
	}
	if err := c.validateServiceGraph(); err != nil { // servicekinds.go
		return err
	}
	if err := c.validateL4(routes); err != nil { // l4validate.go
		return err
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if err := c.validateTargets(); err != nil {
		return err
	}
	if err := c.validateStorage(); err != nil {
		return err
	}
	if err := c.validateKubernetes(); err != nil {
		return err
	}
	if f := c.Log.Format; f != "" && f != "text" && f != "json" {
		return c.errAt("log.format", "log.format %q is unknown; use text or json", f)
	}
	if l := c.Log.Level; l != "" && !slices.Contains([]string{"debug", "info", "warn", "error"}, l) {
		return c.errAt("log.level", "log.level %q is unknown; use debug, info, warn or error", l)
	}
	return nil
}

// errAt makes an *Error at the line of path, or of its nearest parent
// that is in the file.
func (c *Config) errAt(path, format string, args ...any) *Error {
	e := &Error{File: c.Source, Path: path, Reason: fmt.Sprintf(format, clipArgs(args)...)}
	if p, ok := c.lookup(path); ok {
		e.Line, e.Column = p.line, p.col
	}
	return e
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil // most routes' matcher maps: no iterator to build
	}
	return slices.Sorted(maps.Keys(m))
}

func (c *Config) validateEntryPoint(name string, ep *EntryPoint) error {
	p := "entryPoints." + name
	if ep == nil {
		return c.errAt(p, "%s is empty; give it an address", p)
	}
	if ep.Address == "" {
		return c.errAt(p, "%s has no address; add address: \":80\" (host:port)", p)
	}
	if _, err := splitAddress(ep.Address); err != nil {
		return c.errAt(p+".address", "%s.address %q: %v; write host:port, e.g. \":443\" or \"127.0.0.1:8443\"", p, ep.Address, err)
	}
	if r := ep.Redirect; r != nil {
		rp := p + ".redirect"
		if r.EntryPoint == "" {
			return c.errAt(rp, "%s has no entryPoint; name the TLS entry point to send clients to", rp)
		}
		target, ok := c.EntryPoints[r.EntryPoint]
		if !ok {
			return c.errAt(rp+".entryPoint", "%s.entryPoint: no entry point named %q%s", rp, r.EntryPoint, didYouMean(r.EntryPoint, sortedKeys(c.EntryPoints)))
		}
		if r.EntryPoint == name {
			return c.errAt(rp+".entryPoint", "%s.entryPoint redirects %s to itself; name another entry point", rp, name)
		}
		if target == nil || target.TLS == nil {
			return c.errAt(rp+".entryPoint", "%s.entryPoint: entry point %q has no tls; add tls: {} to it or redirect elsewhere", rp, r.EntryPoint)
		}
		if r.Scheme != "" && r.Scheme != "https" && r.Scheme != "http" {
			return c.errAt(rp+".scheme", "%s.scheme %q is unknown; use https or http", rp, r.Scheme)
		}
	}
	if ep.TLS != nil {
		if _, err := tlsBase(ep.TLS); err != nil {
			return c.errAt(p+".tls."+err.key, "%s.tls.%s", p, err.msg)
		}
	}
	if ep.HSTS != nil {
		if ep.TLS == nil {
			return c.errAt(p+".hsts", "%s.hsts needs tls on the same entry point (browsers ignore HSTS over plain HTTP); remove hsts or add tls", p)
		}
		if ep.HSTS.MaxAge < 0 {
			return c.errAt(p+".hsts.maxAge", "%s.hsts.maxAge must not be negative", p)
		}
	}
	for i, tp := range ep.TrustedProxies {
		if _, err := netip.ParsePrefix(tp); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(tp); err != nil {
			return c.errAt(fmt.Sprintf("%s.trustedProxies[%d]", p, i), "%s.trustedProxies[%d] %q is not an IP or CIDR; write e.g. 10.0.0.0/8 or 192.0.2.1", p, i, tp)
		}
	}
	for _, t := range []struct {
		key string
		d   Duration
	}{{"readHeader", ep.Timeouts.ReadHeader}, {"read", ep.Timeouts.Read}, {"write", ep.Timeouts.Write}, {"idle", ep.Timeouts.Idle}, {"shutdown", ep.Timeouts.Shutdown}} {
		if t.d < 0 {
			return c.errAt(p+".timeouts."+t.key, "%s.timeouts.%s must not be negative", p, t.key)
		}
	}
	if ep.MaxHeaderBytes < 0 {
		return c.errAt(p+".maxHeaderBytes", "%s.maxHeaderBytes must not be negative", p)
	}
	if ep.MaxBodyBytes < 0 {
		return c.errAt(p+".maxBodyBytes", "%s.maxBodyBytes must not be negative; 0 means unlimited", p)
	}
	return nil
}

// splitAddress checks host:port and returns the port (0 lets the system
// choose, which tests use).
func splitAddress(addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("not host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host, false) {
		return 0, fmt.Errorf("host %q is not an IP address or a host name", host)
	}
	return n, nil
}

func didYouMean(s string, names []string) string {
	if m := closest(s, names); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	if len(names) == 0 {
		return "; there are none"
	}
	const shown = 10
	if len(names) > shown {
		return fmt.Sprintf("; known: %s and %d more", strings.Join(clipArgsStrings(names[:shown]), ", "), len(names)-shown)
	}
	return "; known: " + strings.Join(clipArgsStrings(names), ", ")
}

// validHostname accepts letters, digits and hyphens in dot-separated
// labels of 1-63 characters; with wildcard, a leading "*." label too.
// Names must be ASCII: applyDefaults has turned internationalised names
// into their xn-- form (see normName); one still not ASCII is not valid
// IDNA.
func validHostname(h string, wildcard bool) bool {
	if wildcard {
		h = strings.TrimPrefix(h, "*.")
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

var keyTypes = []string{"ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"}

func (c *Config) acmeNeeded() bool {
	return len(c.Certificates.Domains) > 0 || c.Certificates.OnHostRule || c.Certificates.OnDemand != nil
}

func (c *Config) validateCertificates() error {
	cert := &c.Certificates
	a := &cert.ACME
	ch := &a.Challenges
	if a.Server == "" && c.acmeNeeded() {
		return c.errAt("certificates.acme.server", "certificates.acme.server is not set but certificates are to be obtained (domains or onHostRule); set it to letsencrypt, letsencrypt-staging, embedded or a directory URL")
	}
	if a.Server != "" {
		if strings.Contains(a.Server, "://") {
			u, err := url.Parse(a.Server)
			if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				return c.errAt("certificates.acme.server", "certificates.acme.server %q is not a directory URL; write https://ca.example/directory, or letsencrypt, letsencrypt-staging, embedded", a.Server)
			}
		} else if !validHostname(a.Server, false) || strings.Contains(a.Server, ".") {
			return c.errAt("certificates.acme.server", "certificates.acme.server %q is unknown; use letsencrypt, letsencrypt-staging, embedded, a lego CA code or a directory URL", a.Server)
		}
	}
	if od := cert.OnDemand; od != nil {
		if od.Ask == "" && len(od.Allow) == 0 {
			return c.errAt("certificates.onDemand", "certificates.onDemand needs ask or allow: without them anyone could make zoku order certificates for any name")
		}
		if od.Ask != "" {
			if u, err := url.Parse(od.Ask); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return c.errAt("certificates.onDemand.ask", "certificates.onDemand.ask %q is not an http(s) URL", od.Ask)
			}
		}
	}
	for i, is := range cert.Issuers {
		if is.Server == "" {
			return c.errAt(fmt.Sprintf("certificates.issuers[%d].server", i), "certificates.issuers[%d] has no server; give a directory URL or a lego CA code", i)
		}
	}
	if h := cert.Hook; h != nil {
		if strings.TrimSpace(h.Command) == "" {
			return c.errAt("certificates.hook.command", "certificates.hook.command is empty")
		}
		for _, e := range h.Events {
			if !slices.Contains([]string{"obtained", "renewed", "failed", "revoked-by-ari"}, e) {
				return c.errAt("certificates.hook.events", "certificates.hook.events: %q is not an event; use obtained, renewed, failed or revoked-by-ari", e)
			}
		}
	}
	for i, d := range cert.Domains {
		if d.KeyType != "" && !slices.Contains(keyTypes, d.KeyType) {
			return c.errAt(fmt.Sprintf("certificates.domains[%d].keyType", i), "certificates.domains[%d].keyType %q is unknown; use one of %s", i, d.KeyType, strings.Join(keyTypes, ", "))
		}
	}
	if a.KeyType != "" && !slices.Contains(keyTypes, a.KeyType) {
		return c.errAt("certificates.acme.keyType", "certificates.acme.keyType %q is unknown; use one of %s", a.KeyType, strings.Join(keyTypes, ", "))
	}
	if e := a.EAB; e != nil && (e.KID == "") != (e.HMAC == "") {
		return c.errAt("certificates.acme.eab", "certificates.acme.eab needs both kid and hmac (the CA gives you both)")
	}
	if a.Embedded.Validity < 0 {
		return c.errAt("certificates.acme.embedded.validity", "certificates.acme.embedded.validity must not be negative")
	}
	if h := ch.HTTP; h != nil {
		if err := c.challengeEntryPoint("certificates.acme.challenges.http", h.EntryPoint, false); err != nil {
			return err
		}
	}
	if t := ch.TLSALPN; t != nil {
		if err := c.challengeEntryPoint("certificates.acme.challenges.tlsAlpn", t.EntryPoint, true); err != nil {
			return err
		}
	}
	if err := c.validateEmbeddedPorts(); err != nil { // embedded.go
		return err
	}
	if d := ch.DNS; d != nil {
		p := "certificates.acme.challenges.dns"
		if d.Provider == "" && len(d.Providers) == 0 {
			return c.errAt(p, "%s has no provider; set provider to a lego DNS provider code, e.g. cloudflare, iijdpf, rfc2136 (or list providers with their zones)", p)
		}
		if d.Provider != "" && len(d.Providers) > 0 {
			return c.errAt(p+".providers", "%s: use provider (one) or providers (several), not both", p)
		}
		defaults := 0
		for i, pr := range d.Providers {
			if pr.Code == "" {
				return c.errAt(fmt.Sprintf("%s.providers[%d].code", p, i), "%s.providers[%d] has no code; set a lego DNS provider code", p, i)
			}
			if len(pr.Zones) == 0 {
				defaults++
			}
		}
		if defaults > 1 {
			return c.errAt(p+".providers", "%s: %d providers have no zones; only one may serve \"the rest\"", p, defaults)
		}
		for i, r := range d.Resolvers {
			if _, _, err := net.SplitHostPort(r); err != nil {
				return c.errAt(fmt.Sprintf("%s.resolvers[%d]", p, i), "%s.resolvers[%d] %q is not host:port; write e.g. 1.1.1.1:53", p, i, r)
			}
		}
		if d.PropagationWait < 0 {
			return c.errAt(p+".propagationWait", "%s.propagationWait must not be negative", p)
		}
	}
	if c.acmeNeeded() && ch.HTTP == nil && ch.TLSALPN == nil && ch.DNS == nil {
		return c.errAt("certificates.acme.challenges", "certificates.acme.challenges configures no challenge but certificates are to be obtained; add http, tlsAlpn or dns")
	}
	for i, ds := range cert.Domains {
		p := fmt.Sprintf("certificates.domains[%d]", i)
		if ds.Main == "" {
			return c.errAt(p, "%s has no main name; add main: example.com", p)
		}
		for j, name := range append([]string{ds.Main}, ds.SANs...) {
			np := p + ".main"
			if j > 0 {
				np = fmt.Sprintf("%s.sans[%d]", p, j-1)
			}
			if net.ParseIP(name) != nil {
				continue
			}
			if !validHostname(name, true) || !strings.Contains(strings.TrimPrefix(name, "*."), ".") {
				return c.errAt(np, "%s %q is not a domain name; write e.g. example.com or *.example.com", np, name)
			}
			if strings.HasPrefix(name, "*.") && ch.DNS == nil {
				return c.errAt(np, "%s %q is a wildcard, which only DNS-01 can validate; add certificates.acme.challenges.dns", np, name)
			}
		}
	}
	for i, f := range cert.Files {
		p := fmt.Sprintf("certificates.files[%d]", i)
		if len(f.CertPEM) > 0 || len(f.KeyPEM) > 0 {
			if _, err := f.Load(); err != nil {
				e := c.errAt(p, "%s (%s): %v; the certificate and key must be PEM and belong together", p, f.Name(), err)
				e.Err = err
				return e
			}
			continue
		}
		if f.CertFile == "" || f.KeyFile == "" {
			return c.errAt(p, "%s needs both certFile and keyFile", p)
		}
		if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			e := c.errAt(p, "%s (%s, %s): %v; check both files exist, are PEM and belong together", p, f.CertFile, f.KeyFile, err)
			e.Err = err
			return e
		}
	}
	return nil
}

func (c *Config) challengeEntryPoint(p, name string, wantTLS bool) error {
	kind := "a plain (non-TLS) one, where the CA connects on port 80"
	if wantTLS {
		kind = "one with tls, where the CA connects on port 443"
	}
	if name == "" {
		return c.errAt(p, "%s has no entryPoint; name %s", p, kind)
	}
	ep, ok := c.EntryPoints[name]
	if !ok {
		return c.errAt(p+".entryPoint", "%s.entryPoint: no entry point named %q%s", p, name, didYouMean(name, sortedKeys(c.EntryPoints)))
	}
	if (ep != nil && ep.TLS != nil) != wantTLS {
		return c.errAt(p+".entryPoint", "%s.entryPoint: entry point %q is the wrong kind; name %s", p, name, kind)
	}
	return nil
}

func (c *Config) validateRoute(name string, r *Route) error {
	p := "routes." + name
	if r == nil {
		return c.errAt(p, "%s is empty; give it a host and a service", p)
	}
	if err := c.validateMatchers(p, r); err != nil { // matchers.go
		return err
	}
	if r.Host == "" && r.HostRegex == "" {
		return c.errAt(p, "%s has no host; add host: www.example.com (or *.example.com, or hostRegex)", p)
	}
	if r.Host != "" && !isASCII(r.Host) {
		return c.errAt(p+".host", "%s.host %q is not a valid internationalised name (IDNA 2008); check its spelling, or write its xn-- form", p, r.Host)
	}
	if r.Host != "" && (strings.Contains(strings.TrimPrefix(r.Host, "*."), "*") || !validHostname(r.Host, true)) {
		return c.errAt(p+".host", "%s.host %q is not a host name; write www.example.com, or *.example.com for one label of wildcard", p, r.Host)
	}
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		return c.errAt(p+".pathPrefix", "%s.pathPrefix %q must start with /", p, r.PathPrefix)
	}
	if rd := r.Redirect; rd != nil {
		if rd.Scheme != "" && rd.Scheme != "http" && rd.Scheme != "https" {
			return c.errAt(p, "%s: redirect scheme %q is not http or https", p, rd.Scheme)
		}
		if rd.Host != "" && !validHostname(rd.Host, false) && net.ParseIP(rd.Host) == nil {
			return c.errAt(p, "%s: redirect host %q is not a host name", p, rd.Host)
		}
		if rd.Port < 0 || rd.Port > 65535 {
			return c.errAt(p, "%s: redirect port %d is not a port", p, rd.Port)
		}
		if sc := rd.StatusCode; sc != 0 && !slices.Contains([]int{301, 302, 303, 307, 308}, sc) {
			return c.errAt(p, "%s: redirect status %d is not 301, 302, 303, 307 or 308", p, sc)
		}
	}
	switch _, ok := c.Services[r.Service]; {
	case r.Service == "" && r.Redirect != nil:
		// A redirect needs no service.
	case r.Service == "":
		return c.errAt(p, "%s has no service; add service: <name of a service>", p)
	case !ok:
		return c.errAt(p+".service", "%s.service: no service named %q%s", p, r.Service, didYouMean(r.Service, sortedKeys(c.Services)))
	}
	if len(r.EntryPoints) == 0 {
		return c.errAt(p, "%s is served on no entry point (every entry point redirects); add an entry point without redirect", p)
	}
	for i, e := range r.EntryPoints {
		if _, ok := c.EntryPoints[e]; !ok {
			ip := fmt.Sprintf("%s.entryPoints[%d]", p, i)
			return c.errAt(ip, "%s: no entry point named %q%s", ip, e, didYouMean(e, sortedKeys(c.EntryPoints)))
		}
	}
	for _, h := range sortedKeys(r.ResponseHeaders) {
		if h == "" || strings.ContainsAny(h, " \t:\r\n") {
			return c.errAt(p+".responseHeaders."+h, "%s.responseHeaders: %q is not a header name", p, h)
		}
	}
	for i, m := range r.Middlewares {
		if _, ok := c.Middlewares[m]; !ok {
			mp := fmt.Sprintf("%s.middlewares[%d]", p, i)
			return c.errAt(mp, "%s: no middleware named %q%s", mp, m, didYouMean(m, sortedKeys(c.Middlewares)))
		}
	}
	return nil
}

var strategies = []string{"round-robin", "weighted", "least-requests", "power-of-two-choices"}

func (c *Config) validateService(name string, s *Service) error {
	p := "services." + name
	if s == nil {
		return c.errAt(p, "%s is empty; give it servers or static", p)
	}
	if err := c.validateServiceKind(name, s); err != nil { // servicekinds.go
		return err
	}
	for i, sv := range s.Servers {
		sp := fmt.Sprintf("%s.servers[%d]", p, i)
		u, err := url.Parse(sv.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "h2c") || u.Host == "" {
			return c.errAt(sp+".url", "%s.url %q is not an absolute http://, https:// or h2c:// URL; write e.g. http://127.0.0.1:8080", sp, sv.URL)
		}
		if sv.Weight < 0 {
			return c.errAt(sp+".weight", "%s.weight must be 1 or more", sp)
		}
	}
	if s.Strategy != "" && !slices.Contains(strategies, s.Strategy) {
		return c.errAt(p+".strategy", "%s.strategy %q is unknown; use one of %s", p, s.Strategy, strings.Join(strategies, ", "))
	}
	if h := s.HealthCheck; h != nil {
		hp := p + ".healthCheck"
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			return c.errAt(hp+".path", "%s.path %q must start with /", hp, h.Path)
		}
		if h.Interval < 0 || h.Timeout < 0 {
			return c.errAt(hp, "%s interval and timeout must not be negative", hp)
		}
		if h.ExpectedStatus != 0 && (h.ExpectedStatus < 100 || h.ExpectedStatus > 599) {
			return c.errAt(hp+".expectedStatus", "%s.expectedStatus %d is not an HTTP status (100-599)", hp, h.ExpectedStatus)
		}
	}
	if ph := s.PassiveHealth; ph != nil && (ph.MaxFailures < 0 || ph.Window < 0 || ph.Cooldown < 0) {
		return c.errAt(p+".passiveHealth", "%s.passiveHealth values must not be negative", p)
	}
	if s.TryTimeout < 0 {
		return c.errAt(p+".tryTimeout", "%s.tryTimeout must not be negative", p)
	}
	if s.Retries != nil && *s.Retries < 0 {
		return c.errAt(p+".retries", "%s.retries must not be negative", p)
	}
	if st := s.Static; st != nil && st.Status != 0 && (st.Status < 100 || st.Status > 599) {
		return c.errAt(p+".static.status", "%s.static.status %d is not an HTTP status (100-599)", p, st.Status)
	}
	return nil
}
