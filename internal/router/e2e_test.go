package router

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/testkit/need"
)

// staticCert serves one certificate for every handshake.
type staticCert struct{ c *tls.Certificate }

func (s staticCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.c, nil }

// selfSigned makes a certificate for names and returns it with a pool
// that trusts it and its PEM file.
func selfSigned(t testing.TB, names ...string) (*tls.Certificate, *x509.CertPool, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	file := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, file
}

// startTLSRouter applies cfg (whose "websecure" entry point has tls)
// with a certificate for a.test; it returns the router and a pool that
// trusts the certificate, and the certificate's PEM file.
func startTLSRouter(t *testing.T, cfg *config.Config) (*Router, *x509.CertPool, string) {
	t.Helper()
	return startTLSRouterOn(t, cfg, false)
}

// startTLSRouterOn is startTLSRouter with net/http's server for every
// HTTP/1.x connection when netHTTPOnly, zoku's loop otherwise.
func startTLSRouterOn(t *testing.T, cfg *config.Config, netHTTPOnly bool) (*Router, *x509.CertPool, string) {
	t.Helper()
	cert, pool, file := selfSigned(t, "a.test")
	r := New(Deps{Certs: staticCert{cert}, NetHTTPOnly: netHTTPOnly})
	if err := r.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r, pool, file
}

func TestMiddlewaresEndToEndAndReload(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "backend/1.0")
		fmt.Fprintf(w, "path=%s prefix=%s", r.URL.Path, r.Header.Get("X-Forwarded-Prefix"))
	}))
	defer backend.Close()
	const tmpl = `
entryPoints:
  web: {address: "127.0.0.1:%d"}
routes:
  r: {host: a.test, service: s, middlewares: [front]}
  other: {host: b.test, service: s%s}
services:
  s: {servers: [{url: %q}]}
middlewares:
  front: {chain: [sec, limit, strip]}
  sec: {securityHeaders: {}}
  limit: {rateLimit: {average: 1, period: 1h, burst: %d}}
  strip: {stripPrefix: {prefixes: [/api]}}
`
	port := freePort(t)
	cfg := parse(t, fmt.Sprintf(tmpl, port, "", backend.URL, 2))
	r, url := startRouter(t, cfg)
	call := func() *http.Response {
		req, _ := http.NewRequest("GET", url+"/api/users", nil)
		req.Host = "a.test"
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := call()
	if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Server") != "" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	if got := get(t, url+"/api/users", "b.test", nil); got != "path=/api/users prefix=" {
		t.Errorf("route without middlewares: backend saw %q", got)
	}
	call() // the burst of 2 is spent
	if resp := call(); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", resp.StatusCode)
	}
	// A reload that changes another route keeps the limit's buckets.
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(tmpl, port, ", pathPrefix: /x", backend.URL, 2))); err != nil {
		t.Fatal(err)
	}
	if resp := call(); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after a reload leaving the limit as it was: %d, want 429", resp.StatusCode)
	}
	// A reload that changes the limit starts it afresh.
	if err := r.Apply(context.Background(), parse(t, fmt.Sprintf(tmpl, port, "", backend.URL, 3))); err != nil {
		t.Fatal(err)
	}
	if resp := call(); resp.StatusCode != 200 {
		t.Errorf("after a reload changing the limit: %d, want 200", resp.StatusCode)
	}
	if got := get(t, url+"/api/users", "a.test", nil); got != "path=/users prefix=/api" {
		t.Errorf("backend saw %q", got)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestWebSocketThroughMiddlewares: an upgrade passes through a route
// with header, compression and buffering-free middlewares, both ways.
func TestWebSocketThroughMiddlewares(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo "+r.Header.Get("X-Env")+": "), msg...)); err != nil {
				return
			}
		}
	}))
	defer backend.Close()
	_, url := startRouter(t, parse(t, fmt.Sprintf(`
entryPoints:
  web: {address: "127.0.0.1:0"}
routes:
  ws: {host: a.test, pathPrefix: /ws, service: s, middlewares: [sec, cmp, hdr, cb]}
services:
  s: {servers: [{url: %q}]}
middlewares:
  sec: {securityHeaders: {}}
  cmp: {compress: {}}
  hdr: {headers: {request: {set: {X-Env: prod}}}}
  cb: {circuitBreaker: {errorRatio: 0.5}}
`, backend.URL)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", &websocket.DialOptions{
		Host: "a.test", HTTPHeader: http.Header{"Accept-Encoding": {"gzip"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i := range 20 {
		msg := strings.Repeat(fmt.Sprint(i), 1+i*100)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo prod: "+msg {
			t.Fatalf("message %d: got %q", i, clipStr(string(got)))
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

func clipStr(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// TestGRPCThroughTLSEntryPoint: a gRPC client speaks HTTP/2 over TLS to
// the router, which speaks plain HTTP/2 (h2c) to the gRPC server: a unary
// call, an error status carried in trailers, and a server stream that
// sees a change pushed while it is open.
func TestGRPCThroughTLSEntryPoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	r, pool, _ := startTLSRouter(t, parse(t, fmt.Sprintf(`
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}}
routes:
  grpc: {host: a.test, headers: {Content-Type: application/grpc}, service: g, middlewares: [sec, cmp]}
services:
  g: {servers: [{url: "h2c://%s"}]}
middlewares:
  sec: {securityHeaders: {}}
  cmp: {compress: {}}
`, ln.Addr())))
	conn, err := grpc.NewClient(r.Addr("websecure").String(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "a.test"})),
		grpc.WithAuthority("a.test"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := healthpb.NewHealthClient(conn)
	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "app"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v %v", resp, err)
	}
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound (a status in trailers)", err)
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "app"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first: %v %v", first, err)
	}
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING)
	next, err := stream.Recv()
	if err != nil || next.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch update: %v %v", next, err)
	}
}

// TestCurlHTTP1AndH2 runs curl against the TLS entry point over HTTP/1.1
// and HTTP/2, on a route with securityHeaders and compress, with zoku's
// HTTP/1.1 loop (HTTP/2 handed to net/http) and with net/http alone.
func TestCurlHTTP1AndH2(t *testing.T) {
	for _, netHTTPOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("netHTTPOnly=%v", netHTTPOnly), func(t *testing.T) { testCurlHTTP1AndH2(t, netHTTPOnly) })
	}
}

