package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/zoku/zoku/internal/middleware/htpasswd"
)

// maxChainDepth bounds how deep chains may nest.
const maxChainDepth = 16

// validateMiddlewares checks every middleware (names sorted) and then
// the chains between them.
func (c *Config) validateMiddlewares() error {
	for _, name := range sortedKeys(c.Middlewares) {
		if err := c.validateMiddleware(name, c.Middlewares[name]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(c.Middlewares) {
		if _, err := c.ExpandMiddlewares([]string{name}); err != nil {
			var ce *chainError
			if errors.As(err, &ce) {
				return c.errAt("middlewares."+ce.at, "%s", ce.msg)
			}
			return err
		}
	}
	return nil
}

// chainError is a chain problem at the key path "middlewares."+at.
type chainError struct{ at, msg string }

func (e *chainError) Error() string { return e.msg }

// ExpandMiddlewares replaces each chain in names by the middlewares it
// lists, recursively, keeping order. It fails on an unknown name, a chain
// that contains itself or nesting deeper than 16.
func (c *Config) ExpandMiddlewares(names []string) ([]string, error) {
	var out []string
	var walk func(names []string, path []string) error
	walk = func(names []string, path []string) error {
		if len(path) > maxChainDepth {
			return &chainError{path[0], fmt.Sprintf("middlewares.%s: chains nest more than %d deep (%s); flatten them", path[0], maxChainDepth, strings.Join(path, " -> "))}
		}
		for i, n := range names {
			m, ok := c.Middlewares[n]
			if !ok {
				at := ""
				if len(path) > 0 {
					at = fmt.Sprintf("%s.chain[%d]", path[len(path)-1], i)
					return &chainError{at, fmt.Sprintf("middlewares.%s: no middleware named %q%s", at, n, didYouMean(n, sortedKeys(c.Middlewares)))}
				}
				return fmt.Errorf("config: no middleware named %q", n)
			}
			if slices.Contains(path, n) {
				cycle := append(path[slices.Index(path, n):], n)
				return &chainError{cycle[0] + ".chain", fmt.Sprintf("middlewares.%s.chain reaches itself (%s); remove one of them", cycle[0], strings.Join(cycle, " -> "))}
			}
			if m != nil && m.Chain != nil {
				if err := walk(m.Chain, append(path, n)); err != nil {
					return err
				}
				continue
			}
			out = append(out, n)
		}
		return nil
	}
	if err := walk(names, nil); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Config) validateMiddleware(name string, m *Middleware) error {
	p := "middlewares." + name
	if m == nil {
		return c.errAt(p, "%s is empty; give it one kind: %s", p, strings.Join(MiddlewareKinds, ", "))
	}
	switch kinds := m.Kinds(); len(kinds) {
	case 0:
		return c.errAt(p, "%s has no kind; give it one of %s", p, strings.Join(MiddlewareKinds, ", "))
	case 1:
		p += "." + kinds[0]
	default:
		return c.errAt(p+"."+kinds[1], "%s has several kinds (%s); a middleware has one: make one middleware per kind and list them in a chain", p, strings.Join(kinds, ", "))
	}
	switch {
	case m.Chain != nil:
		if len(m.Chain) == 0 {
			return c.errAt(p, "%s is empty; list middlewares in it", p)
		}
	case m.Headers != nil:
		for _, ops := range []struct {
			key string
			o   *HeaderOps
		}{{"request", m.Headers.Request}, {"response", m.Headers.Response}} {
			if err := c.checkHeaderOps(p+"."+ops.key, ops.o); err != nil {
				return err
			}
		}
	case m.SecurityHeaders != nil:
		return c.checkSecurityHeaders(p, m.SecurityHeaders)
	case m.RedirectRegex != nil:
		r := m.RedirectRegex
		if r.Regex == "" || r.Replacement == "" {
			return c.errAt(p, "%s needs regex and replacement", p)
		}
		return c.checkRegex(p+".regex", r.Regex)
	case m.RedirectScheme != nil:
		r := m.RedirectScheme
		if r.Scheme != "http" && r.Scheme != "https" {
			return c.errAt(p+".scheme", "%s.scheme %q is unknown; use https or http", p, r.Scheme)
		}
		if r.Port < 0 || r.Port > 65535 {
			return c.errAt(p+".port", "%s.port %d is not a port (1-65535, or 0 for the scheme's own)", p, r.Port)
		}
	case m.StripPrefix != nil:
		if len(m.StripPrefix.Prefixes) == 0 {
			return c.errAt(p, "%s has no prefixes; list them: prefixes: [/api]", p)
		}
		for i, pre := range m.StripPrefix.Prefixes {
			if !strings.HasPrefix(pre, "/") || len(pre) < 2 {
				return c.errAt(fmt.Sprintf("%s.prefixes[%d]", p, i), "%s.prefixes[%d] %q must start with / and be more than /", p, i, pre)
			}
		}
	case m.StripPrefixRegex != nil:
		if m.StripPrefixRegex.Regex == "" {
			return c.errAt(p, "%s needs regex", p)
		}
		return c.checkRegex(p+".regex", m.StripPrefixRegex.Regex)
	case m.AddPrefix != nil:
		if !strings.HasPrefix(m.AddPrefix.Prefix, "/") || len(m.AddPrefix.Prefix) < 2 {
			return c.errAt(p+".prefix", "%s.prefix %q must start with / and be more than /", p, m.AddPrefix.Prefix)
		}
	case m.ReplacePath != nil:
		if !strings.HasPrefix(m.ReplacePath.Path, "/") {
			return c.errAt(p+".path", "%s.path %q must start with /", p, m.ReplacePath.Path)
		}
	case m.ReplacePathRegex != nil:
		r := m.ReplacePathRegex
		if r.Regex == "" || r.Replacement == "" {
			return c.errAt(p, "%s needs regex and replacement", p)
		}
		return c.checkRegex(p+".regex", r.Regex)
	case m.BasicAuth != nil:
		return c.checkBasicAuth(p, m.BasicAuth)
	case m.ForwardAuth != nil:
		return c.checkForwardAuth(p, m.ForwardAuth)
	case m.IPAllowList != nil:
		a := m.IPAllowList
		if len(a.SourceRange) == 0 {
			return c.errAt(p, "%s has no sourceRange; list the IPs or CIDRs let through", p)
		}
		for i, r := range a.SourceRange {
			if !isIPOrCIDR(r) {
				return c.errAt(fmt.Sprintf("%s.sourceRange[%d]", p, i), "%s.sourceRange[%d] %q is not an IP or CIDR; write e.g. 10.0.0.0/8 or 192.0.2.1", p, i, r)
			}
		}
		if a.Depth < 0 {
			return c.errAt(p+".depth", "%s.depth must not be negative", p)
		}
	case m.RateLimit != nil:
		r := m.RateLimit
		if r.Average <= 0 {
			return c.errAt(p+".average", "%s.average must be 1 or more (requests per period)", p)
		}
		if r.Burst < 1 || r.Period <= 0 || r.MaxSources < 1 {
			return c.errAt(p, "%s burst, period and maxSources must be positive", p)
		}
		return c.checkSource(p, r.SourceHeader, r.Depth)
	case m.InFlightReq != nil:
		if m.InFlightReq.Amount <= 0 {
			return c.errAt(p+".amount", "%s.amount must be 1 or more", p)
		}
		return c.checkSource(p, m.InFlightReq.SourceHeader, m.InFlightReq.Depth)
	case m.Compress != nil:
		return c.checkCompress(p, m.Compress)
	case m.Buffering != nil:
		b := m.Buffering
		if b.MaxRequestBodyBytes <= 0 {
			return c.errAt(p+".maxRequestBodyBytes", "%s.maxRequestBodyBytes must be 1 or more (bytes)", p)
		}
		if b.MemRequestBodyBytes < 0 || b.MemRequestBodyBytes > b.MaxRequestBodyBytes {
			return c.errAt(p+".memRequestBodyBytes", "%s.memRequestBodyBytes must be from 0 to maxRequestBodyBytes", p)
		}
	case m.CircuitBreaker != nil:
		b := m.CircuitBreaker
		if b.ErrorRatio < 0 || b.ErrorRatio > 1 {
			return c.errAt(p+".errorRatio", "%s.errorRatio %v is not from 0 to 1 (0.5 trips at half the answers failing)", p, b.ErrorRatio)
		}
		if b.ErrorRatio == 0 && b.Latency == 0 {
			return c.errAt(p, "%s trips on nothing; set errorRatio (e.g. 0.5) or latency (e.g. 2s)", p)
		}
		if b.Latency < 0 || b.Window <= 0 || b.FallbackDuration <= 0 || b.RecoveryDuration <= 0 || b.MinRequests < 1 {
			return c.errAt(p, "%s latency, window, fallbackDuration, recoveryDuration and minRequests must be positive", p)
		}
		if b.ResponseCode < 400 || b.ResponseCode > 599 {
			return c.errAt(p+".responseCode", "%s.responseCode %d is not an error status (400-599)", p, b.ResponseCode)
		}
	case m.Errors != nil:
		e := m.Errors
		if len(e.Status) == 0 {
			return c.errAt(p, "%s has no status; list codes or ranges, e.g. status: [\"500-599\"]", p)
		}
		for i, s := range e.Status {
			if _, _, err := ParseStatusRange(s); err != nil {
				return c.errAt(fmt.Sprintf("%s.status[%d]", p, i), "%s.status[%d]: %v", p, i, err)
			}
		}
		if _, ok := c.Services[e.Service]; !ok {
			return c.errAt(p+".service", "%s.service: no service named %q%s", p, e.Service, didYouMean(e.Service, sortedKeys(c.Services)))
		}
		if !strings.HasPrefix(e.Query, "/") {
			return c.errAt(p+".query", "%s.query %q must start with /", p, e.Query)
		}
	}
	return nil
}

// ParseStatusRange reads "404" or "500-599".
func ParseStatusRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi = lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a status (404) or range (500-599) of 100-599", s)
	}
	return lo, hi, nil
}

