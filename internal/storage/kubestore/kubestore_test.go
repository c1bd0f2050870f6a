package kubestore_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zoku/zoku/internal/kubeclient"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/kubestore"
	"github.com/zoku/zoku/internal/storage/storagetest"
	"github.com/zoku/zoku/internal/testkit/kubetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.StopShared()
	os.Exit(code)
}

// open returns a backend on a namespace of the shared API server; every
// call with the same ns shares data and locks.
func open(t *testing.T, c *kubetest.Cluster, ns string) *kubestore.Store {
	t.Helper()
	s, err := kubestore.Open(t.Context(), c.Config, kubestore.Options{Namespace: ns, LeaseDuration: 2 * time.Second, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := kubetest.Shared(t)
	storagetest.Run(t, storagetest.Options{
		// Each write is a Secret update through the API server into its
		// etcd: 50 per writer keep the test within its time on a busy
		// machine, and still interleave writers and the reader.
		Writes: 50,
		Open: func(t *testing.T) storage.Backend {
			// One namespace per subtest: the suite's subtests expect an
			// empty store.
			return open(t, c, nsFor(t, c))
		},
		Expire: func(t *testing.T, l storage.Lease) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := kubestore.ExpireLease(ctx, l); err != nil {
				t.Fatalf("ExpireLease: %v", err)
			}
		},
	})
}

// nsFor returns the namespace of the current (sub)test, made once.
var namespaces = map[string]string{}

func nsFor(t *testing.T, c *kubetest.Cluster) string {
	if ns, ok := namespaces[t.Name()]; ok {
		return ns
	}
	ns := c.Namespace(t)
	namespaces[t.Name()] = ns
	return ns
}

// TestSecretsLayout checks the mapping of keys onto Secrets: a
// certificate set is one Secret with valid names whatever the key, and an
// emptied Secret is removed.
func TestSecretsLayout(t *testing.T) {
	c := kubetest.Shared(t)
	ns := c.Namespace(t)
	s := open(t, c, ns)
	ctx := t.Context()
	set := []storage.Op{
		{Key: "certificates/_.example.test.crt", Value: []byte("crt")},
		{Key: "certificates/_.example.test.key", Value: []byte("key")},
		{Key: "certificates/_.example.test.json", Value: []byte("{}")},
		{Key: "accounts/acme-v02.example/user@example.test/keys/user@example.test.key", Value: []byte("k")},
	}
	if err := s.StoreAll(ctx, set); err != nil {
		t.Fatal(err)
	}
	kc, err := kubeclient.New(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	list, err := kc.Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("Secrets: got %d, want 2 (one per certificate set, one for the account key)", len(list.Items))
	}
	for _, sec := range list.Items {
		if !strings.HasPrefix(sec.Name, "zoku-") || len(sec.Name) > 253 {
			t.Errorf("Secret name %q", sec.Name)
		}
		if strings.Contains(sec.Name, "certificates") && len(sec.Data) != 3 {
			t.Errorf("certificate set Secret %s has %d entries, want 3", sec.Name, len(sec.Data))
		}
	}
	for _, op := range set {
		got, err := s.Load(ctx, op.Key)
		if err != nil || string(got) != string(op.Value) {
			t.Errorf("Load(%s) = %q, %v", op.Key, got, err)
		}
		if err := s.Delete(ctx, op.Key); err != nil {
			t.Fatal(err)
		}
	}
	list, _ = kc.Secrets(ns).List(ctx, metav1.ListOptions{})
	if len(list.Items) != 0 {
		t.Errorf("after deleting every key, %d Secrets are left", len(list.Items))
	}
}
