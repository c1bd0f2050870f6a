// Package kubetest starts a real Kubernetes API server (kube-apiserver,
// built from the Go module proxy by apiserver/build.sh) on a real etcd
// (Debian's etcd-server) on loopback, for tests of zoku's Kubernetes
// source and storage backend. No controller-manager runs: tests create
// EndpointSlices themselves, and deleted namespaces stay Terminating, so
// every test uses a fresh namespace (Namespace).
//
// Without the kube-apiserver binary a test is skipped with the command that
// builds it, or fails under CI=true (.ci/run builds it first).
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// Version is the Kubernetes version apiserver/go.mod builds; the binary
// lives in a folder named for it, so a new version builds anew.
const Version = "v1.37.2"

// BinaryEnv names a kube-apiserver binary to use instead of the built one.
const BinaryEnv = "ZOKU_KUBE_APISERVER"

// buildHint is how to get the binary.
const buildHint = "run internal/testkit/kubetest/apiserver/build.sh (about 14 minutes the first time, seconds after) or set " + BinaryEnv

// BinaryPath is where build.sh puts kube-apiserver:
// <user cache dir>/zoku-kube/<Version>/kube-apiserver.
func BinaryPath() string {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "zoku-kube", Version, "kube-apiserver")
}

// AdminUser and ServiceAccountUser are the users of the static tokens:
// AdminUser is in system:masters; ServiceAccountUser has the name (and
// groups) of the service account zoku's manifests bind their role to,
// deploy/kubernetes (namespace zoku, name zoku), and no other right.
const (
	AdminUser          = "admin"
	ServiceAccountUser = "system:serviceaccount:zoku:zoku"
)

// Cluster is a running API server and its etcd.
type Cluster struct {
	// URL is https://127.0.0.1:<port>.
	URL string
	// Kubeconfig is a kubeconfig file for AdminUser; ServiceAccountKubeconfig
	// one for ServiceAccountUser.
	Kubeconfig, ServiceAccountKubeconfig string
	// Config is the admin's REST config; Client its clientset.
	Config *rest.Config
	Client kubernetes.Interface

	bin, dir            string
	apiPort, etcdClient int
	etcdPeer            int
	adminToken, saToken string

	mu        sync.Mutex
	etcd, api *process
}

// process is a started server and its log.
type process struct {
	cmd  *exec.Cmd
	log  *safeBuffer
	done chan struct{}
}

func (p *process) kill() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// safeBuffer is a bytes.Buffer written by a process and read by the test.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the last MiB or so
		s.b.Reset()
	}
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts etcd and kube-apiserver for t and stops them in
// t.Cleanup.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := start(t, t.TempDir())
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

var (
	sharedMu sync.Mutex
	shared   *Cluster
)

// Shared returns one cluster per test binary, started on first use; a
// package's TestMain stops it with StopShared. Tests on it use their own
// namespaces.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		return shared
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		t.Fatal(err)
	}
	c, err := start(t, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("kubetest: %v", err)
	}
	shared = c
	return c
}

// StopShared stops the cluster of Shared, if one was started, and removes
// its files.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		_ = os.RemoveAll(shared.dir)
		shared = nil
	}
}

func start(t testing.TB, dir string) (*Cluster, error) {
	t.Helper()
	bin := BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		need.Missing(t, "kube-apiserver "+Version+" ("+bin+")", buildHint)
		return nil, err
	}
	etcdBin := need.Binary(t, "etcd", "apt-get install -y etcd-server")
	c := &Cluster{bin: bin, dir: dir, apiPort: testenv.FreePort(t), etcdClient: testenv.FreePort(t), etcdPeer: testenv.FreePort(t)}
	c.URL = "https://127.0.0.1:" + strconv.Itoa(c.apiPort)
	c.adminToken, c.saToken = randomToken(), randomToken()
	if err := c.writeFiles(); err != nil {
		return nil, err
	}
	if err := c.startEtcd(etcdBin); err != nil {
		return nil, err
	}
	if err := c.StartAPIServer(); err != nil {
		c.Stop()
		return nil, err
	}
	var err error
	if c.Kubeconfig, err = c.writeKubeconfig("admin.kubeconfig", c.adminToken); err != nil {
		c.Stop()
		return nil, err
	}
	if c.ServiceAccountKubeconfig, err = c.writeKubeconfig("sa.kubeconfig", c.saToken); err != nil {
		c.Stop()
		return nil, err
	}
	c.Config = c.RESTConfig(c.adminToken)
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeFiles writes the service-account signing key and the static tokens.
func (c *Cluster) writeFiles() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"sa.key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"tokens.csv": []byte(c.adminToken + "," + AdminUser + ",uid-admin,\"system:masters\"\n" +
			c.saToken + "," + ServiceAccountUser + ",uid-zoku,\"system:serviceaccounts,system:serviceaccounts:zoku\"\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(c.dir, "certs"), 0o700)
}