func (c *Config) checkHeaderOps(p string, o *HeaderOps) error {
	if o == nil {
		return nil
	}
	for _, m := range []struct {
		key string
		m   map[string]string
	}{{"set", o.Set}, {"add", o.Add}} {
		for _, k := range sortedKeys(m.m) {
			if !isToken(k) {
				return c.errAt(p+"."+m.key+"."+k, "%s.%s: %q is not a header name", p, m.key, k)
			}
			if strings.ContainsAny(m.m[k], "\r\n\x00") {
				return c.errAt(p+"."+m.key+"."+k, "%s.%s.%s holds a line break; a header value is one line", p, m.key, k)
			}
		}
	}
	for i, k := range o.Remove {
		if !isToken(k) {
			return c.errAt(fmt.Sprintf("%s.remove[%d]", p, i), "%s.remove[%d]: %q is not a header name", p, i, k)
		}
	}
	return nil
}

func (c *Config) checkSecurityHeaders(p string, s *SecurityHeaders) error {
	if f := s.FrameOptions; f != nil && *f != "" && !slices.Contains([]string{"DENY", "SAMEORIGIN"}, strings.ToUpper(*f)) {
		return c.errAt(p+".frameOptions", "%s.frameOptions %q is unknown; use DENY, SAMEORIGIN or \"\" to leave it out", p, *f)
	}
	for key, v := range map[string]string{
		"referrerPolicy": deref(s.ReferrerPolicy), "xssProtection": deref(s.XSSProtection),
		"contentSecurityPolicy": s.ContentSecurityPolicy, "permissionsPolicy": s.PermissionsPolicy,
		"crossOriginOpenerPolicy": s.CrossOriginOpenerPolicy,
	} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return c.errAt(p+"."+key, "%s.%s holds a line break; a header value is one line", p, key)
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (c *Config) checkBasicAuth(p string, b *BasicAuth) error {
	if b.UsersFile == "" {
		return c.errAt(p, "%s has no usersFile; make one with htpasswd -B -c users.htpasswd <user> and name it", p)
	}
	if _, err := htpasswd.ReadFile(b.UsersFile); err != nil {
		e := c.errAt(p+".usersFile", "%s.usersFile: %v", p, err)
		e.Err = err
		return e
	}
	if b.UserHeader != "" && !isToken(b.UserHeader) {
		return c.errAt(p+".userHeader", "%s.userHeader %q is not a header name", p, b.UserHeader)
	}
	if strings.ContainsAny(b.Realm, "\"\r\n\\") {
		return c.errAt(p+".realm", "%s.realm must not hold quotes, backslashes or line breaks", p)
	}
	return nil
}

func (c *Config) checkForwardAuth(p string, f *ForwardAuth) error {
	u, err := url.Parse(f.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c.errAt(p+".address", "%s.address is not an absolute http:// or https:// URL; write e.g. http://127.0.0.1:9091/auth", p)
	}
	if u.User != nil {
		return c.errAt(p+".address", "%s.address must not carry a user name or password", p)
	}
	for _, list := range []struct {
		key string
		l   []string
	}{{"authRequestHeaders", f.AuthRequestHeaders}, {"authResponseHeaders", f.AuthResponseHeaders}} {
		for i, h := range list.l {
			if !isToken(h) {
				return c.errAt(fmt.Sprintf("%s.%s[%d]", p, list.key, i), "%s.%s[%d]: %q is not a header name", p, list.key, i, h)
			}
		}
	}
	if f.Timeout < 0 {
		return c.errAt(p+".timeout", "%s.timeout must not be negative", p)
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			e := c.errAt(p+".caFile", "%s.caFile: cannot read %s: %v", p, f.CAFile, cause(err))
			e.Err = err
			return e
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return c.errAt(p+".caFile", "%s.caFile %s holds no PEM certificate", p, f.CAFile)
		}
	}
	return nil
}

