package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// tcpStrategies are the strategies of a TCP service.
var tcpStrategies = []string{"round-robin", "weighted", "least-connections", "power-of-two-choices"}

// applyL4Defaults fills the defaults of the layer-4 keys (l4.go); Load
// runs it from applyDefaults.
func (c *Config) applyL4Defaults() {
	for _, ep := range c.EntryPoints {
		if ep == nil {
			continue
		}
		if h := ep.HTTP3; h != nil {
			setDur(&h.MaxAge, DefaultHTTP3MaxAge)
		}
		clientAuthDefaults(ep.ClientAuth)
		if pp := ep.ProxyProtocol; pp != nil {
			setDur(&pp.HeaderTimeout, DefaultProxyHeaderTimeout)
		}
	}
	for _, r := range c.Routes {
		if r != nil {
			clientAuthDefaults(r.ClientAuth)
		}
	}
	for _, r := range c.TCPRoutes {
		if r == nil {
			continue
		}
		if r.SNI != "*" {
			r.SNI = normName(r.SNI)
		}
		clientAuthDefaults(r.ClientAuth)
	}
	for _, s := range c.TCPServices {
		if s == nil {
			continue
		}
		setStr(&s.Strategy, DefaultTCPStrategy)
		for i := range s.Servers {
			if s.Servers[i].Weight == 0 {
				s.Servers[i].Weight = 1
			}
		}
		if h := s.HealthCheck; h != nil {
			setDur(&h.Interval, DefaultHealthInterval)
			setDur(&h.Timeout, DefaultHealthTimeout)
		}
		if p := s.PassiveHealth; p != nil {
			if p.MaxFailures == 0 {
				p.MaxFailures = DefaultMaxFailures
			}
			setDur(&p.Window, DefaultFailureWindow)
			setDur(&p.Cooldown, DefaultCooldown)
		}
		setDur(&s.ConnectTimeout, DefaultTCPConnectTimeout)
		if p := s.ProxyProtocol; p != nil && p.Version == 0 {
			p.Version = DefaultTCPProxyVersion
		}
	}
}

func clientAuthDefaults(ca *ClientAuth) {
	if ca == nil {
		return
	}
	setStr(&ca.Mode, ClientAuthRequire)
	setStr(&ca.SubjectHeader, DefaultClientSubjectHeader)
}

// TCPClaimsAll reports whether the TCP routes of entry point ep take every
// connection its HTTP routes could get: a catch-all route without tls
// (sni "*") takes every connection; on an entry point with tls, a TLS
// catch-all (sni "*" with tls) takes every TLS connection. HTTP routes
// are not served on such an entry point.
func (c *Config) TCPClaimsAll(ep string) bool {
	e := c.EntryPoints[ep]
	if e == nil {
		return false
	}
	for _, r := range c.TCPRoutes {
		if r == nil || r.SNI != "*" || !slices.Contains(r.EntryPoints, ep) {
			continue
		}
		if r.TLS == "" || e.TLS != nil {
			return true
		}
	}
	return false
}

// CAPool reads the PEM files of ca.CAFiles into a pool. It fails on a file
// that cannot be read or holds no certificate.
func (ca *ClientAuth) CAPool() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, f := range ca.CAFiles {
		certs, err := ReadPEMCertificates(f)
		if err != nil {
			return nil, err
		}
		for _, crt := range certs {
			pool.AddCert(crt)
		}
	}
	return pool, nil
}

// readCerts parses every CERTIFICATE block of the PEM file f.
func ReadPEMCertificates(f string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", f, cause(err))
	}
	var out []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		crt, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: a certificate does not parse: %w", f, err)
		}
		out = append(out, crt)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", f)
	}
	return out, nil
}

// validateL4 checks the layer-4 keys: entry points' http3, clientAuth and
// proxyProtocol, routes' clientAuth, then tcpServices and tcpRoutes (names
// sorted; routes is the sorted route names). Validate runs it after
// services.
func (c *Config) validateL4(routes []string) error {
	for _, name := range sortedKeys(c.EntryPoints) {
		ep := c.EntryPoints[name]
		if ep == nil {
			continue
		}
		if err := c.validateEntryPointL4("entryPoints."+name, ep); err != nil {
			return err
		}
	}
	for _, name := range routes {
		r := c.Routes[name]
		if r == nil {
			continue
		}
		p := "routes." + name
		if r.ClientAuth != nil {
			if err := c.validateClientAuth(p+".clientAuth", r.ClientAuth); err != nil {
				return err
			}
		}
		for i, ep := range r.EntryPoints {
			if c.TCPClaimsAll(ep) {
				ip := fmt.Sprintf("%s.entryPoints[%d]", p, i)
				return c.errAt(ip, "%s: the TCP routes of entry point %q take every connection there (a tcpRoutes entry with sni \"*\"), so this route would never be reached; remove the entry point from the route or restrict the TCP route", ip, ep)
			}
		}
	}
	for _, name := range sortedKeys(c.TCPServices) {
		if err := c.validateTCPService(name, c.TCPServices[name]); err != nil {
			return err
		}
	}
	claimed := map[string]string{} // entry point + "\x00" + sni key -> route
	for _, name := range sortedKeys(c.TCPRoutes) {
		if err := c.validateTCPRoute(name, c.TCPRoutes[name], claimed); err != nil {
			return err
		}
	}
	if h := c.Certificates.ACME.Challenges.HTTP; h != nil && c.TCPClaimsAll(h.EntryPoint) {
		p := "certificates.acme.challenges.http.entryPoint"
		return c.errAt(p, "%s: the TCP routes of entry point %q take every connection there (a tcpRoutes entry with sni \"*\"), so the CA's HTTP-01 requests would never reach zoku; name another entry point", p, h.EntryPoint)
	}
	return nil
}

