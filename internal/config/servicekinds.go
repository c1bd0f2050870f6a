package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Sticky keeps each client on one server (or child service) by a cookie
// that names it by a hash, never by its address.
type Sticky struct {
	Cookie StickyCookie `yaml:"cookie" toml:"cookie" json:"cookie"`
}

// StickyCookie is the sticky-session cookie's attributes.
type StickyCookie struct {
	// Name of the cookie; default "zoku_" and a hash of the service name.
	Name string `yaml:"name" toml:"name" json:"name"`
	// Secure, HTTPOnly and SameSite (lax, strict or none) are the
	// cookie's attributes; SameSite none needs Secure.
	Secure   bool   `yaml:"secure" toml:"secure" json:"secure,omitempty"`
	HTTPOnly bool   `yaml:"httpOnly" toml:"httpOnly" json:"httpOnly,omitempty"`
	SameSite string `yaml:"sameSite" toml:"sameSite" json:"sameSite,omitempty"`
	// MaxAge of the cookie; 0: until the browser closes.
	MaxAge Duration `yaml:"maxAge" toml:"maxAge" json:"maxAge"`
	// Path of the cookie; default "/".
	Path string `yaml:"path" toml:"path" json:"path"`
}

// Failover sends requests to Service while it has a server up, and to
// Fallback otherwise.
type Failover struct {
	Service  string `yaml:"service" toml:"service" json:"service"`
	Fallback string `yaml:"fallback" toml:"fallback" json:"fallback"`
}

// Mirroring sends every request to Service, whose answer the client gets,
// and a copy of a share of them to each mirror, whose answers are
// discarded.
type Mirroring struct {
	Service string   `yaml:"service" toml:"service" json:"service"`
	Mirrors []Mirror `yaml:"mirrors" toml:"mirrors" json:"mirrors"`
	// MaxBodyBytes: requests with a larger body are not mirrored;
	// default 1 MiB.
	MaxBodyBytes int64 `yaml:"maxBodyBytes" toml:"maxBodyBytes" json:"maxBodyBytes"`
	// MaxInFlight bounds the mirror copies under way at once (more are
	// dropped); default 100.
	MaxInFlight int `yaml:"maxInFlight" toml:"maxInFlight" json:"maxInFlight"`
}

// Mirror is one mirror of a Mirroring service.
type Mirror struct {
	Service string `yaml:"service" toml:"service" json:"service"`
	// Percent of requests copied (0-100); default 100.
	Percent *int `yaml:"percent" toml:"percent" json:"percent,omitempty"`
}

// Weighted spreads requests over services by weight (smooth weighted
// round robin over those with a server up).
type Weighted struct {
	Services []WeightedService `yaml:"services" toml:"services" json:"services"`
}

// WeightedService is one service of a Weighted service.
type WeightedService struct {
	Service string `yaml:"service" toml:"service" json:"service"`
	Weight  int    `yaml:"weight" toml:"weight" json:"weight"` // default 1
}

// Kind returns the service's kind: servers, static, failover, mirroring
// or weighted ("" when it has none).
func (s *Service) Kind() string {
	switch {
	case len(s.Servers) > 0:
		return "servers"
	case s.Static != nil:
		return "static"
	case s.Failover != nil:
		return "failover"
	case s.Mirroring != nil:
		return "mirroring"
	case s.Weighted != nil:
		return "weighted"
	}
	return ""
}

// Children returns the names of the services s sends requests to (none
// for servers and static).
func (s *Service) Children() []string {
	var out []string
	switch {
	case s.Failover != nil:
		out = append(out, s.Failover.Service, s.Failover.Fallback)
	case s.Mirroring != nil:
		out = append(out, s.Mirroring.Service)
		for _, m := range s.Mirroring.Mirrors {
			out = append(out, m.Service)
		}
	case s.Weighted != nil:
		for _, w := range s.Weighted.Services {
			out = append(out, w.Service)
		}
	}
	return out
}

// StickyCookieName is the default sticky cookie name of service name:
// stable across restarts and nodes, and telling nothing about the
// service.
func StickyCookieName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "zoku_" + hex.EncodeToString(sum[:6])
}

func (c *Config) applyServiceKindDefaults(name string, s *Service) {
	if st := s.Sticky; st != nil {
		setStr(&st.Cookie.Name, StickyCookieName(name))
		setStr(&st.Cookie.Path, DefaultStickyCookiePath)
		st.Cookie.SameSite = strings.ToLower(st.Cookie.SameSite)
	}
	if m := s.Mirroring; m != nil {
		if m.MaxBodyBytes == 0 {
			m.MaxBodyBytes = DefaultMirrorMaxBody
		}
		if m.MaxInFlight == 0 {
			m.MaxInFlight = DefaultMirrorMaxInFlight
		}
		for i := range m.Mirrors {
			if m.Mirrors[i].Percent == nil {
				m.Mirrors[i].Percent = new(100)
			}
		}
	}
	if w := s.Weighted; w != nil {
		for i := range w.Services {
			if w.Services[i].Weight == 0 {
				w.Services[i].Weight = 1
			}
		}
	}
}

// serviceKinds lists the keys of which a service has exactly one.
const serviceKinds = "servers, static, failover, mirroring or weighted"

