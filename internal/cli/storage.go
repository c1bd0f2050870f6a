package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
)

// openStore opens the storage named by spec: a folder (lego's layout;
// "file:" in front is allowed), or "etcd://host:2379,host:2379/prefix"
// ("etcds://" for TLS) for a cluster. setting names the flag or config
// key the spec came from, for the one-line error. The closer releases the
// backend (the etcd connection and its locks).
func openStore(ctx context.Context, spec, setting string) (*storage.Store, io.Closer, error) {
	if strings.HasPrefix(spec, "etcd://") || strings.HasPrefix(spec, "etcds://") {
		o, useTLS, err := etcdstore.ParseURL(spec)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", setting, err)
		}
		if useTLS {
			o.TLS = tlsDefaults()
		}
		b, err := etcdstore.Open(ctx, o)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", setting, err)
		}
		return withPFX(storage.New(b)), b, nil
	}
	f, err := storage.OpenFiles(strings.TrimPrefix(spec, "file:"), storage.FilesOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	return withPFX(storage.New(f)), nopCloser{}, nil
}

// withPFX gives the store the password of the .pfx files lego's --pfx left
// (LEGO_PFX_PASSWORD, lego's variable; default lego's), so every renewal
// keeps them in step; commands with --pfx.password set their own.
func withPFX(st *storage.Store) *storage.Store {
	st.SetPFX(storage.PFXOptions{Password: os.Getenv("LEGO_PFX_PASSWORD"), Format: os.Getenv("LEGO_PFX_FORMAT")}, false)
	return st
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
