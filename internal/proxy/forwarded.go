package proxy

import (
	"fmt"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"
)

// rewrite is ReverseProxy's Rewrite hook. Before it runs, ReverseProxy has
// already removed hop-by-hop headers and the client's Forwarded and
// X-Forwarded-* headers from the outgoing request.
func (s *Service) rewrite(pr *httputil.ProxyRequest) {
	ts := stateFrom(pr.In.Context())
	pr.SetURL(ts.cur.url)
	// SetURL sends the server's own host name; keep the client's instead,
	// as Caddy and Traefik do, so that virtual hosts and absolute links on
	// the backend keep working. X-Forwarded-Host carries it as well.
	pr.Out.Host = pr.In.Host
	s.setForwarded(pr)
}

// setForwarded sets X-Forwarded-For, -Proto and -Host. For a peer in
// TrustedProxies the client's values are kept: its X-Forwarded-For is
// extended with the peer's address, and its -Proto, -Host and Forwarded
// pass unchanged (each filled in from this hop when absent). For any other
// peer they describe this hop only, and X-Real-Ip, which some applications
// trust the same way, is dropped.
func (s *Service) setForwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	if !s.trustedPeer(in.RemoteAddr) {
		out.Header.Del("X-Real-Ip")
		pr.SetXForwarded()
		return
	}
	if prior := in.Header.Values("X-Forwarded-For"); len(prior) > 0 {
		out.Header["X-Forwarded-For"] = slices.Clone(prior)
	}
	pr.SetXForwarded() // appends the peer to the chain
	for _, h := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
		if v := in.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	if fwd := in.Header.Values("Forwarded"); len(fwd) > 0 {
		out.Header["Forwarded"] = slices.Clone(fwd)
	}
}

// trustedPeer reports whether remoteAddr (ip:port) is in TrustedProxies.
func (s *Service) trustedPeer(remoteAddr string) bool {
	if len(s.opts.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap().WithZone("")
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies turns an entry point's trustedProxies (CIDRs such as
// 10.0.0.0/8, or single IPs) into prefixes for Options.TrustedProxies.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("proxy: trusted proxy %q is not an IP or CIDR; write it as 10.0.0.0/8 or 192.0.2.1", s)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}
