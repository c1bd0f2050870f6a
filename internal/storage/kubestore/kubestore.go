// Package kubestore is the storage backend for zoku replicas in one
// Kubernetes cluster: certificates, keys, accounts and challenge answers in
// Secrets of one namespace, locks on coordination.k8s.io Leases. Replicas
// share certificates and order each name once, with no etcd of their own.
//
// # Keys and Secrets
//
// The keys of one certificate set ("certificates/a.example.crt", ".key",
// ".json", ".issuer.crt") live in one Secret, so a set is written in one
// update and a reader sees all of it or none; every other key (an account,
// a challenge answer) is a Secret of its own the same way, grouped by its
// name without the extension. A Secret is named
// "<prefix>-<readable part of the key>-<hash>" (always a valid name, unique
// per group), labelled zoku.dev/store=<prefix>, and maps its data entries
// back to keys in the annotation zoku.dev/keys. A Secret holds at most
// 1 MiB, which a certificate set never approaches.
//
// Every write is a read-modify-write of one Secret with its
// resourceVersion as precondition, retried on conflict, so concurrent
// writers of one set never lose each other's keys. A batch (StoreAll)
// touching one Secret is atomic; a batch over several Secrets is written
// Secret by Secret in the order of its operations, like the file backend
// (put the key that marks a set complete last).
//
// # Locks and fencing
//
// A lock is a Lease named for it. The holder renews it every third of
// Options.LeaseDuration; a holder that cannot renew for a whole
// LeaseDuration (crashed, cut off, paused) considers the lock lost (Lost
// is closed), and another replica may take the Lease once it has not been
// renewed for LeaseDuration. Unlock clears the holder and keeps the Lease,
// so its spec.leaseTransitions, incremented by every new holder, is the
// fencing token.
//
// A fenced write (storage.WithFence) is refused with storage.ErrFenced
// when the lock was released or lost locally, when the Lease, read just
// before the write, has another holder or token, or when the Secret
// records a larger token of that lock (annotation zoku.dev/fence-<lock>,
// set by every fenced write in the same update as the data, under the
// Secret's resourceVersion precondition). Kubernetes has no transaction
// over two objects, so the Lease check and the Secret update are two
// requests: a holder that stalls between them for longer than
// LeaseDuration can still land one write after a new holder took the
// lock, until the new holder's first fenced write to that Secret, which
// records the larger token and refuses the stale holder from then on. The
// same limit applies to CertMagic's storage locks; zoku's issuing path
// re-reads under the lock and saves last, so such a late write is at
// worst a valid certificate the new holder then replaces.
package kubestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/zoku/zoku/internal/kubeclient"
	"github.com/zoku/zoku/internal/storage"
)

// Labels and annotations of the objects kubestore writes.
const (
	labelStore     = "zoku.dev/store"
	labelManagedBy = "app.kubernetes.io/managed-by"
	annKeys        = "zoku.dev/keys"
	annFencePrefix = "zoku.dev/fence-"
)

// Options configure New. Client and Namespace are required.
type Options struct {
	// Client reaches the API server.
	Client *kubeclient.Client
	// Namespace holds the Secrets and Leases.
	Namespace string
	// Prefix starts every object's name and is the value of the
	// zoku.dev/store label; empty means "zoku".
	Prefix string
	// Holder names this replica in locks; empty means "<hostname>:<pid>".
	Holder string
	// LeaseDuration is how long a lock outlives a holder that stopped
	// renewing it; zero means 15 s.
	LeaseDuration time.Duration
	// RequestTimeout bounds every call whose ctx has no deadline; zero
	// means 10 s.
	RequestTimeout time.Duration
	// PollInterval is how often Lock asks for a held lock; zero means
	// 100 ms.
	PollInterval time.Duration
}

// Store is the Kubernetes backend. Create it with New or Open.
type Store struct {
	o      Options
	client *kubeclient.Client
	local  localLocks
	desc   string
}

