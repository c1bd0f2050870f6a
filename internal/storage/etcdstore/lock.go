package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zoku/zoku/internal/storage"
)

// lease is a held etcd mutex.
type lease struct {
	store *Store
	name  string
	key   string // the mutex key of this holder
	token int64  // its create revision
	mu    *concurrency.Mutex
	lost  chan struct{}

	once     sync.Once
	unlocked chan struct{}
	release  func() // frees the in-process slot
}

var _ storage.Lease = (*lease)(nil)

func (l *lease) Name() string          { return l.name }
func (l *lease) Token() int64          { return l.token }
func (l *lease) Lost() <-chan struct{} { return l.lost }

func (l *lease) held() bool {
	select {
	case <-l.unlocked:
		return false
	case <-l.lost:
		return false
	default:
		return true
	}
}

// Unlock deletes the mutex key; a lost lock needs no deleting.
func (l *lease) Unlock(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.unlocked)
		defer l.release()
		select {
		case <-l.lost:
			return
		default:
		}
		cctx, cancel := l.store.ctx(context.WithoutCancel(ctx))
		defer cancel()
		if uerr := l.mu.Unlock(cctx); uerr != nil && !errors.Is(uerr, concurrency.ErrLockReleased) {
			err = fmt.Errorf("etcd: unlock %s: %w", l.name, cleanErr(uerr))
		}
	})
	return err
}

// sessionFor returns the live session, making a new one when the last
// one ended (its lease expired while etcd was out of reach).
func (s *Store) sessionFor(ctx context.Context) (*concurrency.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil {
		select {
		case <-s.session.Done():
			s.session = nil
		default:
			return s.session, nil
		}
	}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	grant, err := s.cli.Grant(cctx, int64(s.ttl))
	if err != nil {
		return nil, fmt.Errorf("etcd: create a lease: %w", cleanErr(err))
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(grant.ID), concurrency.WithTTL(s.ttl))
	if err != nil {
		return nil, fmt.Errorf("etcd: start a session: %w", cleanErr(err))
	}
	s.session = sess
	return sess, nil
}

func (s *Store) lockPrefix(name string) string { return s.prefix + ".locks/" + name }

// Lock waits for the named lock.
func (s *Store) Lock(ctx context.Context, name string) (storage.Lease, error) {
	return s.acquire(ctx, name, true)
}

// TryLock takes the lock if it is free.
func (s *Store) TryLock(ctx context.Context, name string) (storage.Lease, error) {
	return s.acquire(ctx, name, false)
}

func (s *Store) acquire(ctx context.Context, name string, wait bool) (storage.Lease, error) {
	if name == "" {
		return nil, errors.New("etcd: empty lock name")
	}
	// One session holds one key per lock name, so two goroutines of this
	// process must not both ask etcd: they take turns here first.
	release, err := s.local.acquire(ctx, name, wait)
	if err != nil {
		return nil, err
	}
	l, err := s.acquireRemote(ctx, name, wait)
	if err != nil {
		release()
		return nil, err
	}
	l.release = release
	return l, nil
}

func (s *Store) acquireRemote(ctx context.Context, name string, wait bool) (*lease, error) {
	sess, err := s.sessionFor(ctx)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(sess, s.lockPrefix(name))
	if wait {
		err = m.Lock(ctx)
	} else {
		cctx, cancel := s.ctx(ctx)
		err = m.TryLock(cctx)
		cancel()
	}
	switch {
	case errors.Is(err, concurrency.ErrLocked):
		return nil, fmt.Errorf("%w: %s", storage.ErrLocked, name)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("etcd: waiting for lock %s: %w", name, ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("etcd: lock %s: %w", name, cleanErr(err))
	}
	// The holder's name goes into the mutex key itself; a put keeps the
	// key's create revision, which is the fencing token.
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(cctx).If(m.IsOwner()).
		Then(clientv3.OpPut(m.Key(), s.holder, clientv3.WithLease(sess.Lease())), clientv3.OpGet(m.Key())).Commit()
	if err != nil || !resp.Succeeded {
		_ = m.Unlock(context.WithoutCancel(cctx))
		if err == nil {
			err = errors.New("lost the lock at once")
		}
		return nil, fmt.Errorf("etcd: lock %s: %w", name, cleanErr(err))
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, fmt.Errorf("etcd: lock %s: the lock key vanished", name)
	}
	l := &lease{store: s, name: name, key: m.Key(), token: kvs[0].CreateRevision, mu: m, lost: make(chan struct{}), unlocked: make(chan struct{})}
	go func() {
		select {
		case <-sess.Done():
			close(l.lost)
		case <-l.unlocked:
		}
	}()
	return l, nil
}

// LockHolder returns the holder of the lock: the value of its oldest key.
func (s *Store) LockHolder(ctx context.Context, name string) (string, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.lockPrefix(name)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("etcd: lock %s: %w", name, cleanErr(err))
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	if h := string(resp.Kvs[0].Value); h != "" {
		return h, nil
	}
	return "unknown", nil
}

// ExpireLease revokes the lease behind l, as if its holder had been cut
// off for longer than the TTL, and waits until l reports it lost. Tests
// use it.
func ExpireLease(ctx context.Context, l storage.Lease) error {
	el, ok := l.(*lease)
	if !ok {
		return errors.New("etcd: not an etcd lease")
	}
	el.store.mu.Lock()
	sess := el.store.session
	el.store.mu.Unlock()
	if sess == nil {
		return errors.New("etcd: no session")
	}
	if _, err := el.store.cli.Revoke(ctx, sess.Lease()); err != nil {
		return err
	}
	select {
	case <-el.lost:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// localLocks gives each lock name to one goroutine of this process at a
// time.
type localLocks struct {
	mu    sync.Mutex
	slots map[string]chan struct{}
}

func (ll *localLocks) acquire(ctx context.Context, name string, wait bool) (func(), error) {
	ll.mu.Lock()
	if ll.slots == nil {
		ll.slots = map[string]chan struct{}{}
	}
	ch, ok := ll.slots[name]
	if !ok {
		ch = make(chan struct{}, 1)
		ll.slots[name] = ch
	}
	ll.mu.Unlock()
	if !wait {
		select {
		case ch <- struct{}{}:
		default:
			return nil, fmt.Errorf("%w: %s", storage.ErrLocked, name)
		}
	} else {
		select {
		case ch <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("etcd: waiting for lock %s: %w", name, ctx.Err())
		}
	}
	return func() { <-ch }, nil
}
