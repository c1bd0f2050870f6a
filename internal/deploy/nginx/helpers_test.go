package nginx_test

import (
	"fmt"
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

const domain = "blog.example.test"

// nginxRig is a real nginx (master and one worker, not daemonised) started
// for one test with its own prefix. Its two listening sockets are made by
// the test and inherited through the NGINX variable (nginx's own binary
// upgrade mechanism), so they accept from the first instant. The TLS
// server starts with a self-signed placeholder at the paths zoku writes.
type nginxRig struct {
	bin, prefix, conf, errLog  string
	webroot, certFile, keyFile string
	httpAddr, tlsAddr          string
	cmd                        *exec.Cmd
	out, logs                  *deploytest.Buffer
	done                       chan struct{}
	ca                         *embedca.CA
	store                      *storage.Store
}

func startNginx(t *testing.T) *nginxRig {
	t.Helper()
	bin := need.Binary(t, "nginx", "apt-get install -y nginx")
	r := &nginxRig{bin: bin, prefix: t.TempDir(), out: &deploytest.Buffer{}, logs: &deploytest.Buffer{}, done: make(chan struct{})}
	r.conf = filepath.Join(r.prefix, "nginx.conf")
	r.errLog = filepath.Join(r.prefix, "error.log")
	r.webroot = filepath.Join(r.prefix, "www")
	r.certFile = filepath.Join(r.prefix, "certs", domain, "fullchain.pem")
	r.keyFile = filepath.Join(r.prefix, "certs", domain, "privkey.pem")
	cert, key := deploytest.SelfSigned(t, domain)
	for p, data := range map[string][]byte{r.certFile: cert, r.keyFile: key} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	httpLn, tlsLn := deploytest.ListenTCP(t), deploytest.ListenTCP(t)
	r.httpAddr, r.tlsAddr = httpLn.Addr().String(), tlsLn.Addr().String()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // workers read the test's 0700 folders
	}
	conf := fmt.Sprintf(`%s
daemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[3]s;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[2]s/tmp_body;
  proxy_temp_path %[2]s/tmp_proxy;
  fastcgi_temp_path %[2]s/tmp_fastcgi;
  uwsgi_temp_path %[2]s/tmp_uwsgi;
  scgi_temp_path %[2]s/tmp_scgi;
  server {
    listen %[4]s;
    location ^~ /.well-known/acme-challenge/ { root %[5]s; default_type text/plain; }
    location / { return 301 https://$host$request_uri; }
  }
  server {
    listen %[6]s ssl;
    ssl_certificate %[7]s;
    ssl_certificate_key %[8]s;
    location / { return 200 "ok\n"; }
  }
}
`, user, r.prefix, r.errLog, r.httpAddr, r.webroot, r.tlsAddr, r.certFile, r.keyFile)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []*os.File{deploytest.FileOf(t, httpLn), deploytest.FileOf(t, tlsLn)}
	r.cmd = exec.Command(bin, r.args()...)
	r.cmd.ExtraFiles = files
	r.cmd.Env = append(os.Environ(), "NGINX=3;4;")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	for _, f := range files {
		f.Close()
	}
	httpLn.Close()
	tlsLn.Close()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() || os.Getenv("ZOKU_TEST_LOGS") != "" {
			errLog, _ := os.ReadFile(r.errLog)
			t.Logf("nginx output:\n%s\nerror.log:\n%s\ndeploy log:\n%s", r.out.String(), errLog, r.logs.String())
		}
	})
	r.ca = testenv.StartCA(t, embedca.Options{HTTPPort: deploytest.Port(t, r.httpAddr)})
	var err2 error
	if r.store, err2 = storage.Open(filepath.Join(t.TempDir(), "store")); err2 != nil {
		t.Fatal(err2)
	}
	return r
}

// args are the command line options every nginx invocation of the test
// needs (its own prefix, config and error log).
func (r *nginxRig) args(more ...string) []string {
	return append([]string{"-p", r.prefix, "-c", r.conf, "-e", r.errLog}, more...)
}

// stop ends nginx (SIGTERM, then SIGKILL after 10 s) and waits.
func (r *nginxRig) stop() { deploytest.Stop(r.cmd, r.done) }

// yamlList renders argv as a YAML flow list.
func yamlList(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (r *nginxRig) config(t *testing.T, reload []string) *config.Config {
	t.Helper()
	if reload == nil {
		reload = append([]string{r.bin}, r.args("-s", "reload")...)
	}
	y := fmt.Sprintf(`entryPoints:
  unused: {address: "127.0.0.1:0"}
certificates:
  acme: {server: %q, acceptTOS: true}
targets:
  web:
    type: nginx
    certificates: [{main: %s}]
    challenge: {webroot: %q, selfCheckAddress: %q}
    verify: {address: %q, timeout: 10s}
    nginx:
      certFile: %q
      keyFile: %q
      testCommand: %s
      reloadCommand: %s
      pidFile: %q
`, r.ca.DirectoryURL(), domain, r.webroot, r.httpAddr, r.tlsAddr,
		filepath.Join(r.prefix, "certs", "{name}", "fullchain.pem"), filepath.Join(r.prefix, "certs", "{name}", "privkey.pem"),
		yamlList(append([]string{r.bin}, r.args("-t", "-q")...)), yamlList(reload), filepath.Join(r.prefix, "nginx.pid"))
	cfg, err := config.Parse("zoku.yaml", []byte(y), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	return cfg
}

func (r *nginxRig) runner(t *testing.T, cfg *config.Config) *deploy.Runner {
	return deploytest.Runner(t, cfg, r.ca, r.store, r.logs)
}

// files returns the certificate and key files' contents.
func (r *nginxRig) files(t *testing.T) (cert, key []byte) {
	t.Helper()
	cert, err := os.ReadFile(r.certFile)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = os.ReadFile(r.keyFile); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
