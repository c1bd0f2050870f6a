package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/storage/sealed"
)

// Storage says how the storage of certificates.acme.storage is reached
// and kept: the TLS and credentials of an etcd cluster, and encryption
// of private keys at rest. Changing it needs a restart.
type Storage struct {
	// Etcd applies when the storage is an etcd:// or etcds:// URL (and to
	// the etcd side of `zoku storage copy --config`).
	Etcd *StorageEtcd `yaml:"etcd" toml:"etcd" json:"etcd,omitempty"`
	// Encryption seals private keys at rest (AES-256-GCM).
	Encryption *StorageEncryption `yaml:"encryption" toml:"encryption" json:"encryption,omitempty"`
}

// StorageEtcd is how zoku reaches an etcd cluster. Zero durations mean
// the defaults.
type StorageEtcd struct {
	// CAFile holds the CA certificates of the members (etcds://); empty
	// means the system's roots.
	CAFile string `yaml:"caFile" toml:"caFile" json:"caFile,omitempty"`
	// CertFile and KeyFile are a client certificate and its key, for a
	// cluster started with --client-cert-auth; both or neither. They are
	// read again at every new connection, so a renewed certificate needs
	// no restart.
	CertFile string `yaml:"certFile" toml:"certFile" json:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile" toml:"keyFile" json:"keyFile,omitempty"`
	// Username and Password authenticate with etcd's auth; both or
	// neither. Password is a secret (${ENV} or file:).
	Username string `yaml:"username" toml:"username" json:"username,omitempty"`
	Password Secret `yaml:"password" toml:"password" json:"password,omitempty"`
	// DialTimeout bounds reaching the cluster at start; default 5s.
	DialTimeout Duration `yaml:"dialTimeout" toml:"dialTimeout" json:"dialTimeout,omitempty"`
	// RequestTimeout bounds each request; default 10s.
	RequestTimeout Duration `yaml:"requestTimeout" toml:"requestTimeout" json:"requestTimeout,omitempty"`
	// LeaseTTL is how long the locks of a node that stopped answering
	// outlive it; default 10s, whole seconds.
	LeaseTTL Duration `yaml:"leaseTTL" toml:"leaseTTL" json:"leaseTTL,omitempty"`
}

// StorageEncryption names the storage key: exactly one of KeyFile and
// Key.
type StorageEncryption struct {
	// KeyFile holds the key: 32 random bytes, or their base64 or hex text
	// (`zoku storage keygen FILE` writes one).
	KeyFile string `yaml:"keyFile" toml:"keyFile" json:"keyFile,omitempty"`
	// Key is the key as base64 or hex text; a secret, e.g. ${ZOKU_STORAGE_KEY}.
	Key Secret `yaml:"key" toml:"key" json:"key,omitempty"`
}

// Bounds of the etcd durations.
const (
	minEtcdTimeout  = 100 * time.Millisecond
	maxEtcdTimeout  = 10 * time.Minute
	minEtcdLeaseTTL = 2 * time.Second // etcd raises shorter TTLs to its minimum anyway
	maxEtcdLeaseTTL = time.Hour
)

// IsEtcdURL reports whether a storage setting names an etcd cluster.
func IsEtcdURL(s string) bool {
	return strings.HasPrefix(s, "etcd://") || strings.HasPrefix(s, "etcds://")
}

