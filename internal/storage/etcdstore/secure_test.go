package etcdstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/storage/storagetest"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
)

// TestTLS reaches an etcd that requires TLS and client certificates, and
// checks that every wrong setup ends in one line saying what to change.
func TestTLS(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	ctx := t.Context()
	good, err := etcdstore.ClientTLS(etcdstore.TLSFiles{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	s, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: []string{srv.HostPort()}, TLS: good, Prefix: "tls"})
	if err != nil {
		t.Fatalf("Open with the cluster's CA and a client certificate: %v", err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.String(), "etcds://") {
		t.Errorf("String() = %q, want etcds://...", s.String())
	}
	if err := s.Store(ctx, "certificates/a.crt", []byte("A")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load(ctx, "certificates/a.crt"); err != nil || string(v) != "A" {
		t.Fatalf("Load over TLS: %q, %v", v, err)
	}
	l, err := s.Lock(ctx, "cert/a")
	if err != nil {
		t.Fatalf("Lock over TLS: %v", err)
	}
	if err := s.Store(storage.WithFence(ctx, l), "certificates/a.crt", []byte("B")); err != nil {
		t.Fatalf("fenced Store over TLS: %v", err)
	}
	_ = l.Unlock(ctx)

	for _, tc := range []struct {
		name  string
		files *etcdstore.TLSFiles // nil: no TLS at all
		want  string
	}{
		{"no client certificate", &etcdstore.TLSFiles{CAFile: files.CA}, "refused zoku's client certificate"},
		{"another CA", &etcdstore.TLSFiles{CAFile: files.OtherCA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "not signed by a CA zoku trusts; set storage.etcd.caFile"},
		{"plain etcd:// against TLS", nil, "it speaks TLS: write etcds://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := etcdstore.Options{Endpoints: []string{srv.HostPort()}, DialTimeout: time.Second}
			if tc.files != nil {
				c, err := etcdstore.ClientTLS(*tc.files)
				if err != nil {
					t.Fatal(err)
				}
				o.TLS = c
			}
			s, err := etcdstore.Open(ctx, o)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line containing %q", msg, tc.want)
			}
		})
	}
}

// TestClientTLSFiles: bad files are named, their content never shown.
func TestClientTLSFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, files := tlsFilesOnly(t)
	notPEM := write("not.pem", "hello")
	keyBytes, err := os.ReadFile(files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files etcdstore.TLSFiles
		want  string
	}{
		{"missing CA", etcdstore.TLSFiles{CAFile: filepath.Join(dir, "none.pem")}, "cannot read the CA file " + filepath.Join(dir, "none.pem") + ": no such file"},
		{"CA not PEM", etcdstore.TLSFiles{CAFile: notPEM}, "holds no PEM certificate"},
		{"certificate without key", etcdstore.TLSFiles{CertFile: files.ClientCert}, "both its certificate file and its key file"},
		{"key of another certificate", etcdstore.TLSFiles{CertFile: files.ServerCert, KeyFile: files.ClientKey}, "belong together"},
		{"key is not PEM", etcdstore.TLSFiles{CertFile: files.ClientCert, KeyFile: notPEM}, notPEM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := etcdstore.ClientTLS(tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ClientTLS: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(keyBytes[30:60])) {
				t.Errorf("the error shows key material: %v", err)
			}
		})
	}
}

// tlsFilesOnly makes the certificate files of etcdtest without starting
// etcd.
func tlsFilesOnly(t *testing.T) (string, *etcdtest.TLSFiles) {
	t.Helper()
	dir := t.TempDir()
	return dir, etcdtest.MakeTLSFiles(t, dir)
}

// enableAuth turns etcd's authentication on through the client API: a
// root user, and a user "zoku" whose role may read and write under
// prefix only. It returns zoku's password.
func enableAuth(t *testing.T, srv *etcdtest.Server, prefix string) string {
	t.Helper()
	ctx := t.Context()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.HostPort()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const pw = "zoku-Secret-4711"
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-Secret-0815"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "zoku-role"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "zoku-role", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "zoku", pw); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "zoku", "zoku-role"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("enable auth, step %d: %v", i, err)
		}
	}
	return pw
}

// TestAuth runs the conformance suite as a user whose role may touch
// only zoku's prefix, and checks the errors of a wrong password, no
// credentials, and a prefix the user may not touch.
func TestAuth(t *testing.T) {
	srv := etcdtest.Start(t)
	pw := enableAuth(t, srv, "zoku-auth/")
	open := func(t *testing.T, prefix, user, password string) (*etcdstore.Store, error) {
		return etcdstore.Open(t.Context(), etcdstore.Options{Endpoints: []string{srv.HostPort()}, Prefix: prefix,
			Username: user, Password: password, LeaseTTL: 5 * time.Second, DialTimeout: 2 * time.Second})
	}
	var mu sync.Mutex
	prefixes := map[*testing.T]string{}
	storagetest.Run(t, storagetest.Options{
		Open: func(t *testing.T) storage.Backend {
			mu.Lock()
			p, ok := prefixes[t]
			if !ok {
				p = "zoku-auth/" + t.Name()
				prefixes[t] = p
			}
			mu.Unlock()
			s, err := open(t, p, "zoku", pw)
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

	for _, tc := range []struct {
		name, prefix, user, password, want string
	}{
		{"wrong password", "zoku-auth", "zoku", "not-the-Password", `authentication failed for user "zoku"`},
		{"no credentials", "zoku-auth", "", "", "authentication on: set storage.etcd.username and password"},
		{"prefix not granted", "elsewhere", "zoku", pw, `permission denied: user "zoku" needs readwrite on the keys under "elsewhere/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := open(t, tc.prefix, tc.user, tc.password)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line containing %q", msg, tc.want)
			}
			for _, secret := range []string{pw, "not-the-Password"} {
				if strings.Contains(msg, secret) {
					t.Errorf("the error shows a password: %q", msg)
				}
			}
		})
	}
}
