package config

import (
	"slices"
	"strings"
	"time"
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
// normalises names (route hosts and certificate domains to lower case
// without a trailing dot). Load runs it before Validate.
func (c *Config) applyDefaults() {
	c.applyAdminDefaults()
	c.applyTargetDefaults()
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
	for i := range c.Certificates.Domains {
		ds := &c.Certificates.Domains[i]
		ds.Main = normName(ds.Main)
		for j := range ds.SANs {
			ds.SANs[j] = normName(ds.SANs[j])
		}
	}

	// Routes without entryPoints serve on every entry point that does not
	// redirect (sorted, so the result is stable).
	var serving []string
	for name, ep := range c.EntryPoints {
		if ep != nil && ep.Redirect == nil {
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
		if len(r.EntryPoints) == 0 {
			r.EntryPoints = slices.Clone(serving)
		}
	}

	for _, s := range c.Services {
		if s == nil {
			continue
		}
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

func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
