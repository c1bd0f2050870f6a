package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/storage/sealed"
)

// The environment variables that name the storage key for commands
// without a config file (and for a config without storage.encryption).
const (
	envStorageKeyFile = "ZOKU_STORAGE_KEY_FILE"
	envStorageKey     = "ZOKU_STORAGE_KEY"
)

// openStore opens the storage named by spec: a folder (lego's layout;
// "file:" in front is allowed), or "etcd://host:2379,host:2379/prefix"
// ("etcds://" for TLS) for a cluster. setting names the flag or config
// key the spec came from, for the one-line error. The closer releases the
// backend (the etcd connection and its locks). It reads no storage key:
// a sealed value fails to load with an error that says which key it
// needs (see openStoreWith).
func openStore(ctx context.Context, spec, setting string) (*storage.Store, io.Closer, error) {
	return openStoreWith(ctx, spec, setting, nil, nil)
}

// openStoreWith is openStore with the config's storage section sc (nil
// when there is no config): its etcd settings apply to an etcd:// spec,
// and its encryption key seals private keys. When sc sets no encryption,
// getenv (nil: none) may name the key in ZOKU_STORAGE_KEY_FILE or
// ZOKU_STORAGE_KEY. Either way the backend recognises sealed values.
func openStoreWith(ctx context.Context, spec, setting string, sc *config.Storage, getenv func(string) string) (*storage.Store, io.Closer, error) {
	key, err := storageKey(sc, getenv)
	if err != nil {
		return nil, nil, err
	}
	var etcd *config.StorageEtcd
	if sc != nil {
		etcd = sc.Etcd
	}
	b, closer, err := openBackend(ctx, spec, setting, etcd)
	if err != nil {
		return nil, nil, err
	}
	return withPFX(storage.New(sealed.Wrap(b, sealed.Options{Key: key}))), closer, nil
}

// openBackend opens the backend of spec, applying etcd (nil: defaults) to
// an etcd:// or etcds:// spec.
func openBackend(ctx context.Context, spec, setting string, etcd *config.StorageEtcd) (storage.Backend, io.Closer, error) {
	if strings.HasPrefix(spec, "kubernetes://") {
		return openKubeBackend(ctx, spec, setting) // kube.go
	}
	if config.IsEtcdURL(spec) {
		o, useTLS, err := etcdstore.ParseURL(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", setting, err)
		}
		if err := applyEtcd(&o, useTLS, etcd); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", setting, err)
		}
		b, err := etcdstore.Open(ctx, o)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", setting, err)
		}
		return b, b, nil
	}
	f, err := storage.OpenFiles(strings.TrimPrefix(spec, "file:"), storage.FilesOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	return f, nopCloser{}, nil
}

// applyEtcd sets the TLS, credentials and timeouts of the storage section
// on o.
func applyEtcd(o *etcdstore.Options, useTLS bool, e *config.StorageEtcd) error {
	if useTLS {
		o.TLS = tlsDefaults()
	}
	if e == nil {
		return nil
	}
	hasFiles := e.CAFile != "" || e.CertFile != "" || e.KeyFile != ""
	if hasFiles && !useTLS {
		return errors.New("storage.etcd names TLS files but the URL is etcd:// (no TLS); write etcds://")
	}
	if hasFiles {
		c, err := etcdstore.ClientTLS(etcdstore.TLSFiles{CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile})
		if err != nil {
			return err
		}
		o.TLS = c
	}
	if e.Username != "" {
		if o.Username != "" {
			return errors.New("the URL has a user and storage.etcd.username is set; keep one")
		}
		o.Username, o.Password = e.Username, string(e.Password)
	}
	o.DialTimeout, o.RequestTimeout, o.LeaseTTL = e.DialTimeout.D(), e.RequestTimeout.D(), e.LeaseTTL.D()
	return nil
}

// storageKey returns the storage key of sc's encryption, else of the
// environment; nil when neither names one.
func storageKey(sc *config.Storage, getenv func(string) string) (*sealed.Key, error) {
	if sc != nil && sc.Encryption != nil {
		enc := sc.Encryption
		if enc.KeyFile != "" {
			k, err := sealed.LoadKeyFile(enc.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("storage.encryption.keyFile: %w", err)
			}
			return k, nil
		}
		k, err := sealed.ParseKey([]byte(enc.Key))
		if err != nil {
			return nil, fmt.Errorf("storage.encryption.key: %w", err)
		}
		return k, nil
	}
	if getenv == nil {
		return nil, nil
	}
	file, text := getenv(envStorageKeyFile), getenv(envStorageKey)
	switch {
	case file != "" && text != "":
		return nil, fmt.Errorf("both %s and %s are set; set one", envStorageKeyFile, envStorageKey)
	case file != "":
		k, err := sealed.LoadKeyFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envStorageKeyFile, err)
		}
		return k, nil
	case text != "":
		k, err := sealed.ParseKey([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envStorageKey, err)
		}
		return k, nil
	}
	return nil, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// isStorageURL reports whether spec names a storage service rather than a
// folder.
func isStorageURL(spec string) bool {
	return config.IsEtcdURL(spec) || strings.HasPrefix(spec, "kubernetes://")
}

// withPFX gives the store the password of the .pfx files lego's --pfx left
// (LEGO_PFX_PASSWORD, lego's variable; default lego's), so every renewal
// keeps them in step; commands with --pfx.password set their own.
func withPFX(st *storage.Store) *storage.Store {
	st.SetPFX(storage.PFXOptions{Password: os.Getenv("LEGO_PFX_PASSWORD"), Format: os.Getenv("LEGO_PFX_FORMAT")}, false)
	return st
}
