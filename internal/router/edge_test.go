package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/zoku/zoku/internal/testkit/need"
)

// openssl runs `openssl s_client` with args, writes input, and returns
// what it printed once want shows up in it (or it exits). stdin stays
// open until then, so s_client does not hang up before the answer.
func openssl(t *testing.T, input, want string, args ...string) string {
	t.Helper()
	bin := need.Binary(t, "openssl", "apt-get install -y openssl")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"s_client"}, args...)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, input)
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if want != "" && strings.Contains(out.String(), want) {
			break
		}
	}
	stdin.Close()
	cancel()
	_ = cmd.Wait()
	return out.String()
}

// curl runs curl with args and returns its output and exit error.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := need.Binary(t, "curl", "apt-get install -y curl")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-sS", "--max-time", "20"}, args...)...).CombinedOutput()
	return string(out), err
}

// resolve is curl's --resolve for host to the entry point at addr.
func resolve(host string, addr net.Addr) (string, string) {
	a := addr.(*net.TCPAddr)
	return fmt.Sprintf("%s:%d:127.0.0.1", host, a.Port), fmt.Sprintf("https://%s:%d/", host, a.Port)
}

// TestPassthroughWithOpenSSL: openssl s_client reaches the passthrough
// server by SNI and verifies the server's own certificate.
func TestPassthroughWithOpenSSL(t *testing.T) {
	zokuCA, backCA := newTestCA(t, "zoku CA"), newTestCA(t, "backend CA")
	pass := startTCP(t, tlsEcho("pass ", backCA.issue(false, "db.example.test")))
	r := startL4(t, Deps{Certs: staticCerts{zokuCA.issue(false, "web.example.test")}}, `
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}}
tcpServices:
  pass: {servers: [{address: %q}]}
tcpRoutes:
  pass: {sni: db.example.test, tls: passthrough, service: pass, entryPoints: [websecure]}
`, pass.Addr())
	out := openssl(t, "hi\n", "pass hi", "-connect", r.Addr("websecure").String(), "-servername", "db.example.test",
		"-CAfile", backCA.caFile(), "-verify_return_error")
	if !strings.Contains(out, "pass hi") || !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "CN = db.example.test") {
		t.Fatalf("openssl s_client through the passthrough route:\n%s", out)
	}
}

