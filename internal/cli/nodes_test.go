package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/challenge/http01"
	"github.com/zoku/zoku/internal/challenge/shared"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// node is one `zoku run` process of a multi-process or cluster test. It
// runs the test binary in child mode with a config of its own (its own
// ports) on the storage the test names, and reports what it serves from
// its JSON log, line by line.
type node struct {
	name    string
	cmd     *exec.Cmd
	tlsPort int
	web     int
	cfgPath string
	server  string
	storage string

	mu      sync.Mutex
	serving map[string]bool // names with a certificate in service
	changed chan struct{}   // closed and replaced at every change of serving
	lines   []string
	// changedLines is closed and replaced at every new log line.
	changedLines chan struct{}
	done         chan struct{}
}

// nodeConfig is a `zoku run` config with a route per host, on ports of its
// own; storage is a folder or an etcd URL.
func nodeConfig(web, tlsPort int, server, storage string, hosts []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `log: {format: json, level: debug}
admin: {disabled: true}
entryPoints:
  web: {address: "127.0.0.1:%d"}
  websecure:
    address: "127.0.0.1:%d"
    tls: {}
certificates:
  onHostRule: true
  acme:
    server: %q
    acceptTOS: true
    email: cluster@example.test
    storage: %q
    challenges:
      http: {entryPoint: web}
routes:
`, web, tlsPort, server, storage)
	for i, h := range hosts {
		fmt.Fprintf(&b, "  r%d: {host: %q, service: page}\n", i, h)
	}
	b.WriteString("services:\n  page:\n    static: {body: \"ok\\n\"}\n")
	return b.String()
}

// startNode starts one `zoku run` process; it is killed when the test ends.
func startNode(t testing.TB, name, server, storage string, hosts []string) *node {
	t.Helper()
	return startNodeOn(t, name, testenv.FreePort(t), server, storage, hosts)
}

// startNodeOn is startNode with the plain entry point on port web.
func startNodeOn(t testing.TB, name string, web int, server, storage string, hosts []string) *node {
	t.Helper()
	n := &node{name: name, web: web, tlsPort: testenv.FreePort(t), server: server, storage: storage,
		serving: map[string]bool{}, changed: make(chan struct{}), changedLines: make(chan struct{}), done: make(chan struct{})}
	n.cfgPath = filepath.Join(t.TempDir(), name+".yaml")
	must(t, os.WriteFile(n.cfgPath, []byte(nodeConfig(n.web, n.tlsPort, server, storage, hosts)), 0o600))
	n.cmd = zokuProcess(context.Background(), "run", "--config", n.cfgPath)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout = io.Discard
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go n.read(stderr)
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			n.mu.Lock()
			t.Logf("log of %s (last 40 lines):\n%s", n.name, strings.Join(tail40(n.lines), "\n"))
			n.mu.Unlock()
		}
	})
	return n
}

func tail40(l []string) []string {
	if len(l) > 40 {
		return l[len(l)-40:]
	}
	return l
}

