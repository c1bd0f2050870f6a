// Package etcdstore is the storage backend for a cluster of zoku nodes: the
// same keys as the file layout, under one prefix of an etcd cluster.
//
// Locks are etcd mutexes on a lease (a session) that the client keeps alive;
// a node that crashes or is cut off loses its locks when the lease's TTL
// runs out. The fencing token of a lock is the create revision of its mutex
// key, and every write made under a lock is a transaction that compares it:
// a node whose lease expired while it was away cannot overwrite what the
// next holder wrote. Watch follows a prefix with etcd's watch, which resumes
// by itself after a reconnect.
package etcdstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/zoku/zoku/internal/storage"
)

// Options configure Open. Endpoints is required.
type Options struct {
	// Endpoints are host:port or URLs of the cluster's members.
	Endpoints []string
	// Prefix is the key prefix every key lives under; empty means "zoku".
	Prefix string
	// TLS, when set, is used to reach the members (client certificates, a
	// private CA).
	TLS *tls.Config
	// Username and Password authenticate with etcd's auth, when set.
	Username, Password string
	// Holder names this node in locks; empty means "<hostname>:<pid>".
	Holder string
	// LeaseTTL is how long a lock outlives a holder that stopped renewing
	// its lease; zero means 10 s. etcd counts whole seconds.
	LeaseTTL time.Duration
	// DialTimeout bounds reaching the cluster at Open; zero means 5 s.
	DialTimeout time.Duration
	// RequestTimeout bounds every call whose ctx has no deadline; zero
	// means 10 s.
	RequestTimeout time.Duration
}

// Store is the etcd backend. Create it with Open.
type Store struct {
	cli     *clientv3.Client
	prefix  string // with a trailing '/'
	holder  string
	ttl     int
	timeout time.Duration
	desc    string

	mu      sync.Mutex
	session *concurrency.Session // nil until the first lock; replaced once Done

	local localLocks // one holder per lock name in this process
}

var (
	_ storage.Backend       = (*Store)(nil)
	_ storage.Batcher       = (*Store)(nil)
	_ storage.Watcher       = (*Store)(nil)
	_ storage.LockInspector = (*Store)(nil)
)

// ParseURL reads "etcd://host:2379,host:2379/prefix" (or "etcds://..." for
// TLS) into the endpoints and prefix of Options; the user and password, if
// the URL has them, go to Username and Password.
func ParseURL(raw string) (Options, bool, error) {
	var o Options
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "etcd" && scheme != "etcds") {
		return o, false, fmt.Errorf("etcd: %q is not an etcd:// URL; write etcd://host:2379,host:2379/prefix", redact(raw))
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(hosts, '@'); at >= 0 {
		u, err := url.Parse("x://" + hosts[:at] + "@h")
		if err != nil || u.User == nil {
			return o, false, errors.New("etcd: the user part of the storage URL is malformed; write etcd://user:password@host:2379/prefix")
		}
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
		hosts = hosts[at+1:]
	}
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			return o, false, fmt.Errorf("etcd: endpoint %q of the storage URL is not host:port", h)
		}
		o.Endpoints = append(o.Endpoints, h)
	}
	if len(o.Endpoints) == 0 {
		return o, false, errors.New("etcd: the storage URL names no endpoint; write etcd://host:2379/prefix")
	}
	o.Prefix = strings.Trim(prefix, "/")
	return o, scheme == "etcds", nil
}

// redact drops a password from a URL for messages.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, _, _ := strings.Cut(rest[:at], ":")
		return scheme + "://" + user + ":***@" + rest[at+1:]
	}
	return raw
}

// Open connects to the cluster and checks that it answers; the error says
// which endpoints did not.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = "zoku"
	}
	if o.Holder == "" {
		o.Holder = storage.DefaultHolder()
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: o.Endpoints, TLS: o.TLS, Username: o.Username, Password: o.Password,
		DialTimeout: o.DialTimeout, Logger: zap.NewNop(), Context: context.WithoutCancel(ctx),
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 3 * time.Second,
		// gRPC's default reconnect backoff grows to two minutes: after an
		// outage a node would stay cut off long after etcd is back.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	where := strings.Join(o.Endpoints, ",")
	prefix := strings.Trim(o.Prefix, "/") + "/"
	if err != nil {
		return nil, fmt.Errorf("etcd: connect to %s: %w", where, explain(err, o.Username, prefix))
	}
	scheme := "etcd://"
	if o.TLS != nil {
		scheme = "etcds://"
	}
	s := &Store{
		cli: cli, prefix: prefix, holder: o.Holder,
		ttl: max(1, int(o.LeaseTTL.Round(time.Second)/time.Second)), timeout: o.RequestTimeout,
		desc: scheme + where + "/" + strings.Trim(o.Prefix, "/"),
	}
	cctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, s.prefix+".probe"); err != nil {
		_ = cli.Close()
		if !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("etcd: %s: %w", where, explain(err, o.Username, prefix))
		}
		if why := diagnose(ctx, o.Endpoints, o.TLS); why != "" {
			return nil, fmt.Errorf("etcd: cannot reach %s: %s", where, why)
		}
		return nil, fmt.Errorf("etcd: cannot reach %s: %w; check that etcd runs there and the address, TLS and credentials", where, cleanErr(err))
	}
	return s, nil
}

