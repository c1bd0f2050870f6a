package haproxy_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

const domain = "shop.example.test"

// haproxyRig is a real HAProxy started for one test on loopback: a plain
// frontend that sends /.well-known/acme-challenge/ to zoku's listener and
// redirects the rest, and a TLS frontend loading a default certificate
// and the crt directory zoku writes. Its listening sockets (and the admin
// socket) are made by the test and handed over as file descriptors, so
// they accept from the first instant: no waiting for HAProxy to start.
type haproxyRig struct {
	dir, crtDir, socket string
	httpAddr, tlsAddr   string
	zokuListen          string
	cmd                 *exec.Cmd
	out                 *deploytest.Buffer
	done                chan struct{}
	ca                  *embedca.CA
	store               *storage.Store
	logs                *deploytest.Buffer
}

func startHAProxy(t *testing.T) *haproxyRig {
	t.Helper()
	bin := need.Binary(t, "haproxy", "apt-get install -y haproxy")
	r := &haproxyRig{dir: t.TempDir(), out: &deploytest.Buffer{}, logs: &deploytest.Buffer{}, done: make(chan struct{})}
	r.crtDir = filepath.Join(r.dir, "certs")
	if err := os.Mkdir(r.crtDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A unix socket path must stay short (108 bytes); t.TempDir can be long.
	sockDir, err := os.MkdirTemp("", "zkh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	r.socket = filepath.Join(sockDir, "admin.sock")

	httpLn := deploytest.ListenTCP(t)
	tlsLn := deploytest.ListenTCP(t)
	adminLn, err := net.Listen("unix", r.socket)
	if err != nil {
		t.Fatal(err)
	}
	adminLn.(*net.UnixListener).SetUnlinkOnClose(false)
	r.httpAddr, r.tlsAddr = httpLn.Addr().String(), tlsLn.Addr().String()
	r.zokuListen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))

	cert, key := deploytest.SelfSigned(t, "default.invalid")
	defPEM := filepath.Join(r.dir, "default.pem")
	if err := os.WriteFile(defPEM, append(cert, key...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global
  stats socket fd@5 level admin
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend plain
  bind fd@3
  acl acme path_beg /.well-known/acme-challenge/
  http-request redirect scheme https code 301 unless acme
  use_backend zoku_acme if acme
backend zoku_acme
  server zoku %s
frontend tls
  bind fd@4 ssl crt %s crt %s/
  http-request return status 200 content-type text/plain string ok
`, r.zokuListen, defPEM, r.crtDir)
	cfgPath := filepath.Join(r.dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []*os.File{deploytest.FileOf(t, httpLn), deploytest.FileOf(t, tlsLn), deploytest.FileOf(t, adminLn)}
	r.cmd = exec.Command(bin, "-db", "-f", cfgPath)
	r.cmd.ExtraFiles = files
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	// HAProxy holds the sockets now; the test's copies go, so that a
	// stopped HAProxy refuses connections instead of leaving them queued.
	for _, f := range files {
		f.Close()
	}
	httpLn.Close()
	tlsLn.Close()
	adminLn.Close()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() || os.Getenv("ZOKU_TEST_LOGS") != "" {
			t.Logf("haproxy output:\n%s\ndeploy log:\n%s", r.out.String(), r.logs.String())
		}
	})
	r.ca = testenv.StartCA(t, embedca.Options{HTTPPort: deploytest.Port(t, r.httpAddr)})
	if r.store, err = storage.Open(filepath.Join(t.TempDir(), "store")); err != nil {
		t.Fatal(err)
	}
	return r
}

// stop ends HAProxy (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (r *haproxyRig) stop() { deploytest.Stop(r.cmd, r.done) }

// admin sends one command to the admin socket.
func (r *haproxyRig) admin(t *testing.T, line string) string {
	t.Helper()
	c, err := net.Dial("unix", r.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(c)
	return b.String()
}

func (r *haproxyRig) config(t *testing.T, extra string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(`entryPoints:
  unused: {address: "127.0.0.1:0"}
certificates:
  acme: {server: %q, acceptTOS: true}
targets:
  lb:
    type: haproxy
    certificates: [{main: %s}]
    challenge: {listen: %q, selfCheckAddress: %q}
    verify: {address: %q, timeout: 5s}
    haproxy:
      socket: %s
      crtDir: %s
%s`, r.ca.DirectoryURL(), domain, r.zokuListen, r.httpAddr, r.tlsAddr, r.socket, r.crtDir, extra)
	cfg, err := config.Parse("zoku.yaml", []byte(y), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}

func (r *haproxyRig) runner(t *testing.T, cfg *config.Config) *deploy.Runner {
	return deploytest.Runner(t, cfg, r.ca, r.store, r.logs)
}

func (r *haproxyRig) pemPath() string { return filepath.Join(r.crtDir, domain+".pem") }

// transactions lists the open certificate transactions.
func (r *haproxyRig) transactions(t *testing.T) []string {
	t.Helper()
	var out []string
	for l := range strings.SplitSeq(r.admin(t, "show ssl cert"), "\n") {
		if strings.HasPrefix(l, "*") {
			out = append(out, l)
		}
	}
	return out
}
