// Package storagetest is the conformance suite of the storage contract:
// every backend (files, etcd, ...) runs the same tests, so the certificate
// manager can rely on the contract alone.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// Options describe the backend under test.
type Options struct {
	// Open returns a new, empty backend. Two calls within one test must
	// return backends that share their data and locks, as two processes
	// (or nodes) on the same storage would.
	Open func(t *testing.T) storage.Backend
	// Expire, when set, makes the lease lose its lock as if its holder had
	// been cut off for longer than the lease's TTL; it returns once Lost
	// is closed. Backends whose locks cannot expire (flock) leave it nil.
	Expire func(t *testing.T, l storage.Lease)
	// Writes is how many times each of AtomicValues' two writers replaces
	// the value (default 200). A backend whose every write is a round
	// trip through another server and its database (Kubernetes) may ask
	// fewer, to stay within the test's time.
	Writes int
}

// Run runs the whole suite.
func Run(t *testing.T, o Options) {
	t.Run("LoadMissing", func(t *testing.T) { testLoadMissing(t, o) })
	t.Run("StoreLoad", func(t *testing.T) { testStoreLoad(t, o) })
	t.Run("LayoutKeys", func(t *testing.T) { testLayoutKeys(t, o) })
	t.Run("List", func(t *testing.T) { testList(t, o) })
	t.Run("BadKeys", func(t *testing.T) { testBadKeys(t, o) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, o) })
	t.Run("AtomicValues", func(t *testing.T) { testAtomicValues(t, o) })
	t.Run("TryLock", func(t *testing.T) { testTryLock(t, o) })
	t.Run("LockExcludes", func(t *testing.T) { testLockExcludes(t, o) })
	t.Run("LockCancel", func(t *testing.T) { testLockCancel(t, o) })
	t.Run("FenceAfterUnlock", func(t *testing.T) { testFenceAfterUnlock(t, o) })
	t.Run("FenceAfterExpiry", func(t *testing.T) { testFenceAfterExpiry(t, o) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, o) })
	t.Run("LockHolder", func(t *testing.T) { testLockHolder(t, o) })
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLoadMissing(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	if _, err := b.Load(ctx, "certificates/none.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: got %v, want fs.ErrNotExist", err)
	}
	if _, err := b.Stat(ctx, "certificates/none.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing key: got %v, want fs.ErrNotExist", err)
	}
	if err := b.Delete(ctx, "certificates/none.crt"); err != nil {
		t.Errorf("Delete of a missing key: got %v, want nil", err)
	}
	keys, err := b.List(ctx, "nothing-here")
	if err != nil || len(keys) != 0 {
		t.Errorf("List of an empty prefix: got %v, %v; want nothing, nil", keys, err)
	}
}

func testStoreLoad(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	const key = "certificates/a.example.crt"
	for i, v := range [][]byte{[]byte("one"), []byte("two, longer"), {}} {
		if err := b.Store(ctx, key, v); err != nil {
			t.Fatalf("Store #%d: %v", i, err)
		}
		got, err := b.Load(ctx, key)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Load #%d: got %q, %v; want %q", i, got, err, v)
		}
		info, err := b.Stat(ctx, key)
		if err != nil || info.Size != int64(len(v)) {
			t.Fatalf("Stat #%d: got %+v, %v; want size %d", i, info, err, len(v))
		}
	}
	// A second backend on the same storage sees the value.
	other := o.Open(t)
	if got, err := other.Load(ctx, key); err != nil || len(got) != 0 {
		t.Errorf("Load from a second backend: got %q, %v; want the empty value", got, err)
	}
	if err := b.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := other.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after Delete: got %v, want fs.ErrNotExist", err)
	}
}

