// Package sealed encrypts secrets at rest: a [storage.Backend] wrapper that
// seals the values of private-key keys (certificate keys, .pem and .pfx
// bundles, account keys, and archives that hold them) with AES-256-GCM on
// Store, and opens them on Load. Every other value passes through as it
// is, so certificates, metadata and locks look exactly as without it.
//
// A sealed value is a PEM-armoured envelope that names its format version
// and the ID of its key (see envelope.go); it is bound to the storage key
// it is stored under, so it cannot be swapped with another. Values written
// before encryption was turned on are read as they are and sealed when
// next written; `zoku storage copy --to-key` seals a whole storage at
// once.
//
// A wrapper without a key seals nothing, but still recognises sealed
// values: loading one fails with one line that names the storage key and
// the key ID it needs, rather than handing ciphertext to a PEM parser.
//
// lego cannot read sealed values: a folder written with encryption on is
// no longer a lego folder until `zoku storage copy --from-key` decrypts
// it.
package sealed

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zoku/zoku/internal/storage"
)

// Options configure Wrap.
type Options struct {
	// Key seals secret values and opens sealed ones; nil seals nothing
	// and makes loading a sealed value fail with ErrNoKey.
	Key *Key
	// Secret reports whether the value of a storage key is sealed; nil
	// means IsSecret.
	Secret func(key string) bool
}

// Backend is the wrapper; create it with Wrap. Its locks, listing,
// watching and fencing are the inner backend's. Stat reports the stored
// (sealed) size.
type Backend struct {
	inner  storage.Backend
	key    *Key
	secret func(string) bool
}

var (
	_ storage.Backend       = (*Backend)(nil)
	_ storage.Batcher       = (*Backend)(nil)
	_ storage.Watcher       = (*Backend)(nil)
	_ storage.LockInspector = (*Backend)(nil)
	_ storage.Wrapper       = (*Backend)(nil)
)

// Wrap returns b with its secret values sealed under o.Key.
func Wrap(b storage.Backend, o Options) *Backend {
	if o.Secret == nil {
		o.Secret = IsSecret
	}
	return &Backend{inner: b, key: o.Key, secret: o.Secret}
}

// IsSecret is the default rule of what is sealed: in the lego layout,
// every private key and everything that holds one.
//
//	certificates/**.key, .pem, .pfx   a certificate's key, lego's --pem and --pfx bundles
//	accounts/**.key                  ACME account keys (v5 and v4 layouts)
//	archives/**.zip, .key, .pem, .pfx  archived certificate sets, archived lego v4 files
//
// The embedded CA's root key (embedded-ca/) is not sealed: the embedded
// CA reads it from its folder itself, and it is for local use and tests.
func IsSecret(key string) bool {
	top, _, _ := strings.Cut(key, "/")
	hasExt := func(exts ...string) bool {
		for _, e := range exts {
			if strings.HasSuffix(key, e) {
				return true
			}
		}
		return false
	}
	switch top {
	case "certificates":
		return hasExt(".key", ".pem", ".pfx")
	case "accounts":
		return hasExt(".key")
	case "archives":
		return hasExt(".zip", ".key", ".pem", ".pfx")
	}
	return false
}

// Unwrap returns the inner backend.
func (b *Backend) Unwrap() storage.Backend { return b.inner }

// KeyID is the ID of the key values are sealed with; "" without a key.
func (b *Backend) KeyID() string {
	if b.key == nil {
		return ""
	}
	return b.key.id
}

// String is the inner backend's description: the wrapper keeps the
// storage's identity.
func (b *Backend) String() string { return b.inner.String() }

// Load reads a value and opens it when it is sealed, whatever its key:
// a value's envelope, not its name, says whether it is sealed.
func (b *Backend) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := b.inner.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	return Open(b.key, key, v)
}

// Store seals a secret value (with a key configured) and writes it.
func (b *Backend) Store(ctx context.Context, key string, value []byte) error {
	v, err := b.seal(key, value)
	if err != nil {
		return err
	}
	return b.inner.Store(ctx, key, v)
}

// StoreAll seals the secret values of ops and writes them as the inner
// backend's batch (or one by one, in order, when it writes no batches).
func (b *Backend) StoreAll(ctx context.Context, ops []storage.Op) error {
	out := make([]storage.Op, len(ops))
	for i, op := range ops {
		out[i] = op
		if op.Delete {
			continue
		}
		v, err := b.seal(op.Key, op.Value)
		if err != nil {
			return err
		}
		out[i].Value = v
	}
	if bb, ok := b.inner.(storage.Batcher); ok {
		return bb.StoreAll(ctx, out)
	}
	for _, op := range out {
		var err error
		if op.Delete {
			err = b.inner.Delete(ctx, op.Key)
		} else {
			err = b.inner.Store(ctx, op.Key, op.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) seal(key string, value []byte) ([]byte, error) {
	if b.key == nil || !b.secret(key) {
		return value, nil
	}
	// A bad key must fail here, as it would in the inner backend, and
	// not be sealed into an AAD first.
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	return Seal(b.key, key, value)
}

// Delete removes a value.
func (b *Backend) Delete(ctx context.Context, key string) error { return b.inner.Delete(ctx, key) }

// List lists the inner backend's keys.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	return b.inner.List(ctx, prefix)
}

// Stat describes a value as stored: Size is the sealed size of a sealed
// value.
func (b *Backend) Stat(ctx context.Context, key string) (storage.KeyInfo, error) {
	return b.inner.Stat(ctx, key)
}

// Lock takes the inner backend's lock.
func (b *Backend) Lock(ctx context.Context, name string) (storage.Lease, error) {
	return b.inner.Lock(ctx, name)
}

// TryLock tries the inner backend's lock.
func (b *Backend) TryLock(ctx context.Context, name string) (storage.Lease, error) {
	return b.inner.TryLock(ctx, name)
}

// Watch follows the inner backend's changes; it fails when the inner
// backend cannot watch.
func (b *Backend) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	w, ok := b.inner.(storage.Watcher)
	if !ok {
		return nil, fmt.Errorf("sealed: %s cannot be watched: %w", b.inner, errors.ErrUnsupported)
	}
	return w.Watch(ctx, prefix)
}

// LockHolder asks the inner backend who holds a lock; it fails when the
// inner backend cannot tell.
func (b *Backend) LockHolder(ctx context.Context, name string) (string, error) {
	li, ok := b.inner.(storage.LockInspector)
	if !ok {
		return "", fmt.Errorf("sealed: %s cannot tell lock holders: %w", b.inner, errors.ErrUnsupported)
	}
	return li.LockHolder(ctx, name)
}
