package etcdstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/storage/storagetest"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
)

func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	var mu sync.Mutex
	prefixes := map[*testing.T]string{}
	n := 0
	storagetest.Run(t, storagetest.Options{
		Open: func(t *testing.T) storage.Backend {
			mu.Lock()
			p, ok := prefixes[t]
			if !ok {
				n++
				p = "test" + strings.Repeat("x", n%3) + "/" + t.Name()
				prefixes[t] = p
			}
			mu.Unlock()
			s, err := etcdstore.Open(t.Context(), etcdstore.Options{Endpoints: []string{srv.HostPort()}, Prefix: p, LeaseTTL: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		Expire: func(t *testing.T, l storage.Lease) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := etcdstore.ExpireLease(ctx, l); err != nil {
				t.Fatalf("expire lease: %v", err)
			}
		},
	})
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in        string
		endpoints string
		prefix    string
		user      string
		tls       bool
		err       string
	}{
		{in: "etcd://127.0.0.1:2379/zoku", endpoints: "127.0.0.1:2379", prefix: "zoku"},
		{in: "etcd://a:2379,b:2379/p/q/", endpoints: "a:2379,b:2379", prefix: "p/q"},
		{in: "etcds://u:secret@a:2379/", endpoints: "a:2379", user: "u", tls: true},
		{in: "etcd://a/zoku", err: "not host:port"},
		{in: "etcd:///zoku", err: "names no endpoint"},
		{in: "http://a:2379", err: "not an etcd:// URL"},
		{in: "zk://u:secret@a:1", err: "u:***@a:1"},
	} {
		o, tls, err := etcdstore.ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q): error %v, want one containing %q and no password", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if got := strings.Join(o.Endpoints, ","); got != tc.endpoints || o.Prefix != tc.prefix || o.Username != tc.user || tls != tc.tls {
			t.Errorf("ParseURL(%q) = %v %q %q tls=%v", tc.in, o.Endpoints, o.Prefix, o.Username, tls)
		}
	}
}

// TestOpenUnreachable: a cluster that does not answer is one clear line.
func TestOpenUnreachable(t *testing.T) {
	_, err := etcdstore.Open(t.Context(), etcdstore.Options{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: time.Second, Password: "hunter2"})
	if err == nil || !strings.Contains(err.Error(), "cannot reach 127.0.0.1:1") || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open of an unreachable etcd: %v", err)
	}
}