func (c *Config) checkSource(p, header string, depth int) error {
	if header != "" && !isToken(header) {
		return c.errAt(p+".sourceHeader", "%s.sourceHeader %q is not a header name", p, header)
	}
	if depth < 0 {
		return c.errAt(p+".depth", "%s.depth must not be negative", p)
	}
	return nil
}

func (c *Config) checkCompress(p string, cp *Compress) error {
	seen := map[string]bool{}
	for i, e := range cp.Encodings {
		if e != "gzip" && e != "zstd" {
			return c.errAt(fmt.Sprintf("%s.encodings[%d]", p, i), "%s.encodings[%d] %q is unknown; use zstd or gzip", p, i, e)
		}
		if seen[e] {
			return c.errAt(fmt.Sprintf("%s.encodings[%d]", p, i), "%s.encodings lists %s twice", p, e)
		}
		seen[e] = true
	}
	if cp.MinSize < 0 {
		return c.errAt(p+".minSize", "%s.minSize must not be negative", p)
	}
	for i, ct := range cp.ContentTypes {
		typ, sub, ok := strings.Cut(ct, "/")
		if !ok || !isToken(typ) || (sub != "*" && !isToken(sub)) {
			return c.errAt(fmt.Sprintf("%s.contentTypes[%d]", p, i), "%s.contentTypes[%d] %q is not a media type; write e.g. text/html or text/*", p, i, ct)
		}
	}
	return nil
}

func isIPOrCIDR(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}
