package kubestore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zoku/zoku/internal/storage"
)

// lease is a held Lease.
type lease struct {
	store  *Store
	name   string // the lock's name
	object string // the Lease's name
	holder string // this acquisition's holder identity
	token  int64  // spec.leaseTransitions when taken

	mu        sync.Mutex
	rv        string    // the Lease's resourceVersion after our last write
	lastRenew time.Time // of our last successful renewal

	lost     chan struct{}
	lostOnce sync.Once
	unlocked chan struct{}
	once     sync.Once
	kick     chan struct{} // makes the renewer check now (tests)
	done     chan struct{} // the renewer ended
	release  func()
}

var _ storage.Lease = (*lease)(nil)

func (l *lease) Name() string          { return l.name }
func (l *lease) Token() int64          { return l.token }
func (l *lease) Lost() <-chan struct{} { return l.lost }

func (l *lease) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

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

// leaseName names the Lease of a lock.
func (s *Store) leaseName(lock string) string {
	r := readable(lock, 180)
	return s.o.Prefix + "-lock-" + r + "-" + shortHash(lock, 10)
}

func newIdentity(holder string) string {
	b := make([]byte, 6)
	_, _ = crand.Read(b)
	return holder + "#" + hex.EncodeToString(b)
}

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
		return nil, errors.New("kubernetes storage: empty lock name")
	}
	release, err := s.local.acquire(ctx, name, wait)
	if err != nil {
		return nil, err
	}
	l := &lease{store: s, name: name, object: s.leaseName(name), holder: newIdentity(s.o.Holder),
		lost: make(chan struct{}), unlocked: make(chan struct{}), kick: make(chan struct{}, 1), done: make(chan struct{}), release: release}
	for {
		ok, err := s.take(ctx, l)
		if err != nil {
			release()
			return nil, err
		}
		if ok {
			break
		}
		if !wait {
			release()
			return nil, fmt.Errorf("%w: %s", storage.ErrLocked, name)
		}
		// Poll with jitter; a held lock frees on Unlock or expiry.
		d := s.o.PollInterval/2 + rand.N(s.o.PollInterval)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			release()
			return nil, fmt.Errorf("kubernetes storage: waiting for lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
	go l.renew()
	return l, nil
}

// take tries once to make l the holder of its Lease.
func (s *Store) take(ctx context.Context, l *lease) (bool, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	leases := s.client.Leases(s.o.Namespace)
	secs := int32(s.o.LeaseDuration.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	now := metav1.NewMicroTime(time.Now())
	cur, err := leases.Get(cctx, l.object, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		obj := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: l.object, Namespace: s.o.Namespace,
				Labels: map[string]string{labelStore: s.o.Prefix, labelManagedBy: "zoku"}, Annotations: map[string]string{"zoku.dev/lock": l.name}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &l.holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now, LeaseTransitions: new(int32(1))},
		}
		created, err := leases.Create(cctx, obj, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		if err != nil {
			return false, s.lockErr(ctx, l.name, err)
		}
		l.token, l.rv, l.lastRenew = 1, created.ResourceVersion, time.Now()
		return true, nil
	case err != nil:
		return false, s.lockErr(ctx, l.name, err)
	}
	if held(cur, time.Now()) {
		return false, nil
	}
	next := cur.DeepCopy()
	tr := int32(0)
	if cur.Spec.LeaseTransitions != nil {
		tr = *cur.Spec.LeaseTransitions
	}
	tr++
	next.Spec = coordinationv1.LeaseSpec{HolderIdentity: &l.holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now, LeaseTransitions: &tr}
	upd, err := leases.Update(cctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, s.lockErr(ctx, l.name, err)
	}
	l.token, l.rv, l.lastRenew = int64(tr), upd.ResourceVersion, time.Now()
	return true, nil
}

func (s *Store) lockErr(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("kubernetes storage: waiting for lock %s: %w", name, ctx.Err())
	}
	return fmt.Errorf("kubernetes storage: lock %s: %w", name, err)
}

// held reports whether a Lease has a holder that renewed it within its
// duration.
func held(le *coordinationv1.Lease, now time.Time) bool {
	if le.Spec.HolderIdentity == nil || *le.Spec.HolderIdentity == "" {
		return false
	}
	if le.Spec.RenewTime == nil || le.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Before(le.Spec.RenewTime.Add(time.Duration(*le.Spec.LeaseDurationSeconds) * time.Second))
}

// renew keeps the Lease until Unlock, and marks it lost when it could not
// be renewed for a whole LeaseDuration or another holder has it.
func (l *lease) renew() {
	defer close(l.done)
	s := l.store
	every := max(s.o.LeaseDuration/3, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.unlocked:
			return
		case <-t.C:
		case <-l.kick:
		}
		l.mu.Lock()
		last := l.lastRenew
		l.mu.Unlock()
		if time.Since(last) >= s.o.LeaseDuration {
			l.markLost()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := l.renewOnce(ctx, last)
		cancel()
		if errors.Is(err, errTaken) {
			l.markLost()
			return
		}
	}
}