// validateServiceKind checks the kinds beyond servers and static: the
// services they name, sticky cookies, h2c servers.
func (c *Config) validateServiceKind(name string, s *Service) error {
	p := "services." + name
	n := 0
	for _, set := range []bool{len(s.Servers) > 0, s.Static != nil, s.Failover != nil, s.Mirroring != nil, s.Weighted != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return c.errAt(p, "%s needs exactly one of %s (it has %d)", p, serviceKinds, n)
	}
	ref := func(key, svc string) error {
		if svc == "" {
			return c.errAt(p+"."+key, "%s.%s names no service; give the name of a service", p, key)
		}
		if svc == name {
			return c.errAt(p+"."+key, "%s.%s names the service itself; name another service", p, key)
		}
		if _, ok := c.Services[svc]; !ok {
			return c.errAt(p+"."+key, "%s.%s: no service named %q%s", p, key, svc, didYouMean(svc, sortedKeys(c.Services)))
		}
		return nil
	}
	if f := s.Failover; f != nil {
		if err := ref("failover.service", f.Service); err != nil {
			return err
		}
		if err := ref("failover.fallback", f.Fallback); err != nil {
			return err
		}
	}
	if m := s.Mirroring; m != nil {
		if err := ref("mirroring.service", m.Service); err != nil {
			return err
		}
		if len(m.Mirrors) == 0 {
			return c.errAt(p+".mirroring", "%s.mirroring has no mirrors; list mirrors: [{service: <name>, percent: 10}]", p)
		}
		for i, mr := range m.Mirrors {
			key := fmt.Sprintf("mirroring.mirrors[%d]", i)
			if err := ref(key+".service", mr.Service); err != nil {
				return err
			}
			if mr.Percent != nil && (*mr.Percent < 0 || *mr.Percent > 100) {
				return c.errAt(p+"."+key+".percent", "%s.%s.percent %d is not from 0 to 100", p, key, *mr.Percent)
			}
		}
		if m.MaxBodyBytes < 0 || m.MaxInFlight < 0 {
			return c.errAt(p+".mirroring", "%s.mirroring maxBodyBytes and maxInFlight must not be negative", p)
		}
	}
	if w := s.Weighted; w != nil {
		if len(w.Services) == 0 {
			return c.errAt(p+".weighted", "%s.weighted has no services; list services: [{service: <name>, weight: 3}]", p)
		}
		for i, ws := range w.Services {
			key := fmt.Sprintf("weighted.services[%d]", i)
			if err := ref(key+".service", ws.Service); err != nil {
				return err
			}
			if ws.Weight < 0 {
				return c.errAt(p+"."+key+".weight", "%s.%s.weight must be 1 or more", p, key)
			}
		}
	}
	if st := s.Sticky; st != nil {
		if len(s.Servers) == 0 && s.Weighted == nil {
			return c.errAt(p+".sticky", "%s.sticky needs servers or weighted in the same service (it picks one of them)", p)
		}
		ck := st.Cookie
		if !validCookieName(ck.Name) {
			return c.errAt(p+".sticky.cookie.name", "%s.sticky.cookie.name %q is not a cookie name (letters, digits and !#$%%&'*+-.^_`|~)", p, ck.Name)
		}
		if !slices.Contains([]string{"", "lax", "strict", "none"}, ck.SameSite) {
			return c.errAt(p+".sticky.cookie.sameSite", "%s.sticky.cookie.sameSite %q is unknown; use lax, strict or none", p, ck.SameSite)
		}
		if ck.SameSite == "none" && !ck.Secure {
			return c.errAt(p+".sticky.cookie.sameSite", "%s.sticky.cookie.sameSite none needs secure: true (browsers drop the cookie otherwise)", p)
		}
		if ck.MaxAge < 0 {
			return c.errAt(p+".sticky.cookie.maxAge", "%s.sticky.cookie.maxAge must not be negative", p)
		}
		if !strings.HasPrefix(ck.Path, "/") || strings.ContainsAny(ck.Path, ";\r\n") {
			return c.errAt(p+".sticky.cookie.path", "%s.sticky.cookie.path %q must start with / and hold no ;", p, ck.Path)
		}
	}
	h2c := 0
	for _, sv := range s.Servers {
		if u, err := url.Parse(sv.URL); err == nil && u.Scheme == "h2c" {
			h2c++
		}
	}
	if h2c > 0 && h2c < len(s.Servers) {
		return c.errAt(p+".servers", "%s mixes h2c:// servers with others; put h2c:// servers (plain HTTP/2) in a service of their own", p)
	}
	return nil
}

// validateServiceGraph refuses services that reach themselves through
// failover, mirroring or weighted (a request would go round for ever).
func (c *Config) validateServiceGraph() error {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case visiting:
			cycle := append(path[slices.Index(path, name):], name)
			return c.errAt("services."+cycle[0], "services.%s reaches itself (%s); a service may not send requests back to itself", cycle[0], strings.Join(cycle, " -> "))
		case done:
			return nil
		}
		state[name] = visiting
		if s := c.Services[name]; s != nil {
			for _, child := range s.Children() {
				if _, ok := c.Services[child]; ok {
					if err := visit(child, append(path, name)); err != nil {
						return err
					}
				}
			}
		}
		state[name] = done
		return nil
	}
	for _, name := range sortedKeys(c.Services) {
		if err := visit(name, nil); err != nil {
			return err
		}
	}
	return nil
}

// validCookieName reports whether s is a cookie name (an RFC 9110 token).
func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			continue
		}
		return false
	}
	return true
}
