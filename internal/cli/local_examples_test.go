package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// The examples/<kind>-local.yaml files are run here as their comments tell
// a user to: the same setup commands, servers started with the same
// command lines from a copy of the repository's examples folder, then
// `zoku deploy` twice (obtained and deployed, then up to date) and the
// served certificate checked against the embedded CA's root, as the curl
// line does. Only the ports are swapped for free ones, in every file alike,
// so the tests can run next to anything else; every step a test runs must
// be in the example, word for word, so the two cannot drift apart.

// localExample copies examples/ into a new folder with each port in ports
// (as the files write it) swapped for a free one, and returns the folder
// and the new ports in the same order. Each port must appear in name.
func localExample(t *testing.T, name string, ports ...int) (dir string, swapped []int) {
	t.Helper()
	dir = t.TempDir()
	var files []string
	err := filepath.WalkDir("../../examples", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	repl := make([]*regexp.Regexp, len(ports))
	for i, p := range ports {
		repl[i] = regexp.MustCompile(`\b` + strconv.Itoa(p) + `\b`)
		swapped = append(swapped, testenv.FreePort(t))
	}
	for _, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for i, re := range repl {
			if filepath.Base(src) == name && !re.Match(b) {
				t.Fatalf("examples/%s no longer uses port %d; update this test", name, ports[i])
			}
			b = re.ReplaceAll(b, []byte(strconv.Itoa(swapped[i])))
		}
		rel, _ := filepath.Rel("../..", src)
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, swapped
}

// documented fails the test unless the example's text holds step.
func documented(t *testing.T, dir, name, step string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(step)) {
		t.Fatalf("examples/%s does not say %q; keep the test and the example's steps the same", name, step)
	}
}

// runStep runs a documented setup command with /bin/sh in dir.
func runStep(t *testing.T, dir, name, step string) {
	t.Helper()
	documented(t, dir, name, step)
	cmd := exec.Command("/bin/sh", "-c", step)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", step, err, out)
	}
}

// zokuIn runs zoku as a process of its own in dir, as a user in a shell
// there would (PWD set), bounded in time.
func zokuIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := zokuProcess(ctx, args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, "PWD="+dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	if os.Getenv("ZOKU_TEST_LOGS") != "" {
		t.Logf("zoku %s:\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r
}

// startDocumented starts a documented server command line (no shell) in dir,
// stopped when the test ends; its output is returned.
func startDocumented(t *testing.T, dir string, argv ...string) *deploytest.Buffer {
	t.Helper()
	out := &deploytest.Buffer{}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PWD="+dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		deploytest.Stop(cmd, done)
		if t.Failed() || os.Getenv("ZOKU_TEST_LOGS") != "" {
			t.Logf("%s output:\n%s", filepath.Base(argv[0]), out.String())
		}
	})
	return out
}

// waitListening waits until addr accepts connections: a server started by
// its documented command line gives no other sign that it is up. It fails
// the test after 20 s, or at once when the server's output shows it quit.
func waitListening(t *testing.T, addr string, out *deploytest.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 20 s: %v\n%s", addr, err, out.String())
		}
		<-tick.C
	}
}

// servedByRoot checks what curl --cacert .zoku/embedded-ca/root.pem
// --resolve name:port:127.0.0.1 checks: the chain served for name at addr
// verifies against the embedded CA's root; it returns the leaf's serial.
func servedByRoot(t *testing.T, dir, addr, name string) string {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(dir, ".zoku", "embedded-ca", embedca.RootFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		t.Fatal("root.pem holds no certificate")
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS to %s for %s with the embedded root: %v", addr, name, err)
	}
	defer c.Close()
	return strings.ToUpper(c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16))
}

