package nginx

import (
	"strings"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy/kind"
)

// Defaults of the nginx section (docs/targets.md lists them).
const (
	DefaultCertFile = "/etc/nginx/zoku/{name}/fullchain.pem"
	DefaultKeyFile  = "/etc/nginx/zoku/{name}/privkey.pem"
	DefaultVerify   = "127.0.0.1:443"
	DefaultPIDFile  = "/run/nginx.pid"
	DefaultTimeout  = 60 * time.Second
)

// Settings is the nginx: section of a target: an nginx whose files zoku
// writes, tests and reloads. "{name}" in a path is the certificate's
// file-safe name.
type Settings struct {
	CertFile string `yaml:"certFile" toml:"certFile" json:"certFile,omitempty"` // full chain
	KeyFile  string `yaml:"keyFile" toml:"keyFile" json:"keyFile,omitempty"`
	// TestCommand checks the config; default [nginx, -t, -q].
	TestCommand []string `yaml:"testCommand" toml:"testCommand" json:"testCommand,omitempty"`
	// ReloadCommand reloads; default [nginx, -s, reload]. An empty list
	// ([]) reloads with SIGHUP to the pidFile's process instead.
	ReloadCommand []string `yaml:"reloadCommand" toml:"reloadCommand" json:"reloadCommand,omitempty"`
	// PIDFile holds the master's pid; default /run/nginx.pid. After a
	// reload zoku waits until the old workers stop taking connections.
	PIDFile string `yaml:"pidFile" toml:"pidFile" json:"pidFile,omitempty"`
	// Timeout of each command; default 60s.
	Timeout config.Duration `yaml:"timeout" toml:"timeout" json:"timeout"`
}

func init() {
	kind.Register(kind.Kind[Settings]{
		Name:     "nginx",
		Defaults: defaults,
		Validate: validate,
		New:      build,
	})
}

func defaults(t *config.Target, n *Settings) {
	if n.CertFile == "" {
		n.CertFile = DefaultCertFile
	}
	if n.KeyFile == "" {
		n.KeyFile = DefaultKeyFile
	}
	if len(n.TestCommand) == 0 {
		n.TestCommand = []string{"nginx", "-t", "-q"}
	}
	if n.ReloadCommand == nil {
		n.ReloadCommand = []string{"nginx", "-s", "reload"}
	}
	if n.PIDFile == "" {
		n.PIDFile = DefaultPIDFile
	}
	if n.Timeout == 0 {
		n.Timeout = config.Duration(DefaultTimeout)
	}
	if t.Verify == nil {
		t.Verify = &config.TargetVerify{Address: DefaultVerify, Timeout: config.Duration(config.DefaultVerifyTimeout)}
	}
}

func validate(k *config.TargetCheck, t *config.Target, n *Settings) error {
	np := k.Section
	if n.CertFile == n.KeyFile {
		return k.Errorf(np, "%s.certFile and keyFile are the same file; give them different paths", np)
	}
	if len(t.Certificates) > 1 && (!strings.Contains(n.CertFile, "{name}") || !strings.Contains(n.KeyFile, "{name}")) {
		return k.Errorf(np, "%s serves %d certificates; put {name} in certFile and keyFile so each gets its own files", np, len(t.Certificates))
	}
	if len(n.TestCommand) == 0 || n.TestCommand[0] == "" {
		return k.Errorf(np+".testCommand", "%s.testCommand is empty; the default is [nginx, -t, -q]", np)
	}
	return nil
}

func build(env kind.Env, n *Settings) (kind.Target, error) {
	return New(Options{
		Name: env.Name, CertFile: n.CertFile, KeyFile: n.KeyFile, TestCommand: n.TestCommand, ReloadCommand: n.ReloadCommand,
		PIDFile: n.PIDFile, Timeout: n.Timeout.D(), VerifyAddress: env.Verify.Address, VerifyServerName: env.Verify.ServerName,
		VerifyTimeout: env.Verify.Timeout, Logger: env.Logger,
	})
}