// cleanErr shortens gRPC errors of the client.
func cleanErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("no answer in time")
	}
	return err
}

// Close releases the session (its locks) and the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	sess := s.session
	s.session = nil
	s.mu.Unlock()
	if sess != nil {
		_ = sess.Close()
	}
	return s.cli.Close()
}

// Client is the etcd client (tests reach around the backend with it).
func (s *Store) Client() *clientv3.Client { return s.cli }

// String is "etcd://endpoints/prefix", without credentials.
func (s *Store) String() string { return s.desc }

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) full(key string) string { return s.prefix + key }

// Load reads a value.
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.full(key))
	if err != nil {
		return nil, fmt.Errorf("etcd: load %s: %w", key, cleanErr(err))
	}
	if len(resp.Kvs) == 0 {
		return nil, storage.NotExist(key)
	}
	return resp.Kvs[0].Value, nil
}

// Stat describes a value; etcd keeps no modification time.
func (s *Store) Stat(ctx context.Context, key string) (storage.KeyInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.KeyInfo{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.full(key))
	if err != nil {
		return storage.KeyInfo{}, fmt.Errorf("etcd: stat %s: %w", key, cleanErr(err))
	}
	if len(resp.Kvs) == 0 {
		return storage.KeyInfo{}, storage.NotExist(key)
	}
	kv := resp.Kvs[0]
	return storage.KeyInfo{Key: key, Size: int64(len(kv.Value)), Revision: kv.ModRevision}, nil
}

// Store writes a value.
func (s *Store) Store(ctx context.Context, key string, value []byte) error {
	return s.StoreAll(ctx, []storage.Op{{Key: key, Value: value}})
}

// Delete removes a value.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.StoreAll(ctx, []storage.Op{{Key: key, Delete: true}})
}

// StoreAll writes the batch in one transaction, compared against the
// fence of ctx when it has one.
func (s *Store) StoreAll(ctx context.Context, ops []storage.Op) error {
	txOps := make([]clientv3.Op, 0, len(ops))
	for _, op := range ops {
		if err := storage.CheckKey(op.Key); err != nil {
			return err
		}
		if op.Delete {
			txOps = append(txOps, clientv3.OpDelete(s.full(op.Key)))
		} else {
			txOps = append(txOps, clientv3.OpPut(s.full(op.Key), string(op.Value)))
		}
	}
	var cmps []clientv3.Cmp
	if f := storage.FenceFrom(ctx); f != nil {
		l, ok := f.(*lease)
		if !ok || l.store != s {
			return fmt.Errorf("etcd: a write fenced by a lock of another backend: %w", storage.ErrFenced)
		}
		if !l.held() {
			return fmt.Errorf("%w (lock %s was released)", storage.ErrFenced, l.name)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.token))
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(txOps...).Commit()
	if err != nil {
		return fmt.Errorf("etcd: write %s: %w", ops[0].Key, cleanErr(err))
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w (%s)", storage.ErrFenced, ops[0].Key)
	}
	return nil
}

// List returns the keys under prefix, sorted, without hidden keys (locks).
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	p := s.prefix
	if prefix = strings.TrimSuffix(prefix, "/"); prefix != "" {
		if err := storage.CheckKey(prefix); err != nil {
			return nil, err
		}
		p += prefix + "/"
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcd: list %s: %w", prefix, cleanErr(err))
	}
	keys := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), s.prefix)
		if hidden(k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// hidden reports whether a key has a segment starting with '.', the
// backend's own bookkeeping.
func hidden(key string) bool {
	return strings.HasPrefix(key, ".") || strings.Contains(key, "/.")
}

// Watch reports keys changed under prefix from the moment it returns:
// it reads the cluster's revision first and watches from the next one,
// so a write made right after Watch returns is reported even if the
// watch stream is set up later (which takes longer with auth on). After
// a reconnect the client resumes where it stopped; when etcd has
// compacted that history, every key under prefix is reported once, so
// nothing is missed.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if err := storage.CheckKey(prefix); err != nil {
		return nil, err
	}
	gctx, cancel := s.ctx(ctx)
	head, err := s.cli.Get(gctx, s.full(prefix)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return nil, fmt.Errorf("etcd: watch %s: %w", prefix, cleanErr(err))
	}
	rev := head.Header.Revision + 1
	out := make(chan string, 64)
	go func() {
		defer close(out)
		send := func(k string) bool {
			select {
			case out <- k:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for ctx.Err() == nil {
			opts := []clientv3.OpOption{clientv3.WithPrefix()}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.full(prefix)+"/", opts...)
			for resp := range wch {
				if resp.CompactRevision > 0 {
					// History is gone: report everything.
					rev = 0
					keys, _ := s.List(ctx, prefix)
					for _, k := range keys {
						if !send(k) {
							return
						}
					}
					break
				}
				if err := resp.Err(); err != nil {
					break
				}
				for _, ev := range resp.Events {
					k := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
					if !hidden(k) && !send(k) {
						return
					}
				}
				rev = resp.Header.Revision + 1
			}
			if ctx.Err() != nil {
				return
			}
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return out, nil
}
