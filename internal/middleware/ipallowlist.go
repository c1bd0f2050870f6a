package middleware

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// ipAllowList lets through only clients whose address is in its ranges;
// others, and requests whose client address cannot be told (no
// X-Forwarded-For entry at the depth asked), get 403.
type ipAllowList struct {
	ranges []netip.Prefix
	depth  int
}

func newIPAllowList(c *config.IPAllowList) (*ipAllowList, error) {
	ranges, err := parseRanges(c.SourceRange)
	if err != nil {
		return nil, err
	}
	return &ipAllowList{ranges: ranges, depth: c.Depth}, nil
}

// parseRanges reads IPs and CIDRs; an IP stands for itself alone.
func parseRanges(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP or CIDR", s)
		}
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (m *ipAllowList) allowed(r *http.Request) bool {
	ip, ok := clientIP(r, m.depth)
	if !ok {
		return false
	}
	for _, p := range m.ranges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (m *ipAllowList) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		if !m.allowed(r) {
			plainError(w, "403 forbidden", http.StatusForbidden)
			return
		}
		next(w, r, st)
	}
}