func (c *Cluster) startEtcd(bin string) error {
	client := "http://127.0.0.1:" + strconv.Itoa(c.etcdClient)
	peer := "http://127.0.0.1:" + strconv.Itoa(c.etcdPeer)
	p, err := launch(bin, "--name", "kubetest", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "kubetest="+peer, "--unsafe-no-fsync",
		"--logger", "zap", "--log-level", "error")
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	c.etcd = p
	hc := &http.Client{Timeout: time.Second}
	for range 200 { // 10 s at most
		select {
		case <-p.done:
			return fmt.Errorf("etcd exited at start: %s", p.log.String())
		default:
		}
		if resp, err := hc.Get(client + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.kill()
	return fmt.Errorf("etcd not healthy after 10 s: %s", p.log.String())
}

func launch(bin string, args ...string) (*process, error) {
	buf := &safeBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, log: buf, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same port, certificates and etcd, and waits until it is ready.
func (c *Cluster) StartAPIServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.api != nil {
		return errors.New("kube-apiserver runs already")
	}
	h := "127.0.0.1"
	args := []string{
		"--etcd-servers=http://" + h + ":" + strconv.Itoa(c.etcdClient),
		"--bind-address=" + h, "--secure-port=" + strconv.Itoa(c.apiPort),
		// Loopback is refused as the advertised address; no Service
		// endpoints are reconciled with it, so a documentation address
		// serves.
		"--advertise-address=192.0.2.1", "--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(c.dir, "certs"),
		"--service-account-issuer=" + c.URL,
		"--service-account-key-file=" + filepath.Join(c.dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(c.dir, "sa.key"),
		"--token-auth-file=" + filepath.Join(c.dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--v=0",
	}
	p, err := launch(c.bin, args...)
	if err != nil {
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	c.api = p
	// Ready when /readyz answers 200: about 6 s; 60 s at most.
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			c.api = nil
			return fmt.Errorf("kube-apiserver exited at start: %s", tail(p.log.String()))
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.adminToken)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.kill()
	c.api = nil
	return fmt.Errorf("kube-apiserver not ready after 60 s: %s", tail(p.log.String()))
}

// StopAPIServer kills kube-apiserver (etcd keeps running, so
// StartAPIServer brings the same cluster back).
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.api.kill()
	c.api = nil
}

// Stop kills kube-apiserver and etcd.
func (c *Cluster) Stop() {
	c.StopAPIServer()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etcd.kill()
	c.etcd = nil
}

// Logs returns the end of kube-apiserver's log, for failure messages.
func (c *Cluster) Logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.api == nil {
		return ""
	}
	return tail(c.api.log.String())
}

func tail(s string) string {
	const n = 4000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// caFile is the API server's self-signed serving certificate, which its
// clients trust.
func (c *Cluster) caFile() string { return filepath.Join(c.dir, "certs", "apiserver.crt") }

// RESTConfig is a client config with a bearer token.
func (c *Cluster) RESTConfig(token string) *rest.Config {
	return &rest.Config{Host: c.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.caFile()},
		QPS: 100, Burst: 200, Timeout: 30 * time.Second}
}

// ServiceAccountConfig is the REST config of ServiceAccountUser.
func (c *Cluster) ServiceAccountConfig() *rest.Config { return c.RESTConfig(c.saToken) }

func (c *Cluster) writeKubeconfig(name, token string) (string, error) {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: user
  user:
    token: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: user}
current-context: kubetest
`, c.URL, c.caFile(), token)
	p := filepath.Join(c.dir, name)
	return p, os.WriteFile(p, []byte(kc), 0o600)
}

// Namespace creates a fresh namespace for t (namespaces are never really
// deleted without a controller-manager, so every test takes its own).
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	name := "t-" + strings.ToLower(randomToken()[:10])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kubetest: create namespace: %v", err)
	}
	return name
}
