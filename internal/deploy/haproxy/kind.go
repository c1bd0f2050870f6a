package haproxy

import (
	"path/filepath"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy/kind"
)

// Defaults of the haproxy section (docs/targets.md lists them).
const (
	DefaultSocket = "/run/haproxy/admin.sock"
	DefaultCrtDir = "/etc/haproxy/certs"
)

// Settings is the haproxy: section of a target: an HAProxy updated
// through its Runtime API.
type Settings struct {
	// Socket is the admin socket: a path, or host:port; default
	// /run/haproxy/admin.sock. It needs "level admin".
	Socket string `yaml:"socket" toml:"socket" json:"socket,omitempty"`
	// MasterCLI prefixes commands with "@1 " (master CLI socket).
	MasterCLI bool `yaml:"masterCLI" toml:"masterCLI" json:"masterCLI,omitempty"`
	// CrtDir is where <name>.pem files are written; default
	// /etc/haproxy/certs. The bind line loads it with "crt <dir>/".
	CrtDir string `yaml:"crtDir" toml:"crtDir" json:"crtDir,omitempty"`
	// CrtList is the crt-list file or directory a new certificate is added
	// to; default crtDir.
	CrtList string `yaml:"crtList" toml:"crtList" json:"crtList,omitempty"`
	// LockFile serialises deploys between processes; default
	// <crtDir>/.zoku.lock.
	LockFile string `yaml:"lockFile" toml:"lockFile" json:"lockFile,omitempty"`
}

func init() {
	kind.Register(kind.Kind[Settings]{
		Name:     "haproxy",
		Defaults: defaults,
		Validate: validate,
		New:      build,
	})
}

func defaults(_ *config.Target, h *Settings) {
	setStr := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	setStr(&h.Socket, DefaultSocket)
	setStr(&h.CrtDir, DefaultCrtDir)
	setStr(&h.CrtList, h.CrtDir)
	setStr(&h.LockFile, filepath.Join(h.CrtDir, ".zoku.lock"))
}

func validate(k *config.TargetCheck, _ *config.Target, h *Settings) error {
	hp := k.Section
	if !strings.HasPrefix(h.Socket, "/") {
		if err := k.HostPort(h.Socket); err != nil {
			return k.Errorf(hp+".socket", "%s.socket %q is neither an absolute path nor host:port", hp, h.Socket)
		}
	}
	if !filepath.IsAbs(h.CrtDir) {
		return k.Errorf(hp+".crtDir", "%s.crtDir %q must be an absolute path: HAProxy names certificates by the path in its config", hp, h.CrtDir)
	}
	if !filepath.IsAbs(strings.TrimSuffix(h.CrtList, "/")) {
		return k.Errorf(hp+".crtList", "%s.crtList %q must be an absolute path", hp, h.CrtList)
	}
	return nil
}

func build(env kind.Env, h *Settings) (kind.Target, error) {
	return New(Options{
		Name: env.Name, Socket: h.Socket, MasterCLI: h.MasterCLI, CrtDir: h.CrtDir, CrtList: h.CrtList, LockFile: h.LockFile,
		VerifyAddress: env.Verify.Address, VerifyServerName: env.Verify.ServerName, VerifyTimeout: env.Verify.Timeout, Logger: env.Logger,
	})
}
