package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// validateMatchers checks the conditions of route p beyond host and path
// prefix: each regular expression compiles, each name is a header name,
// each IP or CIDR parses.
func (c *Config) validateMatchers(p string, r *Route) error {
	if r.Host != "" && r.HostRegex != "" {
		return c.errAt(p+".hostRegex", "%s has both host and hostRegex; keep one", p)
	}
	if err := c.checkRegex(p+".hostRegex", r.HostRegex); err != nil {
		return err
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		return c.errAt(p+".path", "%s.path %q must start with /", p, r.Path)
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, r.PathPrefix) {
		return c.errAt(p+".path", "%s.path %q is not under pathPrefix %q, so the route would never match; remove one of them", p, r.Path, r.PathPrefix)
	}
	if err := c.checkRegex(p+".pathRegex", r.PathRegex); err != nil {
		return err
	}
	for i, m := range r.Methods {
		if !isToken(m) {
			mp := fmt.Sprintf("%s.methods[%d]", p, i)
			return c.errAt(mp, "%s %q is not an HTTP method; write e.g. GET or POST", mp, m)
		}
	}
	for _, table := range []struct {
		key   string
		m     map[string]string
		regex bool
	}{{"headers", r.Headers, false}, {"headersRegex", r.HeadersRegex, true}, {"query", r.Query, false}, {"queryRegex", r.QueryRegex, true}} {
		for _, k := range sortedKeys(table.m) {
			kp := p + "." + table.key + "." + k
			if strings.HasPrefix(table.key, "headers") && !isToken(k) {
				return c.errAt(kp, "%s.%s: %q is not a header name", p, table.key, k)
			}
			if k == "" {
				return c.errAt(kp, "%s.%s has an empty name", p, table.key)
			}
			if table.regex {
				if err := c.checkRegex(kp, table.m[k]); err != nil {
					return err
				}
			}
		}
	}
	for i, ip := range r.ClientIPs {
		if _, err := netip.ParsePrefix(ip); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			ipp := fmt.Sprintf("%s.clientIPs[%d]", p, i)
			return c.errAt(ipp, "%s %q is not an IP or CIDR; write e.g. 10.0.0.0/8 or 192.0.2.1", ipp, ip)
		}
	}
	return nil
}

// maxRegexLen bounds a regular expression of the file (Go's are linear
// in the input; this bounds their compiled size).
const maxRegexLen = 4096

// checkRegex reports a regular expression at key that does not compile.
func (c *Config) checkRegex(key, re string) error {
	if re == "" {
		return nil
	}
	if len(re) > maxRegexLen {
		return c.errAt(key, "%s is longer than %d bytes; write a shorter regular expression", key, maxRegexLen)
	}
	if _, err := regexp.Compile(re); err != nil {
		return c.errAt(key, "%s %q is not a regular expression (Go RE2 syntax): %v", key, re, regexError(err))
	}
	return nil
}

// regexError is the part of a regexp error after its "error parsing
// regexp: " prefix.
func regexError(err error) string {
	msg := err.Error()
	_, after, ok := strings.Cut(msg, "error parsing regexp: ")
	if ok {
		return after
	}
	return msg
}

// isToken reports whether s is an RFC 9110 token (method, header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			continue
		}
		return false
	}
	return true
}
