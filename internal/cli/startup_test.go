package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/testkit/testenv"
)

// startupConfig is a quickstart-like config on ports of the test's; its
// {{...}} parts are set per case.
const startupConfig = `
entryPoints:
  web: {address: "127.0.0.1:{{web}}"}
  websecure:
    address: "127.0.0.1:{{tls}}"
    tls: {}
admin: {{admin}}
accessLog: {path: "{{alog}}"}
certificates:
  onHostRule: true
  acme:
    server: embedded
    acceptTOS: true
    storage: "{{storage}}"
    challenges:
      http: {entryPoint: web}
routes:
  demo: {host: demo.localhost, service: demo}
services:
  demo:
    static: {body: "hi\n"}
`

// TestRunStartupFailures: every way `zoku run` can fail at start is one
// line naming the setting and the fix, exit 1, no panic; nothing is left
// listening and the storage is as it was.
func TestRunStartupFailures(t *testing.T) {
	type setup struct {
		web, tls, admin int
		dir, storage    string
	}
	tests := []struct {
		name string
		// prepare changes the setup and returns the config's admin and
		// accessLog values.
		prepare func(t *testing.T, s *setup) (admin, alog string)
		want    []string
	}{
		{"busy TLS port", func(t *testing.T, s *setup) (string, string) {
			hold(t, s.tls)
			return adminOn(s.admin), ""
		}, []string{"entryPoints.websecure.address", "already in use"}},
		{"busy plain port", func(t *testing.T, s *setup) (string, string) {
			hold(t, s.web)
			return adminOn(s.admin), ""
		}, []string{"entryPoints.web.address", "already in use"}},
		{"busy admin port", func(t *testing.T, s *setup) (string, string) {
			hold(t, s.admin)
			return adminOn(s.admin), ""
		}, []string{"admin.address", "already in use"}},
		{"access log folder missing", func(t *testing.T, s *setup) (string, string) {
			return adminOn(s.admin), filepath.Join(s.dir, "nope", "access.log")
		}, []string{"accessLog.path", "create its folder"}},
		{"access log is a folder", func(t *testing.T, s *setup) (string, string) {
			p := filepath.Join(s.dir, "logdir")
			must(t, os.Mkdir(p, 0o700))
			return adminOn(s.admin), p
		}, []string{"accessLog.path", "name a file in it"}},
		{"access log below a file", func(t *testing.T, s *setup) (string, string) {
			p := filepath.Join(s.dir, "afile")
			must(t, os.WriteFile(p, nil, 0o600))
			return adminOn(s.admin), filepath.Join(p, "access.log")
		}, []string{"accessLog.path", "not a directory"}},
		{"storage is a file", func(t *testing.T, s *setup) (string, string) {
			must(t, os.WriteFile(s.storage, []byte("x"), 0o600))
			return adminOn(s.admin), ""
		}, []string{"certificates.acme.storage", "a file, not a folder"}},
		{"storage cannot be made", func(t *testing.T, s *setup) (string, string) {
			s.storage = "/proc/zoku-cannot-be-here"
			return adminOn(s.admin), ""
		}, []string{"certificates.acme.storage", "not writable"}},
		{"admin.token is a folder", func(t *testing.T, s *setup) (string, string) {
			must(t, os.MkdirAll(filepath.Join(s.storage, "admin.token"), 0o700))
			return adminOn(s.admin), ""
		}, []string{"admin", "token"}},
		{"unknown HTTP/1.1 server", func(t *testing.T, s *setup) (string, string) {
			t.Setenv("ZOKU_HTTP1_SERVER", "nginx")
			return adminOn(s.admin), ""
		}, []string{"ZOKU_HTTP1_SERVER", "net/http"}},
		{"embedded-ca is a file", func(t *testing.T, s *setup) (string, string) {
			must(t, os.MkdirAll(s.storage, 0o700))
			must(t, os.WriteFile(filepath.Join(s.storage, "embedded-ca"), []byte("x"), 0o600))
			return adminOn(s.admin), ""
		}, []string{"embedded CA", "certificates.acme.storage"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &setup{web: testenv.FreePort(t), tls: testenv.FreePort(t), admin: testenv.FreePort(t), dir: t.TempDir()}
			s.storage = filepath.Join(s.dir, "store")
			adminCfg, alog := tc.prepare(t, s)
			if alog == "" {
				alog = "stderr"
			}
			before := snapshot(t, s.dir)
			cfg := strings.NewReplacer("{{web}}", fmt.Sprint(s.web), "{{tls}}", fmt.Sprint(s.tls), "{{admin}}", adminCfg,
				"{{alog}}", alog, "{{storage}}", s.storage).Replace(startupConfig)
			path := filepath.Join(t.TempDir(), "zoku.yaml")
			must(t, os.WriteFile(path, []byte(cfg), 0o600))
			r := zoku(t, "", false, "run", "--config", path)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstderr:\n%s", r.code, r.stderr)
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
				t.Fatalf("panicked:\n%s", r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "zoku run: ") {
				t.Fatalf("last stderr line %q is not the error line\nstderr:\n%s", last, r.stderr)
			}
			t.Logf("error line: %s", last)
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("error line %q does not contain %q", last, w)
				}
			}
			for _, p := range []int{s.web, s.tls, s.admin} {
				if tc.name == "busy TLS port" && p == s.tls || tc.name == "busy plain port" && p == s.web || tc.name == "busy admin port" && p == s.admin {
					continue
				}
				ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					t.Errorf("port %d still taken after the failed start: %v", p, err)
					continue
				}
				ln.Close()
			}
			after := snapshot(t, s.dir)
			for k := range after {
				if _, ok := before[k]; !ok && !strings.HasPrefix(k, "store/") {
					t.Errorf("the failed start created %s", k)
				}
			}
		})
	}

	t.Run("admin disabled starts", func(t *testing.T) {
		s := &setup{web: testenv.FreePort(t), tls: testenv.FreePort(t), dir: t.TempDir()}
		cfg := strings.NewReplacer("{{web}}", fmt.Sprint(s.web), "{{tls}}", fmt.Sprint(s.tls), "{{admin}}", "{disabled: true}",
			"{{alog}}", "stderr", "{{storage}}", filepath.Join(s.dir, "store")).Replace(startupConfig)
		r := startRunOn(t, cfg, s.web, s.tls, nil)
		if r.srv.adm != nil {
			t.Fatal("admin started though disabled")
		}
	})
}

func adminOn(port int) string { return fmt.Sprintf("{address: \"127.0.0.1:%d\"}", port) }

// hold keeps a port busy for the test.
func hold(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}