// deployTwice runs the documented deploy: the first run obtains and
// deploys, the second finds everything in place. It returns the serial.
func deployTwice(t *testing.T, dir, name, line string) string {
	t.Helper()
	cfg := "examples/" + name
	documented(t, dir, name, "zoku deploy --config "+cfg)
	first := zokuIn(t, dir, "deploy", "--config", cfg)
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(line) + `: obtained and deployed \(serial ([0-9A-F]+)\)`).FindStringSubmatch(first.stdout)
	if first.code != 0 || m == nil {
		t.Fatalf("first deploy: exit %d\nstdout:\n%s\nstderr:\n%s", first.code, first.stdout, first.stderr)
	}
	again := zokuIn(t, dir, "deploy", "--config", cfg)
	if again.code != 0 || !strings.HasPrefix(again.stdout, line+": up to date (serial "+m[1]+")") {
		t.Fatalf("second deploy: exit %d\nstdout:\n%s\nstderr:\n%s", again.code, again.stdout, again.stderr)
	}
	return m[1]
}

func TestLocalExampleExec(t *testing.T) {
	dir, _ := localExample(t, "exec-local.yaml", 4080)
	serial := deployTwice(t, dir, "exec-local.yaml", "exec exec.localhost")

	dest := filepath.Join(dir, ".zoku-local", "exec", "exec.localhost")
	chain, err := os.ReadFile(filepath.Join(dest, "fullchain.pem"))
	if err != nil {
		t.Fatalf("the script left no certificate: %v", err)
	}
	certs := parseCerts(t, chain)
	root, err := embedca.LoadRoot(filepath.Join(dir, ".zoku", "embedded-ca"))
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: "exec.localhost", Roots: poolOf(root), Intermediates: inter}); err != nil {
		t.Errorf("the deployed chain does not verify against the embedded root: %v", err)
	}
	if got := strings.ToUpper(certs[0].SerialNumber.Text(16)); got != serial {
		t.Errorf("deployed serial %s, zoku said %s", got, serial)
	}
	if fi, err := os.Stat(filepath.Join(dest, "privkey.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("privkey.pem: %v, mode %v; want 0600", err, fi.Mode())
	}
}

