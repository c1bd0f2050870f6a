package config

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
func (c *Config) applyAdminDefaults() {}

// validateAdmin checks the admin section.
func (c *Config) validateAdmin() error { return nil }