func testCurlHTTP1AndH2(t *testing.T, netHTTPOnly bool) {
	curl := need.Binary(t, "curl", "apt-get install -y curl")
	body := strings.Repeat("hello from zoku ", 500)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	defer backend.Close()
	r, _, certFile := startTLSRouterOn(t, parse(t, fmt.Sprintf(`
entryPoints:
  websecure: {address: "127.0.0.1:0", tls: {}}
routes:
  app: {host: a.test, service: s, middlewares: [sec, cmp]}
services:
  s: {servers: [{url: %q}]}
middlewares:
  sec: {securityHeaders: {}}
  cmp: {compress: {encodings: [gzip]}}
`, backend.URL)), netHTTPOnly)
	r.mu.Lock()
	loop := r.eps["websecure"].loop
	r.mu.Unlock()
	if (loop == nil) != netHTTPOnly {
		t.Fatalf("entry point's HTTP/1.1 loop: %v, want it only without netHTTPOnly", loop)
	}
	port := r.Addr("websecure").(*net.TCPAddr).Port
	for _, proto := range []string{"--http1.0", "--http1.1", "--http2"} {
		t.Run(proto, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, curl, "-sS", proto, "--compressed", "-D", "-", "--cacert", certFile,
				"--resolve", fmt.Sprintf("a.test:%d:127.0.0.1", port), fmt.Sprintf("https://a.test:%d/", port)).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v: %s", err, out)
			}
			head, got, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
			lower := strings.ToLower(head)
			wantProto := map[string]string{"--http1.0": "http/1.0 200", "--http1.1": "http/1.1 200", "--http2": "http/2 200"}[proto]
			for _, want := range []string{wantProto, "x-frame-options: deny", "x-content-type-options: nosniff", "content-encoding: gzip", "vary: accept-encoding"} {
				if !strings.Contains(lower, want) {
					t.Errorf("headers lack %q:\n%s", want, head)
				}
			}
			if got != body {
				t.Errorf("body: %d bytes, want %d", len(got), len(body))
			}
		})
	}
}