var (
	_ storage.Backend       = (*Store)(nil)
	_ storage.Batcher       = (*Store)(nil)
	_ storage.Watcher       = (*Store)(nil)
	_ storage.LockInspector = (*Store)(nil)
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// New returns a Store; it does no network I/O.
func New(o Options) (*Store, error) {
	if o.Client == nil {
		return nil, errors.New("kubernetes storage: no client")
	}
	if !nameRE.MatchString(o.Namespace) || len(o.Namespace) > 63 {
		return nil, fmt.Errorf("kubernetes storage: %q is not a namespace name", o.Namespace)
	}
	if o.Prefix == "" {
		o.Prefix = "zoku"
	}
	if !nameRE.MatchString(o.Prefix) || len(o.Prefix) > 40 {
		return nil, fmt.Errorf("kubernetes storage: prefix %q must be lower-case letters, digits and '-' (at most 40)", o.Prefix)
	}
	if o.Holder == "" {
		o.Holder = storage.DefaultHolder()
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	return &Store{o: o, client: o.Client, desc: "kubernetes://" + o.Namespace + "/" + o.Prefix}, nil
}

// URL is a parsed "kubernetes://namespace/prefix?kubeconfig=…&context=…".
type URL struct {
	Namespace, Prefix   string
	Kubeconfig, Context string
}

// ParseURL reads a storage URL: kubernetes://<namespace>[/<prefix>], with
// optional kubeconfig and context query parameters (default: in-cluster
// credentials, else $KUBECONFIG or ~/.kube/config).
func ParseURL(raw string) (URL, error) {
	var u URL
	rest, ok := strings.CutPrefix(raw, "kubernetes://")
	if !ok {
		return u, fmt.Errorf("kubernetes storage: %q is not a kubernetes:// URL; write kubernetes://<namespace>/<prefix>", raw)
	}
	pu, err := url.Parse("x://" + rest)
	if err != nil {
		return u, fmt.Errorf("kubernetes storage: %q: %w", raw, err)
	}
	u.Namespace, u.Prefix = pu.Host, strings.Trim(pu.Path, "/")
	u.Kubeconfig, u.Context = pu.Query().Get("kubeconfig"), pu.Query().Get("context")
	if u.Namespace == "" {
		return u, errors.New("kubernetes storage: the URL names no namespace; write kubernetes://<namespace>/<prefix>")
	}
	return u, nil
}

// Open connects with cfg and checks that the namespace's Secrets can be
// listed; the error says what is missing.
func Open(ctx context.Context, cfg *rest.Config, o Options) (*Store, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "zoku-storage"
	cs, err := kubeclient.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes storage: %w", err)
	}
	o.Client = cs
	s, err := New(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := cs.Secrets(o.Namespace).List(ctx, metav1.ListOptions{LabelSelector: s.selector(), Limit: 1}); err != nil {
		return nil, fmt.Errorf("kubernetes storage: cannot list Secrets in namespace %s at %s: %w; check the namespace, the credentials and zoku's RBAC rights (deploy/kubernetes/rbac.yaml)", o.Namespace, cfg.Host, err)
	}
	return s, nil
}

// String is "kubernetes://namespace/prefix".
func (s *Store) String() string { return s.desc }

func (s *Store) selector() string { return labelStore + "=" + s.o.Prefix }

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.o.RequestTimeout)
}

// setSuffixes are the extensions of a certificate set's keys; longer
// first.
var setSuffixes = []string{".issuer.crt", ".crt", ".key", ".json", ".pem", ".pfx", ".csr"}

