package config

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// The documented defaults (docs/config.md lists them with every key).
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
	DefaultHSTSMaxAge        = 365 * 24 * time.Hour
	DefaultStorage           = "./.zoku"
	DefaultKeyType           = "ec256"
	DefaultEmbeddedValidity  = 90 * 24 * time.Hour
	DefaultStrategy          = "round-robin"
	DefaultHealthPath        = "/"
	DefaultHealthInterval    = 10 * time.Second
	DefaultHealthTimeout     = 2 * time.Second
	DefaultMaxFailures       = 3
	DefaultFailureWindow     = 10 * time.Second
	DefaultCooldown          = 30 * time.Second
	DefaultTryTimeout        = 30 * time.Second
	DefaultRetries           = 1
	DefaultStaticStatus      = 200
	DefaultStaticContentType = "text/plain; charset=utf-8"
)

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

func setStr(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// applyDefaults fills every zero value that has a documented default and
// normalises names (route hosts, certificate domains and on-demand
// patterns to lower case without a trailing dot, internationalised names
// to their xn-- form). Load runs it before Validate.
func (c *Config) applyDefaults() {
	c.applyAdminDefaults()
	c.applyTargetDefaults()
	c.applyMiddlewareDefaults() // middlewares.go
	c.applyL4Defaults()
	c.applyKubernetesDefaults()
	for _, ep := range c.EntryPoints {
		if ep == nil {
			continue
		}
		setDur(&ep.Timeouts.ReadHeader, DefaultReadHeaderTimeout)
		setDur(&ep.Timeouts.Read, DefaultReadTimeout)
		setDur(&ep.Timeouts.Idle, DefaultIdleTimeout)
		setDur(&ep.Timeouts.Shutdown, DefaultShutdownTimeout)
		if ep.MaxHeaderBytes == 0 {
			ep.MaxHeaderBytes = DefaultMaxHeaderBytes
		}
		if r := ep.Redirect; r != nil {
			setStr(&r.Scheme, "https")
			if r.Permanent == nil {
				r.Permanent = new(true)
			}
		}
		if t := ep.TLS; t != nil {
			setStr(&t.MinVersion, "1.2")
			setStr(&t.MaxVersion, "1.3")
			if len(t.ALPN) == 0 {
				t.ALPN = []string{"h2", "http/1.1"}
			}
		}
		if h := ep.HSTS; h != nil {
			setDur(&h.MaxAge, DefaultHSTSMaxAge)
		}
	}

	a := &c.Certificates.ACME
	setStr(&a.Storage, DefaultStorage)
	setStr(&a.KeyType, DefaultKeyType)
	if a.Server == "embedded" {
		setDur(&a.Embedded.Validity, DefaultEmbeddedValidity)
	}
	if od := c.Certificates.OnDemand; od != nil {
		for i := range od.Allow {
			od.Allow[i] = normName(od.Allow[i])
		}
	}
	for i := range c.Certificates.Domains {
		ds := &c.Certificates.Domains[i]
		ds.Main = normName(ds.Main)
		for j := range ds.SANs {
			ds.SANs[j] = normName(ds.SANs[j])
		}
	}

	// Routes without entryPoints serve on every entry point that does not
	// redirect and whose TCP routes leave connections to HTTP (sorted, so
	// the result is stable).
	var serving []string
	for name, ep := range c.EntryPoints {
		if ep != nil && ep.Redirect == nil && !c.TCPClaimsAll(name) {
			serving = append(serving, name)
		}
	}
	slices.Sort(serving)
	for _, r := range c.Routes {
		if r == nil {
			continue
		}
		r.Host = normName(r.Host)
		setStr(&r.PathPrefix, "/")
		for i, m := range r.Methods {
			r.Methods[i] = strings.ToUpper(m)
		}
		if len(r.EntryPoints) == 0 {
			r.EntryPoints = slices.Clone(serving)
		}
	}

	for name, s := range c.Services {
		if s == nil {
			continue
		}
		c.applyServiceKindDefaults(name, s) // servicekinds.go
		setStr(&s.Strategy, DefaultStrategy)
		for i := range s.Servers {
			if s.Servers[i].Weight == 0 {
				s.Servers[i].Weight = 1
			}
		}
		if h := s.HealthCheck; h != nil {
			setStr(&h.Path, DefaultHealthPath)
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
		setDur(&s.TryTimeout, DefaultTryTimeout)
		if s.Retries == nil {
			s.Retries = new(DefaultRetries)
		}
		if st := s.Static; st != nil {
			if st.Status == 0 {
				st.Status = DefaultStaticStatus
			}
			setStr(&st.ContentType, DefaultStaticContentType)
		}
	}

	setStr(&c.Log.Format, "text")
	setStr(&c.Log.Level, "info")
}

// idnaProfile converts internationalised names the way a browser looks
// them up (UTS #46, non-transitional), checking each label.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(true), idna.ValidateLabels(true))

// normName is a host name as zoku matches it: lower case, no trailing dot,
// and an internationalised name (bücher.example) in its ASCII form
// (xn--bcher-kva.example), which is what clients send in SNI and Host and
// what a CA certifies. A name that is not valid IDNA is returned lower
// cased, for Validate to refuse.
func normName(s string) string {
	n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if isASCII(n) {
		return n
	}
	wild := strings.HasPrefix(n, "*.")
	if wild {
		n = n[2:]
	}
	ascii, err := idnaProfile.ToASCII(n)
	if err != nil {
		return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	}
	if wild {
		ascii = "*." + ascii
	}
	return ascii
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