func TestLocalExampleHAProxy(t *testing.T) {
	const name = "haproxy-local.yaml"
	bin := need.Binary(t, "haproxy", "apt-get install -y haproxy")
	need.Binary(t, "openssl", "apt-get install -y openssl")
	dir, ports := localExample(t, name, 5080, 5443, 5888)
	runStep(t, dir, name, "mkdir -p .zoku-local/haproxy/certs")
	runStep(t, dir, name, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=placeholder -keyout .zoku-local/haproxy/default.pem.key -out .zoku-local/haproxy/default.pem")
	documented(t, dir, name, "/usr/sbin/haproxy -db -f examples/local/haproxy.cfg")
	out := startDocumented(t, dir, bin, "-db", "-f", "examples/local/haproxy.cfg")
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	waitListening(t, tlsAddr, out)

	serial := deployTwice(t, dir, name, "haproxy shop.localhost")
	documented(t, dir, name, fmt.Sprintf("curl --cacert .zoku/embedded-ca/root.pem --resolve shop.localhost:%d:127.0.0.1 https://shop.localhost:%d/", ports[1], ports[1]))
	if got := servedByRoot(t, dir, tlsAddr, "shop.localhost"); got != serial {
		t.Errorf("HAProxy serves %s, zoku deployed %s", got, serial)
	}
}

func TestLocalExampleNginx(t *testing.T) {
	const name = "nginx-local.yaml"
	bin := need.Binary(t, "nginx", "apt-get install -y nginx")
	need.Binary(t, "openssl", "apt-get install -y openssl")
	dir, ports := localExample(t, name, 6080, 6443)
	if bin != "/usr/sbin/nginx" {
		// The example names Debian's path; elsewhere the test uses the
		// nginx it found, in the file as on the command line.
		p := filepath.Join(dir, "examples", name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/sbin/nginx"), []byte(bin)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		// As root, nginx's workers run as nobody and must reach the
		// webroot: the test's folder is opened up as a user's checkout is,
		// up to the temporary folder, which is left as it is (never the
		// machine's /tmp: its mode is not the test's to change).
		tmp := filepath.Clean(os.TempDir())
		if fi, err := os.Stat(tmp); err == nil {
			t.Cleanup(func() {
				if now, err := os.Stat(tmp); err == nil && now.Mode() != fi.Mode() {
					t.Errorf("the test changed %s from %v to %v", tmp, fi.Mode(), now.Mode())
				}
			})
		}
		for d := dir; d != tmp && strings.HasPrefix(d, tmp+string(filepath.Separator)); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	runStep(t, dir, name, "mkdir -p .zoku-local/nginx/certs .zoku-local/nginx/webroot")
	runStep(t, dir, name, "cp examples/local/nginx.conf .zoku-local/nginx/")
	runStep(t, dir, name, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=placeholder -keyout .zoku-local/nginx/certs/privkey.pem -out .zoku-local/nginx/certs/fullchain.pem")
	documented(t, dir, name, bin+" -p .zoku-local/nginx/ -c nginx.conf -e stderr")
	out := startDocumented(t, dir, bin, "-p", ".zoku-local/nginx/", "-c", "nginx.conf", "-e", "stderr")
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	waitListening(t, tlsAddr, out)

	serial := deployTwice(t, dir, name, "nginx blog.localhost")
	documented(t, dir, name, fmt.Sprintf("curl --cacert .zoku/embedded-ca/root.pem --resolve blog.localhost:%d:127.0.0.1 https://blog.localhost:%d/", ports[1], ports[1]))
	if got := servedByRoot(t, dir, tlsAddr, "blog.localhost"); got != serial {
		t.Errorf("nginx serves %s, zoku deployed %s", got, serial)
	}
}

// startNitroSim runs `zoku dev nitro-sim` (with the given flags) as a
// process of its own in dir and returns what it printed up to "ready".
func startNitroSim(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := zokuProcess(ctx, append([]string{"dev", "nitro-sim"}, args...)...)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb deploytest.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads after "ready"
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	var guide strings.Builder
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			guide.WriteString(l + "\n")
			if strings.HasPrefix(l, "ready") {
				return guide.String()
			}
		case <-done:
			t.Fatalf("zoku dev nitro-sim exited:\n%s%s", guide.String(), errb.String())
		case <-timeout:
			t.Fatalf("zoku dev nitro-sim is not ready after 30 s:\n%s%s", guide.String(), errb.String())
		}
	}
}

func TestLocalExampleNetScaler(t *testing.T) {
	const name = "netscaler-local.yaml"
	dir, ports := localExample(t, name, 7440, 7080, 7443)
	documented(t, dir, name, "zoku dev nitro-sim ")
	api, httpAddr, ssl := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	guide := startNitroSim(t, dir, "--listen", api, "--http", httpAddr, "--ssl", ssl)

	// What the simulator prints is the example without its comments.
	printed := guide[strings.Index(guide, "\ncertificates:\n")+1 : strings.Index(guide, "\n\nready")]
	exampleText, err := os.ReadFile(filepath.Join(dir, "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	var example []string
	for _, l := range strings.Split(string(exampleText), "\n") {
		l, _, _ = strings.Cut(l, " #")
		if l = strings.TrimRight(l, " "); l != "" && !strings.HasPrefix(l, "#") {
			example = append(example, l)
		}
	}
	if got, want := printed, strings.Join(example, "\n"); got != want {
		t.Errorf("zoku dev nitro-sim prints\n%s\n\nexamples/%s says\n%s", got, name, want)
	}
	if r := zokuIn(t, dir, "deploy", "--config", "examples/"+name, "--dry-run"); r.code != 0 || !strings.Contains(r.stdout, "netscaler www.localhost: would obtain and deploy") {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	serial := deployTwice(t, dir, name, "netscaler www.localhost")
	documented(t, dir, name, fmt.Sprintf("curl --cacert .zoku/embedded-ca/root.pem --resolve www.localhost:%d:127.0.0.1 https://www.localhost:%d/", ports[2], ports[2]))
	if got := servedByRoot(t, dir, ssl, "www.localhost"); got != serial {
		t.Errorf("testSSL serves %s, zoku deployed %s", got, serial)
	}
	pw, err := os.ReadFile(filepath.Join(dir, ".zoku-local", "nitro-sim", "password"))
	if err != nil || len(bytes.TrimSpace(pw)) < 16 {
		t.Fatalf("password file: %v %q", err, pw)
	}
	if strings.Contains(guide, string(bytes.TrimSpace(pw))) {
		t.Error("the simulator prints its password")
	}
}
