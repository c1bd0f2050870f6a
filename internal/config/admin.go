package config

import (
	"net"
	"strings"
)

// DefaultAdminAddress is where the admin listener binds when admin.address
// is unset: loopback only.
const DefaultAdminAddress = "127.0.0.1:9180"

// Admin configures the admin listener: the JSON API under /api/v1/,
// Prometheus /metrics and the dashboard.
type Admin struct {
	// Address is host:port; default 127.0.0.1:9180. A non-loopback address
	// requires a token.
	Address string `yaml:"address" toml:"address" json:"address,omitempty"`
	// Token is the bearer token (${ENV} or file:); empty means zoku
	// generates one and writes it 0600 next to the storage.
	Token Secret `yaml:"token" toml:"token" json:"token,omitempty"`
	// Disabled turns the admin listener off.
	Disabled bool `yaml:"disabled" toml:"disabled" json:"disabled,omitempty"`
}

// applyAdminDefaults fills the admin section's defaults.
func (c *Config) applyAdminDefaults() {
	setStr(&c.Admin.Address, DefaultAdminAddress)
}

// validateAdmin checks the admin section: the address is host:port, and a
// listener reachable from other machines needs an explicit token (a
// generated one sits in a file only this machine can read, which is no
// protection on a shared network).
func (c *Config) validateAdmin() error {
	a := c.Admin
	if a.Disabled {
		return nil
	}
	if _, err := splitAddress(a.Address); err != nil {
		return c.errAt("admin.address", "admin.address %q: %v; write host:port, e.g. \"127.0.0.1:9180\"", a.Address, err)
	}
	if a.Token == "" && !IsLoopback(a.Address) {
		return c.errAt("admin.address", "admin.address %q is reachable from other machines and admin.token is not set; set admin.token (e.g. token: ${ZOKU_ADMIN_TOKEN}) or listen on 127.0.0.1", a.Address)
	}
	return nil
}

// IsLoopback reports whether the host of addr (host:port) is a loopback
// address or "localhost". An empty host (all interfaces) is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