// testLayoutKeys stores, lists, batches and reads back the keys of lego's
// layout that hold secrets (which a wrapper may treat differently), with
// binary values.
func testLayoutKeys(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	values := map[string][]byte{
		"accounts/ca.example_14000/me@example.com/me@example.com.key": []byte("account key \x00\xff material"),
		"accounts/ca.example_14000/me@example.com/account.json":       []byte(`{"id":"me@example.com"}`),
		"certificates/_.example.com.key":                              []byte("key"),
		"certificates/_.example.com.pem":                              []byte("cert and key"),
		"certificates/_.example.com.pfx":                              {0x30, 0x82, 0x00, 0xff, 0x00, 0x0a},
		"certificates/_.example.com.crt":                              []byte("cert"),
		"archives/certificates/_.example.com_1700000000.zip":          {'P', 'K', 3, 4, 0, 0, 0xfe},
		"embedded-ca/root-key.pem":                                    []byte("root"),
	}
	keys := slices.Sorted(maps.Keys(values))
	ops := make([]storage.Op, 0, len(keys))
	for _, k := range keys {
		ops = append(ops, storage.Op{Key: k, Value: values[k]})
	}
	if bb, ok := b.(storage.Batcher); ok {
		if err := bb.StoreAll(ctx, ops); err != nil {
			t.Fatalf("StoreAll: %v", err)
		}
	} else {
		for _, op := range ops {
			if err := b.Store(ctx, op.Key, op.Value); err != nil {
				t.Fatalf("Store %s: %v", op.Key, err)
			}
		}
	}
	other := o.Open(t)
	for _, k := range keys {
		got, err := other.Load(ctx, k)
		if err != nil || !bytes.Equal(got, values[k]) {
			t.Errorf("Load(%s) = %q, %v; want %q", k, got, err, values[k])
		}
	}
	got, err := other.List(ctx, "")
	if err != nil || !slices.Equal(got, keys) {
		t.Errorf("List(\"\") = %v, %v; want %v", got, err, keys)
	}
	// The empty value of a secret key stays empty.
	const k = "certificates/empty.key"
	if err := b.Store(ctx, k, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Load(ctx, k); err != nil || len(got) != 0 {
		t.Errorf("Load of an empty %s: %q, %v", k, got, err)
	}
}

func testList(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	want := []string{"certificates/a.crt", "certificates/b.json", "certificates/sub/c.key"}
	for _, k := range append(slices.Clone(want), "accounts/x/y.json", "certificatesX/d.crt") {
		if err := b.Store(ctx, k, []byte(k)); err != nil {
			t.Fatalf("Store %s: %v", k, err)
		}
	}
	for _, prefix := range []string{"certificates", "certificates/"} {
		got, err := b.List(ctx, prefix)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("List(%q): got %v, %v; want %v", prefix, got, err, want)
		}
	}
}

func testBadKeys(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	for _, k := range []string{"", "/abs", "../up", "a/../../up", "a//b", "a/./b", "."} {
		if err := b.Store(ctx, k, []byte("x")); err == nil {
			t.Errorf("Store(%q): got nil, want an error", k)
		}
		if _, err := b.Load(ctx, k); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q): got %v, want an invalid-key error", k, err)
		}
	}
}

func testBatch(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	bb, ok := b.(storage.Batcher)
	if !ok {
		t.Skip("backend writes no batches")
	}
	if err := b.Store(ctx, "s/old", []byte("old")); err != nil {
		t.Fatal(err)
	}
	ops := []storage.Op{{Key: "s/a", Value: []byte("A")}, {Key: "s/old", Delete: true}, {Key: "s/b", Value: []byte("B")}}
	if err := bb.StoreAll(ctx, ops); err != nil {
		t.Fatalf("StoreAll: %v", err)
	}
	got, err := b.List(ctx, "s")
	if want := []string{"s/a", "s/b"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("after StoreAll: List = %v, %v; want %v", got, err, want)
	}
	// A batch with one bad key writes nothing.
	if err := bb.StoreAll(ctx, []storage.Op{{Key: "s/c", Value: []byte("C")}, {Key: "../bad", Value: nil}}); err == nil {
		t.Error("StoreAll with a bad key: got nil, want an error")
	}
	if _, err := b.Load(ctx, "s/c"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused batch wrote s/c: %v", err)
	}
}

// testAtomicValues has writers replace a value with complete values while
// readers check they never see a mix (bounded: Options.Writes writes per
// writer).
func testAtomicValues(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	const key = "atomic/value"
	writes := o.Writes
	if writes <= 0 {
		writes = 200
	}
	values := [][]byte{bytes.Repeat([]byte("a"), 64<<10), bytes.Repeat([]byte("b"), 96<<10)}
	if err := b.Store(ctx, key, values[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range writes {
				if err := b.Store(ctx, key, values[w]); err != nil {
					t.Errorf("Store: %v", err)
					return
				}
			}
		}()
	}
	reader := o.Open(t)
	var bad atomic.Int32
	var rg sync.WaitGroup
	rg.Add(1)
	go func() {
		defer rg.Done()
		for n := 0; n < 10000; n++ {
			select {
			case <-done:
				return
			default:
			}
			got, err := reader.Load(ctx, key)
			if err != nil {
				t.Errorf("Load during writes: %v", err)
				return
			}
			if !bytes.Equal(got, values[0]) && !bytes.Equal(got, values[1]) {
				bad.Add(1)
			}
		}
	}()
	wg.Wait()
	close(done)
	rg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("readers saw %d partial values", n)
	}
}

func testTryLock(t *testing.T, o Options) {
	a, b, ctx := o.Open(t), o.Open(t), ctxOf(t)
	la, err := a.TryLock(ctx, "cert/a.example")
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	if _, err := b.TryLock(ctx, "cert/a.example"); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("TryLock of a held lock from another backend: got %v, want ErrLocked", err)
	}
	// Another name is independent.
	lo, err := b.TryLock(ctx, "cert/other.example")
	if err != nil {
		t.Fatalf("TryLock of another name: %v", err)
	}
	_ = lo.Unlock(ctx)
	if err := la.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := la.Unlock(ctx); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	lb, err := b.TryLock(ctx, "cert/a.example")
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	defer lb.Unlock(ctx)
	if lb.Token() <= la.Token() {
		t.Errorf("fencing tokens: second holder %d, first %d; want the second larger", lb.Token(), la.Token())
	}
	if lb.Name() != "cert/a.example" {
		t.Errorf("Name() = %q", lb.Name())
	}
}

