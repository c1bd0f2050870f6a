package config

// The embedded CA (server: embedded) validates on 127.0.0.1: its resolver
// answers 127.0.0.1 for every name. Which port it connects to is the one
// thing a user may have to say, when zoku's own entry points are not what
// answers, as with a deploy target tried on loopback (a local HAProxy on
// :8080 forwarding the challenge path to zoku).

// EmbeddedPorts returns the ports the embedded CA validates HTTP-01 and
// TLS-ALPN-01 on: certificates.acme.embedded.httpPort and tlsPort, else
// the port of the challenge's entry point, else 0 (the CA's defaults, 80
// and 443).
func (c *Config) EmbeddedPorts() (httpPort, tlsPort int) {
	a := c.Certificates.ACME
	httpPort, tlsPort = a.Embedded.HTTPPort, a.Embedded.TLSPort
	if h := a.Challenges.HTTP; httpPort == 0 && h != nil {
		if ep := c.EntryPoints[h.EntryPoint]; ep != nil {
			httpPort = ep.Port()
		}
	}
	if t := a.Challenges.TLSALPN; tlsPort == 0 && t != nil {
		if ep := c.EntryPoints[t.EntryPoint]; ep != nil {
			tlsPort = ep.Port()
		}
	}
	return httpPort, tlsPort
}

// validateEmbeddedPorts checks embedded.httpPort and tlsPort: in range,
// only with the embedded CA, and not contradicting the entry point that
// answers the same challenge.
func (c *Config) validateEmbeddedPorts() error {
	a := c.Certificates.ACME
	for _, f := range []struct {
		key, challenge string
		port           int
		ep             string
	}{
		{"httpPort", "http", a.Embedded.HTTPPort, entryPointOf(a.Challenges.HTTP)},
		{"tlsPort", "tlsAlpn", a.Embedded.TLSPort, entryPointOfALPN(a.Challenges.TLSALPN)},
	} {
		p := "certificates.acme.embedded." + f.key
		switch {
		case f.port == 0:
			continue
		case f.port < 1 || f.port > 65535:
			return c.errAt(p, "%s %d is not a port; use 1 to 65535", p, f.port)
		case a.Server != "embedded":
			return c.errAt(p, "%s applies only to server: embedded (the CA inside zoku); remove it", p)
		}
		if ep := c.EntryPoints[f.ep]; ep != nil && ep.Port() != 0 && ep.Port() != f.port {
			return c.errAt(p, "%s %d differs from the port of entry point %s (%d), which answers certificates.acme.challenges.%s; remove one of them", p, f.port, f.ep, ep.Port(), f.challenge)
		}
	}
	return nil
}

func entryPointOf(h *HTTPChallenge) string {
	if h == nil {
		return ""
	}
	return h.EntryPoint
}

func entryPointOfALPN(t *TLSALPNChallenge) string {
	if t == nil {
		return ""
	}
	return t.EntryPoint
}
