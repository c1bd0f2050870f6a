package middleware

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the client's address: with depth 0 the peer's
// (r.RemoteAddr), otherwise the depth-th address from the right of
// X-Forwarded-For (1 is the last one, which the nearest proxy added). The
// router has already dropped X-Forwarded-For from peers its entry point
// does not trust, so with depth > 0 an untrusted peer has no address and
// ok is false.
func clientIP(r *http.Request, depth int) (netip.Addr, bool) {
	if depth <= 0 {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}, false
		}
		return ap.Addr().Unmap().WithZone(""), true
	}
	vals := r.Header["X-Forwarded-For"]
	n := 0
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			var part string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				part, v = v[j+1:], v[:j]
			} else {
				part, v = v, ""
			}
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			n++
			if n == depth {
				a, err := netip.ParseAddr(part)
				if err != nil {
					return netip.Addr{}, false
				}
				return a.Unmap().WithZone(""), true
			}
		}
	}
	return netip.Addr{}, false
}

// sourceKey is what per-client limits count by: a client IP, or the value
// of a request header.
type sourceKey struct {
	ip     netip.Addr
	header string
}

// source picks the key of r: the value of header (when set and present),
// else the client IP at depth. ok is false when there is neither.
func source(r *http.Request, header string, depth int) (sourceKey, bool) {
	if header != "" {
		if v := r.Header.Get(header); v != "" {
			return sourceKey{header: v}, true
		}
	}
	ip, ok := clientIP(r, depth)
	return sourceKey{ip: ip}, ok
}

// shardOf spreads keys over n shards (n a power of two).
func shardOf(k sourceKey, n int) int {
	var h uint64 = 14695981039346656037
	if k.header != "" {
		for i := 0; i < len(k.header); i++ {
			h = (h ^ uint64(k.header[i])) * 1099511628211
		}
	} else {
		b := k.ip.As16()
		for _, c := range b {
			h = (h ^ uint64(c)) * 1099511628211
		}
	}
	return int(h & uint64(n-1))
}
