package tcproute

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// ProxyPolicy is an entry point's PROXY protocol policy: the peers that
// must send a PROXY header (v1 or v2) and how long they have to send it.
type ProxyPolicy struct {
	Trusted []netip.Prefix
	Timeout time.Duration
}

// trusts reports whether addr is in p's trusted prefixes.
func (p *ProxyPolicy) trusts(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, pfx := range p.Trusted {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// AcceptProxy reads the PROXY header of a connection from a trusted peer
// and returns a connection whose RemoteAddr and LocalAddr are the ones the
// header names (a LOCAL header, a load balancer's own health check, keeps
// the real ones). A connection from any other peer is returned as it is,
// without reading anything: what it sends is its own data. A trusted
// peer that sends no valid header within the timeout gets an error; the
// caller closes the connection. A nil policy returns c.
func AcceptProxy(c net.Conn, p *ProxyPolicy) (net.Conn, error) {
	if p == nil || !p.trusts(c.RemoteAddr()) {
		return c, nil
	}
	pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE), proxyproto.SetReadHeaderTimeout(p.Timeout))
	// A read of nothing processes the header and returns its error.
	if _, err := pc.Read(nil); err != nil {
		return nil, fmt.Errorf("tcproute: PROXY header from %s: %w", c.RemoteAddr(), err)
	}
	return pc, nil
}