// group is the Secret a key lives in: the key without its extension.
func group(key string) string {
	for _, suf := range setSuffixes {
		if g, ok := strings.CutSuffix(key, suf); ok && path.Base(g) != "" && !strings.HasSuffix(g, "/") {
			return g
		}
	}
	return key
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// readable turns s into a run of name characters.
func readable(s string, max int) string {
	r := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(r) > max {
		r = strings.TrimRight(r[:max], "-")
	}
	return r
}

// secretName names the Secret of a group.
func (s *Store) secretName(g string) string {
	r := readable(g, 180)
	if r == "" {
		return s.o.Prefix + "-" + shortHash(g, 16)
	}
	return s.o.Prefix + "-" + r + "-" + shortHash(g, 10)
}

var dataKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// dataKey is a key's entry in its Secret's data: its base name, or, when
// that has characters data keys cannot, a cleaned name with a hash.
func dataKey(key string) string {
	b := path.Base(key)
	if dataKeyRE.MatchString(b) && len(b) <= 200 && b != "." && b != ".." {
		return b
	}
	c := regexp.MustCompile(`[^-._a-zA-Z0-9]+`).ReplaceAllString(b, "_")
	if len(c) > 180 {
		c = c[:180]
	}
	return c + "-" + shortHash(b, 8)
}

// keysOf reads the zoku.dev/keys annotation: data key to key.
func keysOf(sec *corev1.Secret) map[string]string {
	m := map[string]string{}
	if v := sec.Annotations[annKeys]; v != "" {
		_ = json.Unmarshal([]byte(v), &m)
	}
	return m
}

// get returns the Secret of a group, or nil when there is none.
func (s *Store) get(ctx context.Context, g string) (*corev1.Secret, error) {
	sec, err := s.client.Secrets(s.o.Namespace).Get(ctx, s.secretName(g), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes storage: read %s: %w", s.secretName(g), err)
	}
	return sec, nil
}

// Load reads a value.
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	sec, err := s.get(ctx, group(key))
	if err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, storage.NotExist(key)
	}
	dk := dataKey(key)
	v, ok := sec.Data[dk]
	if !ok || keysOf(sec)[dk] != key {
		return nil, storage.NotExist(key)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Stat describes a value; Revision is the Secret's resourceVersion.
func (s *Store) Stat(ctx context.Context, key string) (storage.KeyInfo, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.KeyInfo{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	sec, err := s.get(ctx, group(key))
	if err != nil {
		return storage.KeyInfo{}, err
	}
	dk := dataKey(key)
	if sec == nil || keysOf(sec)[dk] != key {
		return storage.KeyInfo{}, storage.NotExist(key)
	}
	if _, ok := sec.Data[dk]; !ok {
		return storage.KeyInfo{}, storage.NotExist(key)
	}
	rev, _ := strconv.ParseInt(sec.ResourceVersion, 10, 64)
	return storage.KeyInfo{Key: key, Size: int64(len(sec.Data[dk])), Revision: rev}, nil
}

// Store writes a value.
func (s *Store) Store(ctx context.Context, key string, value []byte) error {
	return s.StoreAll(ctx, []storage.Op{{Key: key, Value: value}})
}

// Delete removes a value.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.StoreAll(ctx, []storage.Op{{Key: key, Delete: true}})
}

// StoreAll writes the ops, one Secret at a time in the order of the ops;
// the ops of one Secret are one update.
func (s *Store) StoreAll(ctx context.Context, ops []storage.Op) error {
	for _, op := range ops {
		if err := storage.CheckKey(op.Key); err != nil {
			return err
		}
	}
	var order []string
	byGroup := map[string][]storage.Op{}
	for _, op := range ops {
		g := group(op.Key)
		if _, ok := byGroup[g]; !ok {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], op)
	}
	var fence *lease
	if f := storage.FenceFrom(ctx); f != nil {
		l, ok := f.(*lease)
		if !ok || l.store != s {
			return fmt.Errorf("kubernetes storage: a write fenced by a lock of another backend: %w", storage.ErrFenced)
		}
		fence = l
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	for _, g := range order {
		if err := s.update(ctx, g, byGroup[g], fence); err != nil {
			return err
		}
	}
	return nil
}

// update applies ops to one Secret: read, check the fence, write with
// the resourceVersion read; again on a conflict.
func (s *Store) update(ctx context.Context, g string, ops []storage.Op, fence *lease) error {
	name := s.secretName(g)
	for attempt := 0; ; attempt++ {
		if fence != nil {
			if err := fence.check(ctx); err != nil {
				return err
			}
		}
		sec, err := s.get(ctx, g)
		if err != nil {
			return err
		}
		create := sec == nil
		if create {
			sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.o.Namespace,
				Labels: map[string]string{labelStore: s.o.Prefix, labelManagedBy: "zoku"}}, Type: corev1.SecretTypeOpaque}
		}
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		if fence != nil {
			fk := annFencePrefix + shortHash(fence.name, 12)
			if prev, _ := strconv.ParseInt(sec.Annotations[fk], 10, 64); prev > fence.token {
				return fmt.Errorf("%w (%s: a later holder of lock %s wrote it)", storage.ErrFenced, ops[0].Key, fence.name)
			}
			sec.Annotations[fk] = strconv.FormatInt(fence.token, 10)
		}
		keys := keysOf(sec)
		for _, op := range ops {
			dk := dataKey(op.Key)
			if op.Delete {
				if keys[dk] == op.Key {
					delete(sec.Data, dk)
					delete(keys, dk)
				}
				continue
			}
			sec.Data[dk] = op.Value
			keys[dk] = op.Key
		}
		kj, _ := json.Marshal(keys)
		sec.Annotations[annKeys] = string(kj)
		cl := s.client.Secrets(s.o.Namespace)
		switch {
		case create && len(sec.Data) == 0:
			return nil // deleting what is not there
		case create:
			_, err = cl.Create(ctx, sec, metav1.CreateOptions{})
		case len(sec.Data) == 0:
			err = cl.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &sec.ResourceVersion}})
			if apierrors.IsNotFound(err) {
				err = nil
			}
		default:
			_, err = cl.Update(ctx, sec, metav1.UpdateOptions{})
		}
		if err == nil {
			return nil
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 50 && ctx.Err() == nil {
			continue
		}
		if apierrors.IsRequestEntityTooLargeError(err) {
			return fmt.Errorf("kubernetes storage: write %s: a Secret holds at most 1 MiB: %w", ops[0].Key, err)
		}
		return fmt.Errorf("kubernetes storage: write %s: %w", ops[0].Key, err)
	}
}

// List returns the keys under prefix, sorted.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if prefix = strings.TrimSuffix(prefix, "/"); prefix != "" {
		if err := storage.CheckKey(prefix); err != nil {
			return nil, err
		}
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var keys []string
	opts := metav1.ListOptions{LabelSelector: s.selector(), Limit: 500}
	for {
		list, err := s.client.Secrets(s.o.Namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("kubernetes storage: list %s: %w", prefix, err)
		}
		for i := range list.Items {
			keys = append(keys, keysUnder(&list.Items[i], prefix)...)
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// keysUnder returns the keys of sec under prefix.
func keysUnder(sec *corev1.Secret, prefix string) []string {
	var out []string
	for dk, k := range keysOf(sec) {
		if _, ok := sec.Data[dk]; !ok {
			continue
		}
		if prefix == "" || strings.HasPrefix(k, prefix+"/") {
			out = append(out, k)
		}
	}
	return out
}

// localLocks gives each lock name to one goroutine of this Store at a
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
			return func() { <-ch }, nil
		default:
			return nil, fmt.Errorf("%w: %s", storage.ErrLocked, name)
		}
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("kubernetes storage: waiting for lock %s: %w", name, ctx.Err())
	}
}
