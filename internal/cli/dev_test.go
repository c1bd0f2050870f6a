package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

func TestDevUsage(t *testing.T) {
	cases := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"dev"}, 2, "nitro-sim", ""},
		{[]string{"dev", "--help"}, 0, "nitro-sim  run a simulated NetScaler", ""},
		{[]string{"dev", "nitro"}, 2, "", `zoku dev: unknown tool "nitro"; run 'zoku dev --help' for the list`},
		{[]string{"dev", "nitro-sim", "--help"}, 0, "Usage: zoku dev nitro-sim", ""},
		{[]string{"dev", "nitro-sim", "extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"dev", "nitro-sim", "--listen", "0.0.0.0:7440"}, 1, "", `--listen "0.0.0.0:7440": the simulator listens on loopback only`},
		{[]string{"dev", "nitro-sim", "--ssl", "192.0.2.1:443"}, 1, "", `--ssl "192.0.2.1:443": the simulator listens on loopback only`},
		{[]string{"dev", "nitro-sim", "--http", "127.0.0.1:7443"}, 1, "", "--listen, --http and --ssl must be three different addresses"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := zoku(t, "", false, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nwant stdout with %q, stderr with %q", r.code, tc.code, r.stdout, r.stderr, tc.stdout, tc.stderr)
			}
		})
	}
}

// A port that is taken is one line naming the flag, and nothing keeps
// running.
func TestNitroSimPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	for _, flag := range []string{"--listen", "--http", "--ssl"} {
		args := map[string]string{"--listen": free(), "--http": free(), "--ssl": free()}
		args[flag] = ln.Addr().String()
		r := zoku(t, "", false, "dev", "nitro-sim", "--dir", filepath.Join(dir, "sim"), "--listen", args["--listen"], "--http", args["--http"], "--ssl", args["--ssl"])
		want := fmt.Sprintf("zoku dev: %s %s: the address is in use", flag, ln.Addr())
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s taken: exit %d, stderr %q; want one line starting %q", flag, r.code, r.stderr, want)
		}
		for _, a := range []string{args["--listen"], args["--http"], args["--ssl"]} {
			if a == ln.Addr().String() {
				continue
			}
			if c, err := net.Dial("tcp", a); err == nil {
				c.Close()
				t.Errorf("%s taken: %s still listens after the failure", flag, a)
			}
		}
	}
}

// In-process, until its context ends: the password and the NSIP
// certificate are in --dir (private folder, 0600 password), the API
// serves that certificate, and the output never shows the password.
func TestNitroSimRunsUntilStopped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sim")
	api := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	sslAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr deploytest.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- Run(ctx, []string{"dev", "nitro-sim", "--dir", dir, "--listen", api, "--http", httpAddr, "--ssl", sslAddr},
			Env{Stdout: pw, Stderr: &stderr, Getenv: func(string) string { return "" }})
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var out strings.Builder
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if strings.HasPrefix(lines.Text(), "ready") {
			break
		}
	}
	if !strings.Contains(out.String(), "ready") {
		t.Fatalf("no ready line:\n%s%s", out.String(), stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // the rest: NITRO calls, "stopped"

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("--dir: %v, mode %v; want 0700", err, fi.Mode())
	}
	pwFile := filepath.Join(dir, "password")
	fi, err := os.Stat(pwFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v, mode %v; want 0600", err, fi.Mode())
	}
	password, _ := os.ReadFile(pwFile)
	if strings.Contains(out.String(), strings.TrimSpace(string(password))) {
		t.Error("the password is printed")
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "nsip.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("nsip.pem holds no certificate")
	}
	// The API verifies against nsip.pem alone, as a target's caFile does.
	c, err := tls.Dial("tcp", api, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("NITRO API with caFile nsip.pem: %v", err)
	}
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
	c.Close()
	if want := fmt.Sprintf("SHA-256 %X", sum[:]); !strings.Contains(out.String(), want) {
		t.Errorf("the printed fingerprint is not the served certificate's (%s):\n%s", want, out.String())
	}
	for _, want := range []string{"url: https://" + api, "httpPort: " + httpAddr[strings.LastIndex(httpAddr, ":")+1:], "address: " + sslAddr, "password: file:" + pwFile} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the printed target lacks %q:\n%s", want, out.String())
		}
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d after the context ended; stderr %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("zoku dev nitro-sim did not return after its context ended")
	}
	for _, a := range []string{api, httpAddr, sslAddr} {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("%s still listens after the simulator stopped", a)
		}
	}
}
