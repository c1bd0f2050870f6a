package cli

import (
	"context"
	"fmt"
	"io"
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
	if strings.HasPrefix(spec, "kubernetes://") {
		return openKubeStore(ctx, spec, setting)
	}
	if isStorageURL(spec) {
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
		return storage.New(b), b, nil
	}
	f, err := storage.OpenFiles(strings.TrimPrefix(spec, "file:"), storage.FilesOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	return storage.New(f), nopCloser{}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// isStorageURL reports whether spec names a storage service rather than a
// folder.
func isStorageURL(spec string) bool {
	return strings.HasPrefix(spec, "etcd://") || strings.HasPrefix(spec, "etcds://") || strings.HasPrefix(spec, "kubernetes://")
}