func (c *Config) validateEntryPointL4(p string, ep *EntryPoint) error {
	if h := ep.HTTP3; h != nil {
		if ep.TLS == nil {
			return c.errAt(p+".http3", "%s.http3 needs tls on the same entry point (HTTP/3 is always encrypted); add tls: {} or remove http3", p)
		}
		if ep.TLS.MaxVersion == "1.2" || ep.TLS.MaxVersion == "1.1" || ep.TLS.MaxVersion == "1.0" {
			return c.errAt(p+".http3", "%s.http3 needs TLS 1.3 (QUIC uses nothing else) but tls.maxVersion is %q; raise it to \"1.3\" or remove http3", p, ep.TLS.MaxVersion)
		}
		if h.AdvertisedPort < 0 || h.AdvertisedPort > 65535 {
			return c.errAt(p+".http3.advertisedPort", "%s.http3.advertisedPort %d is not a port (1-65535)", p, h.AdvertisedPort)
		}
		if h.MaxAge < 0 {
			return c.errAt(p+".http3.maxAge", "%s.http3.maxAge must not be negative", p)
		}
	}
	if ca := ep.ClientAuth; ca != nil {
		if ep.TLS == nil {
			return c.errAt(p+".clientAuth", "%s.clientAuth needs tls on the same entry point (client certificates are part of the TLS handshake); add tls: {} or remove clientAuth", p)
		}
		if err := c.validateClientAuth(p+".clientAuth", ca); err != nil {
			return err
		}
	}
	if pp := ep.ProxyProtocol; pp != nil {
		pp2 := p + ".proxyProtocol"
		if len(pp.TrustedIPs) == 0 {
			return c.errAt(pp2, "%s has no trustedIPs; list the load balancers (IPs or CIDRs) that send PROXY headers, e.g. trustedIPs: [10.0.0.0/8]", pp2)
		}
		for i, s := range pp.TrustedIPs {
			if _, err := parsePrefix(s); err != nil {
				ip := fmt.Sprintf("%s.trustedIPs[%d]", pp2, i)
				return c.errAt(ip, "%s %q is not an IP or CIDR; write e.g. 10.0.0.0/8 or 192.0.2.1", ip, s)
			}
		}
		if pp.HeaderTimeout < 0 {
			return c.errAt(pp2+".headerTimeout", "%s.headerTimeout must not be negative", pp2)
		}
	}
	return nil
}

// parsePrefix reads an IP or a CIDR.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *Config) validateClientAuth(p string, ca *ClientAuth) error {
	if ca.Mode != ClientAuthRequire && ca.Mode != ClientAuthOptional {
		return c.errAt(p+".mode", "%s.mode %q is unknown; use require or optional", p, ca.Mode)
	}
	if len(ca.CAFiles) == 0 {
		return c.errAt(p, "%s has no caFiles; name the PEM file(s) of the CA that signs your client certificates", p)
	}
	for i, f := range ca.CAFiles {
		if _, err := ReadPEMCertificates(f); err != nil {
			fp := fmt.Sprintf("%s.caFiles[%d]", p, i)
			e := c.errAt(fp, "%s: %v; give a PEM file of CA certificates", fp, err)
			e.Err = err
			return e
		}
	}
	if !httpguts.ValidHeaderFieldName(ca.SubjectHeader) {
		return c.errAt(p+".subjectHeader", "%s.subjectHeader %q is not a header name", p, ca.SubjectHeader)
	}
	return nil
}