// validateStorage checks the storage section against certificates.acme.storage.
func (c *Config) validateStorage() error {
	if e := c.Storage.Etcd; e != nil {
		if err := c.validateStorageEtcd(e); err != nil {
			return err
		}
	}
	if enc := c.Storage.Encryption; enc != nil {
		p := "storage.encryption"
		switch {
		case enc.KeyFile == "" && enc.Key == "":
			return c.errAt(p, "%s needs keyFile (a file made by 'zoku storage keygen FILE') or key (e.g. key: ${ZOKU_STORAGE_KEY})", p)
		case enc.KeyFile != "" && enc.Key != "":
			return c.errAt(p+".key", "%s: give keyFile or key, not both", p)
		case enc.KeyFile != "":
			if _, err := sealed.LoadKeyFile(enc.KeyFile); err != nil {
				e := c.errAt(p+".keyFile", "%s.keyFile: %s", p, strings.TrimPrefix(err.Error(), "sealed: "))
				e.Err = err
				return e
			}
		default:
			// The error of ParseKey never shows the key.
			if _, err := sealed.ParseKey([]byte(enc.Key)); err != nil {
				return c.errAt(p+".key", "%s: %s", p, strings.TrimPrefix(err.Error(), "sealed: "))
			}
		}
	}
	return nil
}

func (c *Config) validateStorageEtcd(e *StorageEtcd) error {
	p := "storage.etcd"
	spec := c.Certificates.ACME.Storage
	for _, f := range []struct {
		key, file string
	}{{"caFile", e.CAFile}, {"certFile", e.CertFile}, {"keyFile", e.KeyFile}} {
		if f.file != "" && strings.HasPrefix(spec, "etcd://") {
			return c.errAt(p+"."+f.key, "%s.%s is set but certificates.acme.storage is etcd:// (no TLS); write etcds://", p, f.key)
		}
	}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			ce := c.errAt(p+".caFile", "%s.caFile: cannot read %s: %v; check the path and its permissions", p, e.CAFile, cause(err))
			ce.Err = err
			return ce
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return c.errAt(p+".caFile", "%s.caFile: %s holds no PEM certificate", p, e.CAFile)
		}
	}
	switch {
	case e.CertFile != "" && e.KeyFile == "":
		return c.errAt(p+".certFile", "%s.certFile needs keyFile too (the client certificate's key)", p)
	case e.KeyFile != "" && e.CertFile == "":
		return c.errAt(p+".keyFile", "%s.keyFile needs certFile too (the client certificate)", p)
	case e.CertFile != "":
		if _, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile); err != nil {
			ce := c.errAt(p+".certFile", "%s (%s, %s): %v; check both files exist, are PEM and belong together", p, e.CertFile, e.KeyFile, cause(err))
			ce.Err = err
			return ce
		}
	}
	switch {
	case e.Username != "" && e.Password == "":
		return c.errAt(p+".username", "%s.username needs password too (e.g. password: ${ETCD_PASSWORD})", p)
	case e.Password != "" && e.Username == "":
		return c.errAt(p+".password", "%s.password needs username too", p)
	case e.Username != "" && etcdURLHasUser(spec):
		return c.errAt(p+".username", "%s.username is set and certificates.acme.storage has a user too; keep one (the config's, with the password as ${ENV})", p)
	}
	for _, d := range []struct {
		key      string
		v        Duration
		min, max time.Duration
	}{
		{"dialTimeout", e.DialTimeout, minEtcdTimeout, maxEtcdTimeout},
		{"requestTimeout", e.RequestTimeout, minEtcdTimeout, maxEtcdTimeout},
		{"leaseTTL", e.LeaseTTL, minEtcdLeaseTTL, maxEtcdLeaseTTL},
	} {
		if d.v != 0 && (time.Duration(d.v) < d.min || time.Duration(d.v) > d.max) {
			return c.errAt(p+"."+d.key, "%s.%s %s is out of range; use %s to %s", p, d.key, time.Duration(d.v), d.min, d.max)
		}
	}
	return nil
}

// etcdURLHasUser reports whether an etcd:// URL carries user information
// (etcd://user:password@host:2379/prefix).
func etcdURLHasUser(spec string) bool {
	if !IsEtcdURL(spec) {
		return false
	}
	_, rest, _ := strings.Cut(spec, "://")
	hosts, _, _ := strings.Cut(rest, "/")
	return strings.Contains(hosts, "@")
}
