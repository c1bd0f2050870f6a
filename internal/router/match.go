package router

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/zoku/zoku/internal/config"
)

// Matching beyond host and path prefix. A route's conditions (exact path,
// path regex, host regex, methods, headers, query parameters, client IPs)
// compile at Apply into one func, the route's extra matcher; a route
// without them has none and pays one nil check. The host regex is checked
// by hostMatches, since it also decides where the route is indexed.
//
// Precedence (compileRoutes sorts by it, docs/config.md documents it):
// priority, then host (exact, wildcard, regex), then path (exact, regex,
// prefix), then the longer path prefix, then the route with more
// conditions, then the name.

// cond is one compiled condition.
type cond func(*http.Request) bool

// compileMatchers returns the extra matcher of r (nil when it sets no
// condition), the number of its conditions and descriptions of them for
// the admin API.
func compileMatchers(r *config.Route) (func(*http.Request) bool, int, []string, error) {
	var conds []cond
	var shown []string
	if p := r.Path; p != "" {
		conds = append(conds, func(req *http.Request) bool { return req.URL.Path == p })
		shown = append(shown, "path "+p)
	}
	if r.PathRegex != "" {
		re, err := regexp.Compile(r.PathRegex)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("pathRegex: %w", err)
		}
		conds = append(conds, func(req *http.Request) bool { return re.MatchString(req.URL.Path) })
		shown = append(shown, "pathRegex "+r.PathRegex)
	}
	if len(r.Methods) > 0 {
		methods := make([]string, len(r.Methods))
		for i, m := range r.Methods {
			methods[i] = strings.ToUpper(m)
		}
		conds = append(conds, func(req *http.Request) bool { return slices.Contains(methods, req.Method) })
		shown = append(shown, "method "+strings.Join(methods, ","))
	}
	for _, k := range sortedNames(r.Headers) {
		key, want := http.CanonicalHeaderKey(k), r.Headers[k]
		conds = append(conds, func(req *http.Request) bool { return slices.Contains(req.Header[key], want) })
		shown = append(shown, "header "+key+"="+want)
	}
	for _, k := range sortedNames(r.HeadersRegex) {
		re, err := regexp.Compile(r.HeadersRegex[k])
		if err != nil {
			return nil, 0, nil, fmt.Errorf("headersRegex.%s: %w", k, err)
		}
		key := http.CanonicalHeaderKey(k)
		conds = append(conds, func(req *http.Request) bool { return slices.ContainsFunc(req.Header[key], re.MatchString) })
		shown = append(shown, "header "+key+"~"+r.HeadersRegex[k])
	}
	for _, k := range sortedNames(r.Query) {
		key, want := k, r.Query[k]
		conds = append(conds, func(req *http.Request) bool {
			return queryHas(req.URL.RawQuery, key, func(v string) bool { return v == want })
		})
		shown = append(shown, "query "+key+"="+want)
	}
	for _, k := range sortedNames(r.QueryRegex) {
		re, err := regexp.Compile(r.QueryRegex[k])
		if err != nil {
			return nil, 0, nil, fmt.Errorf("queryRegex.%s: %w", k, err)
		}
		key := k
		conds = append(conds, func(req *http.Request) bool { return queryHas(req.URL.RawQuery, key, re.MatchString) })
		shown = append(shown, "query "+key+"~"+r.QueryRegex[k])
	}
	if len(r.ClientIPs) > 0 {
		var ranges []netip.Prefix
		for _, s := range r.ClientIPs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return nil, 0, nil, fmt.Errorf("clientIPs: %q is not an IP or CIDR", s)
				}
				a = a.Unmap().WithZone("")
				p = netip.PrefixFrom(a, a.BitLen())
			}
			ranges = append(ranges, p.Masked())
		}
		conds = append(conds, func(req *http.Request) bool {
			ap, err := netip.ParseAddrPort(req.RemoteAddr)
			if err != nil {
				return false
			}
			ip := ap.Addr().Unmap().WithZone("")
			return slices.ContainsFunc(ranges, func(p netip.Prefix) bool { return p.Contains(ip) })
		})
		shown = append(shown, "clientIP "+strings.Join(r.ClientIPs, ","))
	}
	if r.HostRegex != "" {
		shown = append([]string{"hostRegex " + r.HostRegex}, shown...)
	}
	switch len(conds) {
	case 0:
		return nil, 0, shown, nil
	case 1:
		return conds[0], 1, shown, nil
	}
	return func(req *http.Request) bool {
		for _, c := range conds {
			if !c(req) {
				return false
			}
		}
		return true
	}, len(conds), shown, nil
}

// queryHas reports whether raw (a URL's query) has parameter key with a
// value ok accepts, decoding only what it must (no map is built).
func queryHas(raw, key string, ok func(string) bool) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		if ok(v) {
			return true
		}
	}
	return false
}

func sortedNames(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