func (c *Config) validateTCPService(name string, s *TCPService) error {
	p := "tcpServices." + name
	if s == nil || len(s.Servers) == 0 {
		return c.errAt(p, "%s has no servers; add servers: [{address: \"10.0.0.5:5432\"}]", p)
	}
	for i, sv := range s.Servers {
		sp := fmt.Sprintf("%s.servers[%d]", p, i)
		if sv.Address == "" {
			return c.errAt(sp, "%s has no address; write host:port, e.g. 10.0.0.5:5432", sp)
		}
		port, err := splitAddress(sv.Address)
		if err == nil && port == 0 {
			err = fmt.Errorf("port 0 cannot be connected to")
		}
		if err != nil {
			return c.errAt(sp+".address", "%s.address %q: %v; write host:port, e.g. 10.0.0.5:5432", sp, sv.Address, err)
		}
		if sv.Weight < 0 {
			return c.errAt(sp+".weight", "%s.weight must be 1 or more", sp)
		}
	}
	if !slices.Contains(tcpStrategies, s.Strategy) {
		return c.errAt(p+".strategy", "%s.strategy %q is unknown; use one of %s", p, s.Strategy, strings.Join(tcpStrategies, ", "))
	}
	if h := s.HealthCheck; h != nil && (h.Interval < 0 || h.Timeout < 0) {
		return c.errAt(p+".healthCheck", "%s.healthCheck interval and timeout must not be negative", p)
	}
	if ph := s.PassiveHealth; ph != nil && (ph.MaxFailures < 0 || ph.Window < 0 || ph.Cooldown < 0) {
		return c.errAt(p+".passiveHealth", "%s.passiveHealth values must not be negative", p)
	}
	if s.ConnectTimeout < 0 {
		return c.errAt(p+".connectTimeout", "%s.connectTimeout must not be negative", p)
	}
	if pp := s.ProxyProtocol; pp != nil && pp.Version != 1 && pp.Version != 2 {
		return c.errAt(p+".proxyProtocol.version", "%s.proxyProtocol.version %d is unknown; use 1 (text) or 2 (binary)", p, pp.Version)
	}
	return nil
}

func (c *Config) validateTCPRoute(name string, r *TCPRoute, claimed map[string]string) error {
	p := "tcpRoutes." + name
	if r == nil {
		return c.errAt(p, "%s is empty; give it sni, tls, service and entryPoints", p)
	}
	switch {
	case r.SNI == "":
		return c.errAt(p, "%s has no sni; write the server name (db.example.com, *.example.com) or \"*\" for every connection", p)
	case r.SNI == "*":
	case !isASCII(r.SNI):
		return c.errAt(p+".sni", "%s.sni %q is not a valid internationalised name (IDNA 2008); check its spelling, or write its xn-- form", p, r.SNI)
	case strings.Contains(strings.TrimPrefix(r.SNI, "*."), "*") || !validHostname(r.SNI, true):
		return c.errAt(p+".sni", "%s.sni %q is not a server name; write db.example.com, *.example.com (one label) or \"*\"", p, r.SNI)
	}
	switch r.TLS {
	case TLSPassthrough, TLSTerminate:
	case "":
		if r.SNI != "*" {
			return c.errAt(p, "%s has no tls; routing by SNI needs tls: passthrough (the server terminates TLS) or tls: terminate (zoku does)", p)
		}
	default:
		return c.errAt(p+".tls", "%s.tls %q is unknown; use passthrough or terminate (or leave it out with sni \"*\" to forward connections as they are)", p, r.TLS)
	}
	if r.Service == "" {
		return c.errAt(p, "%s has no service; add service: <name of a tcpServices entry>", p)
	}
	if _, ok := c.TCPServices[r.Service]; !ok {
		if _, http := c.Services[r.Service]; http {
			return c.errAt(p+".service", "%s.service: %q is an HTTP service; a TCP route needs one under tcpServices", p, r.Service)
		}
		return c.errAt(p+".service", "%s.service: no TCP service named %q%s", p, r.Service, didYouMean(r.Service, sortedKeys(c.TCPServices)))
	}
	if len(r.EntryPoints) == 0 {
		return c.errAt(p, "%s has no entryPoints; name the entry points it listens on", p)
	}
	for i, e := range r.EntryPoints {
		ip := fmt.Sprintf("%s.entryPoints[%d]", p, i)
		if _, ok := c.EntryPoints[e]; !ok {
			return c.errAt(ip, "%s: no entry point named %q%s", ip, e, didYouMean(e, sortedKeys(c.EntryPoints)))
		}
		key := e + "\x00" + r.SNI
		if r.TLS == "" {
			key += "\x00plain"
		}
		if other, dup := claimed[key]; dup {
			return c.errAt(ip, "%s: tcpRoutes.%s already takes sni %q on entry point %q; give one of them another entry point or sni", ip, other, r.SNI, e)
		}
		claimed[key] = name
	}
	if ca := r.ClientAuth; ca != nil {
		if r.TLS != TLSTerminate {
			return c.errAt(p+".clientAuth", "%s.clientAuth needs tls: terminate (with passthrough the server does the TLS handshake, so it asks for client certificates itself)", p)
		}
		if err := c.validateClientAuth(p+".clientAuth", ca); err != nil {
			return err
		}
	}
	return nil
}
