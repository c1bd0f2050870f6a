package exec

import (
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy/kind"
)

// Settings is the exec: section of a target: a command run after each new
// certificate, with the hook variables of lego, certbot and acme.sh.
type Settings struct {
	Command string          `yaml:"command" toml:"command" json:"command"`
	Timeout config.Duration `yaml:"timeout" toml:"timeout" json:"timeout"` // default 2m
}

func init() {
	kind.Register(kind.Kind[Settings]{
		Name:     "exec",
		Defaults: defaults,
		Validate: validate,
		New:      build,
	})
}

func defaults(_ *config.Target, e *Settings) {
	if e.Timeout == 0 {
		e.Timeout = config.Duration(config.DefaultExecTimeout)
	}
}

func validate(k *config.TargetCheck, _ *config.Target, e *Settings) error {
	if strings.TrimSpace(e.Command) == "" {
		return k.Errorf(k.Path, "%s has no exec.command; add exec: {command: /usr/local/bin/push-cert} (it gets the lego, certbot and acme.sh hook variables)", k.Path)
	}
	return nil
}

func build(env kind.Env, e *Settings) (kind.Target, error) {
	return New(Options{
		Name: env.Name, Command: e.Command, Timeout: e.Timeout.D(), Store: env.Store,
		AccountID: env.AccountID, AccountEmail: env.AccountEmail, Server: env.Server,
		VerifyAddress: env.Verify.Address, VerifyServerName: env.Verify.ServerName, VerifyTimeout: env.Verify.Timeout,
		Output: env.Output, Logger: env.Logger,
	})
}