var errTaken = errors.New("the lease has another holder")

// renewOnce moves the Lease's renewTime forward if it is still ours.
func (l *lease) renewOnce(ctx context.Context, last time.Time) error {
	s := l.store
	leases := s.client.Leases(s.o.Namespace)
	cur, err := leases.Get(ctx, l.object, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return errTaken
	}
	if err != nil {
		return err
	}
	if !l.ours(cur) {
		return errTaken
	}
	now := metav1.NewMicroTime(time.Now())
	next := cur.DeepCopy()
	next.Spec.RenewTime = &now
	upd, err := leases.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.lastRenew.Equal(last) { // not given up meanwhile (ExpireLease)
		l.rv, l.lastRenew = upd.ResourceVersion, time.Now()
	}
	l.mu.Unlock()
	return nil
}

// ours reports whether a Lease is held by this acquisition.
func (l *lease) ours(le *coordinationv1.Lease) bool {
	return le.Spec.HolderIdentity != nil && *le.Spec.HolderIdentity == l.holder &&
		le.Spec.LeaseTransitions != nil && int64(*le.Spec.LeaseTransitions) == l.token
}

// check is the fence of a write: the lock is held here, and the Lease,
// read now, still names this holder and token within its duration.
func (l *lease) check(ctx context.Context) error {
	if !l.held() {
		return fmt.Errorf("%w (lock %s was released or lost)", storage.ErrFenced, l.name)
	}
	cur, err := l.store.client.Leases(l.store.o.Namespace).Get(ctx, l.object, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w (the Lease of lock %s is gone)", storage.ErrFenced, l.name)
		}
		return fmt.Errorf("kubernetes storage: check lock %s: %w", l.name, err)
	}
	if !l.ours(cur) || !held(cur, time.Now()) {
		l.markLost()
		return fmt.Errorf("%w (lock %s has another holder)", storage.ErrFenced, l.name)
	}
	return nil
}

// Unlock clears the Lease's holder if it is still this one; the Lease
// stays, so the next holder's token is larger.
func (l *lease) Unlock(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.unlocked)
		<-l.done
		defer l.release()
		select {
		case <-l.lost:
			return
		default:
		}
		s := l.store
		cctx, cancel := s.ctx(context.WithoutCancel(ctx))
		defer cancel()
		leases := s.client.Leases(s.o.Namespace)
		for range 10 {
			cur, gerr := leases.Get(cctx, l.object, metav1.GetOptions{})
			if gerr != nil {
				if !apierrors.IsNotFound(gerr) {
					err = fmt.Errorf("kubernetes storage: unlock %s: %w", l.name, gerr)
				}
				return
			}
			if !l.ours(cur) {
				return
			}
			next := cur.DeepCopy()
			next.Spec.HolderIdentity = new("")
			_, uerr := leases.Update(cctx, next, metav1.UpdateOptions{})
			if apierrors.IsConflict(uerr) {
				continue
			}
			if uerr != nil {
				err = fmt.Errorf("kubernetes storage: unlock %s: %w", l.name, uerr)
			}
			return
		}
	})
	return err
}

// LockHolder returns the holder of the lock ("host:pid"), or "" when it
// is free.
func (s *Store) LockHolder(ctx context.Context, name string) (string, error) {
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	cur, err := s.client.Leases(s.o.Namespace).Get(cctx, s.leaseName(name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("kubernetes storage: lock %s: %w", name, err)
	}
	if !held(cur, time.Now()) {
		return "", nil
	}
	h, _, _ := strings.Cut(*cur.Spec.HolderIdentity, "#")
	return h, nil
}

// ExpireLease makes l lose its lock as if its holder had been cut off for
// longer than the lease duration: the Lease's renewTime is moved into the
// past and l's renewer notices; it returns once Lost is closed. Tests use
// it.
func ExpireLease(ctx context.Context, sl storage.Lease) error {
	l, ok := sl.(*lease)
	if !ok {
		return errors.New("kubernetes storage: not a Kubernetes lease")
	}
	s := l.store
	leases := s.client.Leases(s.o.Namespace)
	past := metav1.NewMicroTime(time.Now().Add(-2 * s.o.LeaseDuration))
	// The holder gives up first (as it would after a LeaseDuration
	// without renewing), then the Lease shows it expired.
	l.mu.Lock()
	l.lastRenew = past.Time
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	select {
	case <-l.lost:
	case <-ctx.Done():
		return ctx.Err()
	}
	<-l.done
	for attempt := 0; ; attempt++ {
		cur, err := leases.Get(ctx, l.object, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.RenewTime = &past
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) || attempt > 10 {
			return err
		}
	}
	return nil
}