// TestHTTP3: a TLS entry point with http3 answers quic-go's HTTP/3
// client with the same routes and certificates, and advertises HTTP/3 in
// Alt-Svc on HTTP/1.1 and HTTP/2 responses (curl); a reload turns it off.
func TestHTTP3(t *testing.T) {
	ca := newTestCA(t, "zoku CA")
	const conf = `
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}%s}
routes:
  web: {host: web.example.test, service: s}
services:
  s: {static: {body: "hello over %s"}}
`
	r := New(Deps{Certs: staticCerts{ca.issue(false, "web.example.test")}})
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(conf, ", http3: {maxAge: 1h}", "h3"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	addr := r.Addr("websecure").(*net.TCPAddr)

	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr.String(), tc, qc)
		},
	}
	defer tr.Close()
	h3 := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := fmt.Sprintf("https://web.example.test:%d/", addr.Port)
	resp, err := h3.Get(url)
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 3 || string(b) != "hello over h3" {
		t.Fatalf("HTTP/3: %s %q, want HTTP/3.0 and the route's reply", resp.Proto, b)
	}

	want := fmt.Sprintf(`alt-svc: h3=":%d"; ma=3600`, addr.Port)
	for _, proto := range []string{"--http1.1", "--http2"} {
		res, u := resolve("web.example.test", addr)
		out, err := curl(t, proto, "-i", "--cacert", ca.caFile(), "--resolve", res, u)
		if err != nil || !strings.Contains(strings.ToLower(out), want) {
			t.Fatalf("curl %s: %v\n%s\nwant %q", proto, err, out, want)
		}
	}

	// Off by a reload: UDP is closed, and no Alt-Svc any more.
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(conf, "", "h2"))); err != nil {
		t.Fatal(err)
	}
	res, u := resolve("web.example.test", addr)
	out, err := curl(t, "--http2", "-i", "--cacert", ca.caFile(), "--resolve", res, u)
	if err != nil || strings.Contains(strings.ToLower(out), "alt-svc") || !strings.Contains(out, "hello over h2") {
		t.Fatalf("after turning http3 off: %v\n%s", err, out)
	}
	tr2 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, Dial: tr.Dial,
		QUICConfig: &quic.Config{HandshakeIdleTimeout: time.Second}}
	defer tr2.Close()
	if _, err := (&http.Client{Transport: tr2, Timeout: 10 * time.Second}).Get(url); err == nil {
		t.Fatal("HTTP/3 still answers after a reload turned it off")
	}
	// And on again, on the same entry point.
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(conf, ", http3: {}", "h3 again"))); err != nil {
		t.Fatal(err)
	}
	tr3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, Dial: tr.Dial}
	defer tr3.Close()
	resp, err = (&http.Client{Transport: tr3, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("HTTP/3 after turning it on by a reload: %v", err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello over h3 again" {
		t.Fatalf("got %q", b)
	}
}

// subjectEcho is a backend that answers with the subject header it got.
func subjectEcho(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "subject=[%s]", r.Header.Get("X-Client-Cert-Subject"))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestClientAuthEntryPoint: an entry point that requires client
// certificates refuses a client without one (openssl, curl) and passes
// the verified subject upstream, never the client's own header.
func TestClientAuthEntryPoint(t *testing.T) {
	zokuCA, clientCA, otherCA := newTestCA(t, "zoku CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	certFile, keyFile := clientCA.files("alice", clientCA.issue(true, "alice"))
	badCert, badKey := otherCA.files("mallory", otherCA.issue(true, "mallory"))
	backend := subjectEcho(t)
	r := startL4(t, Deps{Certs: staticCerts{zokuCA.issue(false, "web.example.test")}}, `
entryPoints:
  websecure:
    address: "127.0.0.1:0"
    tls: {}
    clientAuth: {caFiles: [%q]}
routes:
  web: {host: web.example.test, service: s}
services:
  s: {servers: [{url: %q}]}
`, clientCA.caFile(), backend.URL)
	addr := r.Addr("websecure")
	res, u := resolve("web.example.test", addr)
	wantSubject := "subject=[CN=alice,O=zoku tests]"

	for _, proto := range []string{"--http1.1", "--http2"} {
		out, err := curl(t, proto, "--cacert", zokuCA.caFile(), "--cert", certFile, "--key", keyFile,
			"-H", "X-Client-Cert-Subject: CN=forged", "--resolve", res, u)
		if err != nil || out != wantSubject {
			t.Fatalf("curl %s with a client certificate: %v %q, want %q", proto, err, out, wantSubject)
		}
		if out, err := curl(t, proto, "--cacert", zokuCA.caFile(), "--resolve", res, u); err == nil {
			t.Fatalf("curl %s without a client certificate was answered: %q", proto, out)
		}
		if out, err := curl(t, proto, "--cacert", zokuCA.caFile(), "--cert", badCert, "--key", badKey, "--resolve", res, u); err == nil {
			t.Fatalf("curl %s with a certificate of another CA was answered: %q", proto, out)
		}
	}
	req := "GET / HTTP/1.1\r\nHost: web.example.test\r\nConnection: close\r\n\r\n"
	out := openssl(t, req, "subject=[", "-connect", addr.String(), "-servername", "web.example.test", "-CAfile", zokuCA.caFile(),
		"-cert", certFile, "-key", keyFile, "-ign_eof")
	if !strings.Contains(out, wantSubject) {
		t.Fatalf("openssl s_client with a client certificate:\n%s", out)
	}
	out = openssl(t, req, "alert", "-connect", addr.String(), "-servername", "web.example.test", "-CAfile", zokuCA.caFile(), "-ign_eof")
	if strings.Contains(out, "subject=[") || !strings.Contains(out, "alert") {
		t.Fatalf("openssl s_client without a client certificate, want a TLS alert and no answer:\n%s", out)
	}
}

// TestClientAuthPerRoute: only the route with clientAuth asks for a
// certificate; its requests without one get 403, or 421 on a connection
// made for another name; the subject reaches its backend.
func TestClientAuthPerRoute(t *testing.T) {
	zokuCA, clientCA := newTestCA(t, "zoku CA"), newTestCA(t, "client CA")
	alice := clientCA.issue(true, "alice")
	backend := subjectEcho(t)
	r := startL4(t, Deps{Certs: staticCerts{zokuCA.issue(false, "admin.example.test", "open.example.test")}}, `
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}}
routes:
  admin: {host: admin.example.test, pathPrefix: /admin, service: s, clientAuth: {caFiles: [%q]}}
  site: {host: admin.example.test, service: s}
  open: {host: open.example.test, service: s}
services:
  s: {servers: [{url: %q}]}
`, clientCA.caFile(), backend.URL)
	addr := r.Addr("websecure").String()
	get := func(sni, host, path string, crt *tls.Certificate) (int, string, bool) {
		t.Helper()
		asked := false
		tc := &tls.Config{RootCAs: zokuCA.pool, ServerName: sni,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = true
				if crt == nil {
					return &tls.Certificate{}, nil
				}
				return crt, nil
			}}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			}}}
		req, _ := http.NewRequest("GET", "https://"+host+path, nil)
		req.Header.Set("X-Client-Cert-Subject", "CN=forged")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s%s (sni %s): %v", host, path, sni, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), asked
	}
	for _, tc := range []struct {
		name, sni, host, path string
		crt                   *tls.Certificate
		status                int
		body                  string
		asked                 bool
	}{
		{"certified", "admin.example.test", "admin.example.test", "/admin/x", alice, 200, "subject=[CN=alice,O=zoku tests]", true},
		{"no certificate", "admin.example.test", "admin.example.test", "/admin/x", nil, 403, "", true},
		{"same host, another route", "admin.example.test", "admin.example.test", "/", nil, 200, "subject=[]", true},
		{"another name's connection", "open.example.test", "admin.example.test", "/admin/x", nil, 421, "", false},
		{"name without clientAuth", "open.example.test", "open.example.test", "/", nil, 200, "subject=[]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, asked := get(tc.sni, tc.host, tc.path, tc.crt)
			if status != tc.status || (tc.body != "" && body != tc.body) || asked != tc.asked {
				t.Fatalf("got %d %q (certificate asked: %v), want %d %q (%v)", status, body, asked, tc.status, tc.body, tc.asked)
			}
		})
	}
}

// TestClientAuthReload: a reload that requires client certificates
// applies to new handshakes, and to requests on connections made before
// it (403).
func TestClientAuthReload(t *testing.T) {
	zokuCA, clientCA := newTestCA(t, "zoku CA"), newTestCA(t, "client CA")
	const conf = `
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}%s}
routes:
  web: {host: web.example.test, service: s}
services:
  s: {static: {body: ok}}
`
	r := New(Deps{Certs: staticCerts{zokuCA.issue(false, "web.example.test")}})
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(conf, ""))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	addr := r.Addr("websecure").String()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: zokuCA.pool},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	status := func() int {
		resp, err := c.Get("https://web.example.test/")
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 200 {
		t.Fatalf("before the reload: %d", got)
	}
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(conf, fmt.Sprintf(", clientAuth: {caFiles: [%q]}", clientCA.caFile())))); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != 403 {
		t.Fatalf("on the connection made before the reload: %d, want 403", got)
	}
	tr.CloseIdleConnections()
	if got := status(); got != 0 {
		t.Fatalf("a new connection without a certificate: %d, want a failed handshake", got)
	}
}