// testLockExcludes has workers on two backends take one lock 20 times each
// and checks that no two ever hold it together.
func testLockExcludes(t *testing.T, o Options) {
	backends := []storage.Backend{o.Open(t), o.Open(t)}
	ctx := ctxOf(t)
	var inside, maxInside, total atomic.Int32
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := backends[w%2]
			for range 20 {
				l, err := b.Lock(ctx, "shared")
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				total.Add(1)
				inside.Add(-1)
				if err := l.Unlock(ctx); err != nil {
					t.Errorf("Unlock: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 || total.Load() != 80 {
		t.Errorf("holders at once: max %d (want 1); acquisitions %d (want 80)", maxInside.Load(), total.Load())
	}
}

func testLockCancel(t *testing.T, o Options) {
	a, b := o.Open(t), o.Open(t)
	ctx := ctxOf(t)
	l, err := a.Lock(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := b.Lock(cctx, "busy")
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a canceled context: got %v, want context.Canceled", err)
	}
}

func testFenceAfterUnlock(t *testing.T, o Options) {
	b, ctx := o.Open(t), ctxOf(t)
	l, err := b.Lock(ctx, "fence")
	if err != nil {
		t.Fatal(err)
	}
	fenced := storage.WithFence(ctx, l)
	if err := b.Store(fenced, "f/value", []byte("mine")); err != nil {
		t.Fatalf("fenced Store while holding the lock: %v", err)
	}
	_ = l.Unlock(ctx)
	if err := b.Store(fenced, "f/value", []byte("late")); !errors.Is(err, storage.ErrFenced) {
		t.Errorf("fenced Store after Unlock: got %v, want ErrFenced", err)
	}
	if err := b.Delete(fenced, "f/value"); !errors.Is(err, storage.ErrFenced) {
		t.Errorf("fenced Delete after Unlock: got %v, want ErrFenced", err)
	}
	if got, _ := b.Load(ctx, "f/value"); string(got) != "mine" {
		t.Errorf("value after refused writes: %q, want %q", got, "mine")
	}
}

func testFenceAfterExpiry(t *testing.T, o Options) {
	if o.Expire == nil {
		t.Skip("this backend's locks are released only by their holder or its death")
	}
	a, b, ctx := o.Open(t), o.Open(t), ctxOf(t)
	la, err := a.Lock(ctx, "expiring")
	if err != nil {
		t.Fatal(err)
	}
	o.Expire(t, la)
	select {
	case <-la.Lost():
	default:
		t.Fatal("Lost() not closed after the lease expired")
	}
	lb, err := b.Lock(ctx, "expiring")
	if err != nil {
		t.Fatalf("Lock after the first holder's lease expired: %v", err)
	}
	defer lb.Unlock(ctx)
	if err := b.Store(storage.WithFence(ctx, lb), "e/cert", []byte("newer")); err != nil {
		t.Fatal(err)
	}
	if err := a.Store(storage.WithFence(ctx, la), "e/cert", []byte("stale")); !errors.Is(err, storage.ErrFenced) {
		t.Errorf("write by the expired holder: got %v, want ErrFenced", err)
	}
	if got, _ := b.Load(ctx, "e/cert"); string(got) != "newer" {
		t.Errorf("value: %q, want the newer holder's", got)
	}
	if lb.Token() <= la.Token() {
		t.Errorf("tokens: new holder %d, expired holder %d", lb.Token(), la.Token())
	}
}

func testWatch(t *testing.T, o Options) {
	b := o.Open(t)
	w, ok := b.(storage.Watcher)
	if !ok {
		t.Skip("backend cannot watch")
	}
	ctx, cancel := context.WithCancel(ctxOf(t))
	defer cancel()
	ch, err := w.Watch(ctx, "certificates")
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	other := o.Open(t)
	if err := other.Store(ctx, "certificates/w.example.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case k, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed early")
			}
			if k == "certificates/w.example.json" {
				return
			}
		case <-ctx.Done():
			t.Fatal("no watch event for a value stored by another backend")
		}
	}
}

func testLockHolder(t *testing.T, o Options) {
	b := o.Open(t)
	li, ok := b.(storage.LockInspector)
	if !ok {
		t.Skip("backend cannot tell lock holders")
	}
	ctx := ctxOf(t)
	if h, err := li.LockHolder(ctx, "held"); err != nil || h != "" {
		t.Errorf("holder of a free lock: %q, %v; want \"\"", h, err)
	}
	l, err := b.Lock(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	if h, err := li.LockHolder(ctx, "held"); err != nil || h == "" {
		t.Errorf("holder of a held lock: %q, %v; want a name", h, err)
	}
	_ = l.Unlock(ctx)
	if h, err := li.LockHolder(ctx, "held"); err != nil || h != "" {
		t.Errorf("holder after Unlock: %q, %v; want \"\"", h, err)
	}
}
