// Package etcdtest starts a real etcd server (Debian's etcd-server package)
// on loopback for a test. Without the binary the test is skipped with the
// package to install, or fails under CI=true.
package etcdtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/testkit/need"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// Server is one etcd member started for a test.
type Server struct {
	bin, dir   string
	clientPort int
	peerPort   int
	tls        *TLSFiles // nil: plain HTTP

	mu  sync.Mutex
	cmd *exec.Cmd
	log *bytes.Buffer
}

// Start starts etcd and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := need.Binary(t, "etcd", "apt-get install -y etcd-server")
	s := &Server{bin: bin, dir: t.TempDir(), clientPort: testenv.FreePort(t), peerPort: testenv.FreePort(t)}
	if err := s.start(); err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Endpoint is the client URL, http://127.0.0.1:<port> (https:// for a
// server of StartTLS).
func (s *Server) Endpoint() string {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(s.clientPort)
}

// HostPort is 127.0.0.1:<port>, the form zoku's etcd:// URLs take.
func (s *Server) HostPort() string { return "127.0.0.1:" + strconv.Itoa(s.clientPort) }

func (s *Server) start() error {
	peer := "http://127.0.0.1:" + strconv.Itoa(s.peerPort)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = &bytes.Buffer{}
	args := []string{
		"--name", "test",
		"--data-dir", s.dir,
		"--listen-client-urls", s.Endpoint(),
		"--advertise-client-urls", s.Endpoint(),
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test=" + peer,
		"--initial-cluster-state", "new",
		"--logger", "zap", "--log-level", "error",
	}
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	if s.tls != nil {
		args = append(args, "--cert-file", s.tls.ServerCert, "--key-file", s.tls.ServerKey,
			"--client-cert-auth", "--trusted-ca-file", s.tls.CA)
		client.Transport = &http.Transport{TLSClientConfig: s.tls.client}
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Ready when /health answers; 200 polls of 50 ms at most (10 s).
	for range 200 {
		select {
		case err := <-exited:
			return fmt.Errorf("etcd exited at start (%v): %s", err, s.log.String())
		default:
		}
		resp, err := client.Get(s.Endpoint() + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return fmt.Errorf("etcd not healthy after 10 s: %s", s.log.String())
}

// Stop ends etcd (SIGKILL: tests want no graceful hand-over); its data
// stays, so Restart brings the same cluster back.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd = nil
}

// Restart starts etcd again on the same ports and data after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The ports may linger for a moment after the kill.
	for {
		err := s.start()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("etcdtest: restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