// read follows the node's JSON log: a certificate obtained, renewed, or
// taken from storage is in service from then on.
func (n *node) read(r io.Reader) {
	defer close(n.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var rec struct {
			Msg    string `json:"msg"`
			Domain string `json:"domain"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		n.mu.Lock()
		n.lines = append(n.lines, line)
		close(n.changedLines)
		n.changedLines = make(chan struct{})
		switch {
		case rec.Domain == "":
		case rec.Msg == "certificate obtained", rec.Msg == "certificate renewed",
			rec.Msg == "certificate taken from storage",
			strings.HasPrefix(rec.Msg, "certificate stored by another process or node"),
			rec.Msg == "stored certificate loaded":
			n.serving[rec.Domain] = true
			close(n.changed)
			n.changed = make(chan struct{})
		}
		n.mu.Unlock()
	}
}

// waitServing waits until the node serves every host, or fails the test
// at the deadline.
func (n *node) waitServing(t testing.TB, hosts []string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		n.mu.Lock()
		missing := 0
		for _, h := range hosts {
			if !n.serving[h] {
				missing++
			}
		}
		ch := n.changed
		n.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-ch:
		case <-n.done:
			t.Fatalf("%s exited with %d hosts not served", n.name, missing)
		case <-deadline:
			t.Fatalf("%s: %d of %d hosts not served after %s", n.name, missing, len(hosts), d)
		}
	}
}

// serial returns the serial of the certificate the node presents for host
// (verified against roots).
func (n *node) serial(t testing.TB, host string, roots *x509.CertPool) string {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", n.tlsPort), &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		t.Fatalf("%s: TLS handshake for %s: %v", n.name, host, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// route replaces the node's config with one routing hosts, the way an
// editor writes (temp file, rename); the node reloads it.
func (n *node) route(t testing.TB, hosts []string) {
	t.Helper()
	tmp := n.cfgPath + ".tmp"
	must(t, os.WriteFile(tmp, []byte(nodeConfig(n.web, n.tlsPort, n.server, n.storage, hosts)), 0o600))
	must(t, os.Rename(tmp, n.cfgPath))
}

// waitLog waits for a log line whose message is msg, after the first skip
// such lines, and returns it; the deadline fails the test.
func (n *node) waitLog(t testing.TB, msg string, skip int, d time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(d)
	for {
		n.mu.Lock()
		seen := 0
		var hit map[string]any
		for _, l := range n.lines {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
				if seen == skip {
					hit = rec
					break
				}
				seen++
			}
		}
		ch := n.changedLines
		n.mu.Unlock()
		if hit != nil {
			return hit
		}
		select {
		case <-ch:
		case <-n.done:
			t.Fatalf("%s exited before logging %q", n.name, msg)
		case <-deadline:
			t.Fatalf("%s did not log %q within %s", n.name, msg, d)
		}
	}
}

// count returns how many log lines have message msg (and domain, if set).
func (n *node) count(msg, domain string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, l := range n.lines {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg && (domain == "" || rec["domain"] == domain) {
			c++
		}
	}
	return c
}

// kill ends the node at once (SIGKILL), as a crash would.
func (n *node) kill() {
	if n.cmd.Process != nil {
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
		_ = n.cmd.Wait()
	}
}

// sharedAnswerer serves, on the port Pebble validates HTTP-01 at, the
// tokens that any process on the storage at path presents: zoku processes
// bind their own ports, and this stands for the node the CA reaches.
func sharedAnswerer(t *testing.T, path string) int {
	t.Helper()
	b, err := storage.OpenFiles(path, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return answererOn(t, b)
}

// answererOn serves the HTTP-01 tokens presented into b.
func answererOn(t testing.TB, b storage.Backend) int {
	port, g := gatedAnswerer(t, b)
	g.Open()
	return port
}

// gate holds requests while closed.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

// Open lets requests through.
func (g *gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// Close holds new requests until the next Open.
func (g *gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

func (g *gate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// gatedAnswerer is answererOn whose answers wait while the gate is closed
// (it starts closed): no validation, and so no order, completes before the
// test opens it.
func gatedAnswerer(t testing.TB, b storage.Backend) (int, *gate) {
	t.Helper()
	sol := http01.NewSolver()
	sol.Shared = &shared.Answers{Store: b, Prefix: shared.HTTP01Prefix}
	g := &gate{open: make(chan struct{})}
	h := sol.Handler(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-g.wait():
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { g.Open(); _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, g
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test
// reading, which can wait for a text to appear.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until text was written, or fails the test at the deadline.
func (s *syncBuffer) waitFor(t testing.TB, text string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), text) {
			s.mu.Unlock()
			return
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%q not written within %s; got:\n%s", text, d, s.String())
		}
	}
}

// waitAny waits until one of nodes logs a line with message msg for which
// accept (if set) is true, counting only lines after the first after[i]
// lines of node i; it returns the node and the line.
func waitAny(t *testing.T, nodes []*node, after []int, msg string, accept func(map[string]any) bool, d time.Duration) (*node, map[string]any) {
	t.Helper()
	deadline := time.After(d)
	for {
		var chans []chan struct{}
		for i, n := range nodes {
			n.mu.Lock()
			lines := n.lines[min(after[i], len(n.lines)):]
			for _, l := range lines {
				var rec map[string]any
				if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg && (accept == nil || accept(rec)) {
					n.mu.Unlock()
					return n, rec
				}
			}
			chans = append(chans, n.changedLines)
			n.mu.Unlock()
		}
		// Wake on any node's next line (fan-in over at most a handful).
		woke := make(chan struct{}, 1)
		stop := make(chan struct{})
		for _, c := range chans {
			go func() {
				select {
				case <-c:
					select {
					case woke <- struct{}{}:
					default:
					}
				case <-stop:
				}
			}()
		}
		select {
		case <-woke:
			close(stop)
		case <-deadline:
			close(stop)
			t.Fatalf("no node logged %q within %s", msg, d)
		}
	}
}

// lineCount is the number of log lines the node has written so far.
func (n *node) lineCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.lines)
}
