package config

// Target is a load balancer without ACME that zoku deploys certificates
// to (`zoku deploy`, and `zoku run` on the renewal schedule).
type Target struct {
	// Type: netscaler, haproxy, nginx or exec.
	Type string `yaml:"type" toml:"type" json:"type"`
	// Certificates are the names (certificates.domains main names) this
	// target needs.
	Certificates []string `yaml:"certificates" toml:"certificates" json:"certificates"`
}

// applyTargetDefaults fills the targets' defaults.
func (c *Config) applyTargetDefaults() {}

// validateTargets checks the targets.
func (c *Config) validateTargets() error { return nil }
