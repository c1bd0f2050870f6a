package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Backend is where zoku keeps its state: a key/value store with locks. Keys
// are slash-separated relative paths ("certificates/a.example.crt"); the
// file backend maps them onto files, which is what keeps lego's layout.
//
// Contract, for every implementation:
//   - every method honours ctx and is safe for concurrent use by goroutines
//     and by other processes (or nodes) on the same backend;
//   - Load and Stat of a missing key return an error wrapping fs.ErrNotExist;
//     Delete of a missing key is not an error;
//   - a Store replaces the whole value or nothing: a reader sees the old
//     value or the new one, never a part;
//   - List returns every key under prefix (recursively), sorted, without
//     the backend's own bookkeeping (temporary files, locks);
//   - writes made with a context from [WithFence] happen only while that
//     lease still holds its lock; otherwise they fail with [ErrFenced] and
//     change nothing.
type Backend interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Store(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
	Stat(ctx context.Context, key string) (KeyInfo, error)
	Locker
	// String describes the backend for messages ("file:.zoku",
	// "etcd://127.0.0.1:2379/zoku"); it never contains a secret.
	String() string
}

// KeyInfo describes a stored value.
type KeyInfo struct {
	Key  string
	Size int64
	// Modified is when the value was last written; zero when the backend
	// does not record it.
	Modified time.Time
	// Revision grows with every write of the key (file: the modification
	// time in nanoseconds; etcd: the key's mod revision).
	Revision int64
}

// Op is one write of a [Batcher] batch: a store, or a delete.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Batcher is a Backend that can write several keys as one. The file backend
// writes every value to a temporary file first and renames them in order
// (so put the key that marks a set complete last); etcd writes them in one
// transaction. Fencing applies to the whole batch.
type Batcher interface {
	StoreAll(ctx context.Context, ops []Op) error
}

// Locker hands out named, cross-process (and, for shared backends,
// cross-node) locks with leases.
type Locker interface {
	// Lock waits until the lock is held or ctx ends.
	Lock(ctx context.Context, name string) (Lease, error)
	// TryLock takes the lock if it is free and fails with ErrLocked
	// otherwise.
	TryLock(ctx context.Context, name string) (Lease, error)
}

// Lease is a held lock. A holder that crashes loses it: the file backend's
// locks are released by the kernel when the process ends; etcd's expire
// with their lease's TTL.
type Lease interface {
	// Name is the lock's name.
	Name() string
	// Token is the fencing token: it is larger for every later holder of
	// the same lock, so a write can be refused to a holder whose lease
	// expired while it was away.
	Token() int64
	// Lost is closed when the lock was lost before Unlock (its lease
	// expired); writes fenced by it fail from then on.
	Lost() <-chan struct{}
	// Unlock releases the lock. It is safe to call more than once.
	Unlock(ctx context.Context) error
}

// Watcher is a Backend that reports changes made by any process or node.
type Watcher interface {
	// Watch sends the key of every value stored or deleted under prefix
	// until ctx ends; the channel is closed then. A backend may coalesce
	// several writes of one key into one report.
	Watch(ctx context.Context, prefix string) (<-chan string, error)
}

// LockInspector is a Backend that can tell who holds a lock.
type LockInspector interface {
	// LockHolder returns the holder of the named lock, or "" when it is
	// free.
	LockHolder(ctx context.Context, name string) (string, error)
}

// Pather is a Backend whose values are files: the certificate files of a
// file backend can be handed to hooks by path.
type Pather interface {
	// Path returns the file that holds key.
	Path(key string) string
}

// Errors of the contract.
var (
	// ErrLocked is returned by TryLock when another holder has the lock.
	ErrLocked = errors.New("storage: locked by another holder")
	// ErrFenced is returned by a fenced write whose lease no longer holds
	// its lock; nothing was written.
	ErrFenced = errors.New("storage: the lock of this write was lost to another holder; nothing was written")
)

type fenceKey struct{}

// WithFence returns a context whose writes happen only while l holds its
// lock. Backends read it with [FenceFrom].
func WithFence(ctx context.Context, l Lease) context.Context {
	if l == nil {
		return ctx
	}
	return context.WithValue(ctx, fenceKey{}, l)
}

// FenceFrom returns the lease of a context made by [WithFence], or nil.
func FenceFrom(ctx context.Context) Lease {
	l, _ := ctx.Value(fenceKey{}).(Lease)
	return l
}

// CheckKey refuses keys that are empty, absolute, not clean, or that climb
// out of the backend (".."). Backends call it on every key they are given.
func CheckKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || key == "." ||
		key == ".." || strings.HasPrefix(key, "../") || strings.ContainsRune(key, 0) || strings.Contains(key, `\`) {
		return fmt.Errorf("storage: invalid key %q", key)
	}
	return nil
}

// NotExist is the error of a missing key: it wraps fs.ErrNotExist.
func NotExist(key string) error {
	return fmt.Errorf("storage: %s: %w", key, fs.ErrNotExist)
}

// storeAll writes ops as one batch when b can, else one by one in order.
func storeAll(ctx context.Context, b Backend, ops []Op) error {
	if bb, ok := b.(Batcher); ok {
		return bb.StoreAll(ctx, ops)
	}
	for _, op := range ops {
		var err error
		if op.Delete {
			err = b.Delete(ctx, op.Key)
		} else {
			err = b.Store(ctx, op.Key, op.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
