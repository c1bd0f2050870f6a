package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// runRig is a `zoku run` started in-process from a config file that the
// test edits.
type runRig struct {
	path   string
	srv    *server
	events chan certmgr.Event
	web    int // plain entry point port
	tls    int // TLS entry point port
	roots  *x509.CertPool
}

// startRun writes cfgText (with {{web}}, {{tls}}, {{server}}, {{storage}}
// placeholders) and starts the server on it.
func startRun(t *testing.T, cfgText string, withCA bool) *runRig {
	t.Helper()
	r := &runRig{web: testenv.FreePort(t), tls: testenv.FreePort(t), events: make(chan certmgr.Event, 64)}
	server := ""
	if withCA {
		ca := testCA(t, embedca.Options{HTTPPort: r.web, TLSPort: r.tls})
		server, r.roots = ca.DirectoryURL(), ca.RootPool()
	}
	dir := t.TempDir()
	repl := strings.NewReplacer("{{web}}", fmt.Sprint(r.web), "{{tls}}", fmt.Sprint(r.tls), "{{server}}", server, "{{storage}}", filepath.Join(dir, "store"), "{{dir}}", dir)
	return r.start(t, dir, repl.Replace(cfgText))
}

// startRunOn starts `zoku run` in-process from config text that already
// names its ports (web, tlsPort); roots verify its certificates.
func startRunOn(t *testing.T, text string, web, tlsPort int, roots *x509.CertPool) *runRig {
	t.Helper()
	r := &runRig{web: web, tls: tlsPort, events: make(chan certmgr.Event, 64), roots: roots}
	return r.start(t, t.TempDir(), text)
}

// start writes the config into dir and starts the server on it.
func (r *runRig) start(t *testing.T, dir, text string) *runRig {
	t.Helper()
	r.path = filepath.Join(dir, "zoku.yaml")
	r.write(t, text)
	cfg, err := config.Load(r.path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.DiscardHandler)
	r.srv, err = startServer(ctx, Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}, r.path, cfg, logger, engineOptions{onEvent: func(e certmgr.Event) { r.events <- e }})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); r.srv.close() })
	return r
}

// write replaces the config file the way editors do: temp file, rename.
func (r *runRig) write(t *testing.T, text string) {
	t.Helper()
	tmp := r.path + ".tmp"
	must(t, os.WriteFile(tmp, []byte(text), 0o600))
	must(t, os.Rename(tmp, r.path))
}

// reload writes text and waits for the watcher's verdict.
func (r *runRig) reload(t *testing.T, text string) config.ReloadEvent {
	t.Helper()
	r.write(t, text)
	select {
	case ev := <-r.srv.watcher.Events():
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no reload event within 30 s")
		return config.ReloadEvent{}
	}
}

// waitCert waits for the certificate event of name.
func (r *runRig) waitCert(t *testing.T, name string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case e := <-r.events:
			if e.Name != name {
				continue
			}
			if e.Err != nil {
				t.Fatalf("certificate for %s failed: %v", name, e.Err)
			}
			return
		case <-deadline:
			t.Fatalf("no certificate for %s within a minute", name)
		}
	}
}

// client reaches every name at 127.0.0.1 and trusts the test CA.
func (r *runRig) client() *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
	}
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext: dial, ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: r.roots},
		},
	}
}

func (r *runRig) get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := r.client().Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const routerConfig = `
admin:
  address: 127.0.0.1:0
entryPoints:
  web:
    address: 127.0.0.1:{{web}}
    redirect:
      entryPoint: websecure
  websecure:
    address: 127.0.0.1:{{tls}}
    tls: {}
    hsts:
      maxAge: 1h
certificates:
  onHostRule: true
  acme:
    server: {{server}}
    acceptTOS: true
    storage: {{storage}}
    challenges:
      http:
        entryPoint: web
      tlsAlpn:
        entryPoint: websecure
routes:
  a:
    host: a.example.test
    service: a
%s
services:
  a:
    static:
      body: "A\n"
  b:
    static:
      body: "B\n"
`

func TestRunObtainsServesRedirectsAndReloads(t *testing.T) {
	r := startRun(t, fmt.Sprintf(routerConfig, ""), true)
	r.waitCert(t, "a.example.test")

	resp, body := r.get(t, fmt.Sprintf("https://a.example.test:%d/", r.tls))
	if resp.StatusCode != 200 || body != "A\n" || resp.ProtoMajor != 2 {
		t.Fatalf("GET a: %d %q over %s", resp.StatusCode, body, resp.Proto)
	}
	if resp.Header.Get("Strict-Transport-Security") != "max-age=3600" {
		t.Errorf("HSTS header %q", resp.Header.Get("Strict-Transport-Security"))
	}

	t.Run("redirect keeps path and query, spares the challenge path", func(t *testing.T) {
		resp, _ := r.get(t, fmt.Sprintf("http://a.example.test:%d/x/y?z=1&w=%%20", r.web))
		want := fmt.Sprintf("https://a.example.test:%d/x/y?z=1&w=%%20", r.tls)
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Fatalf("redirect: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		resp, _ = r.get(t, fmt.Sprintf("http://a.example.test:%d/.well-known/acme-challenge/unknown-token", r.web))
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("challenge path answered %d, want 404 from the challenge handler, not a redirect", resp.StatusCode)
		}
	})

	t.Run("unknown name fails the handshake at once", func(t *testing.T) {
		_, err := r.client().Get(fmt.Sprintf("https://nobody.example.test:%d/", r.tls))
		if err == nil || !strings.Contains(err.Error(), "tls") {
			t.Fatalf("want a TLS alert, got %v", err)
		}
	})

	t.Run("a route added by editing the file gets its certificate", func(t *testing.T) {
		ev := r.reload(t, fmt.Sprintf(strings.NewReplacer("{{web}}", fmt.Sprint(r.web), "{{tls}}", fmt.Sprint(r.tls), "{{server}}", serverOf(t, r), "{{storage}}", storageOf(r)).Replace(routerConfig),
			"  b:\n    host: b.example.test\n    service: b\n"))
		if !ev.Applied {
			t.Fatalf("reload refused: %v", ev.Err)
		}
		r.waitCert(t, "b.example.test")
		resp, body := r.get(t, fmt.Sprintf("https://b.example.test:%d/", r.tls))
		if resp.StatusCode != 200 || body != "B\n" || resp.TLS.PeerCertificates[0].DNSNames[0] != "b.example.test" {
			t.Fatalf("GET b: %d %q cert %v", resp.StatusCode, body, resp.TLS.PeerCertificates[0].DNSNames)
		}
	})

	t.Run("an invalid edit is refused and the old config keeps serving", func(t *testing.T) {
		ev := r.reload(t, "entryPoints:\n  web:\n    adress: 127.0.0.1:1\n")
		var cerr *config.Error
		if ev.Applied || !errors.As(ev.Err, &cerr) || !strings.Contains(ev.Err.Error(), ":3:") {
			t.Fatalf("reload event %+v, want a refusal naming line 3", ev)
		}
		resp, body := r.get(t, fmt.Sprintf("https://b.example.test:%d/", r.tls))
		if resp.StatusCode != 200 || body != "B\n" {
			t.Fatalf("after a refused reload: %d %q", resp.StatusCode, body)
		}
	})
}

func serverOf(t *testing.T, r *runRig) string {
	cfg, err := config.Load(r.path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Certificates.ACME.Server
}

func storageOf(r *runRig) string { return filepath.Join(filepath.Dir(r.path), "store") }

const loadConfig = `
admin:
  disabled: true
certificates:
  acme:
    storage: {{dir}}/store
entryPoints:
  web:
    address: 127.0.0.1:{{web}}
accessLog:
  path: {{dir}}/access.log
routes:
  app:
    host: app.example.test
    service: app
services:
  app:
    strategy: %s
    servers:
%s
`

// Reloads under a bounded concurrent request loop lose no request, and the
// access log has one line per request.
func TestRunReloadUnderLoadDropsNothing(t *testing.T) {
	var hits [3]atomic.Int64
	var urls []string
	for i := range hits {
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			hits[i].Add(1)
			fmt.Fprintf(w, "backend %d\n", i)
		}))
		t.Cleanup(b.Close)
		urls = append(urls, b.URL)
	}
	servers := func(n int, weights ...int) string {
		var s strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&s, "      - url: %s\n        weight: %d\n", urls[i], weights[i])
		}
		return s.String()
	}
	r := startRun(t, fmt.Sprintf(loadConfig, "round-robin", servers(2, 1, 1)), false)
	url := fmt.Sprintf("http://app.example.test:%d/", r.web)

	// Each worker runs until the reloads are done, bounded in count.
	const workers, maxPerWorker = 8, 5000
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.client()
			for i := 0; i < maxPerWorker; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
				}
				if resp != nil {
					resp.Body.Close()
				}
				done.Add(1)
			}
		}()
	}
	dir := filepath.Dir(r.path)
	variants := []string{
		fmt.Sprintf(loadConfig, "weighted", servers(3, 1, 2, 3)),
		fmt.Sprintf(loadConfig, "least-requests", servers(2, 1, 1)),
		fmt.Sprintf(loadConfig, "power-of-two-choices", servers(3, 1, 1, 1)),
		fmt.Sprintf(loadConfig, "round-robin", servers(2, 1, 1)),
	}
	for _, v := range variants {
		v = strings.NewReplacer("{{web}}", fmt.Sprint(r.web), "{{dir}}", dir).Replace(v)
		if ev := r.reload(t, v); !ev.Applied {
			t.Fatalf("reload refused: %v", ev.Err)
		}
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across %d reloads", n, done.Load(), len(variants))
	}
	if hits[2].Load() == 0 {
		t.Error("the server added by a reload never got a request")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "access.log"))
	must(t, err)
	lines := bytes.Count(raw, []byte("\n"))
	if int64(lines) != done.Load() {
		t.Fatalf("access log has %d lines, want %d", lines, done.Load())
	}
	for _, k := range []string{`"route":"app"`, `"service":"app"`, `"server":"http://127.0.0.1:`, `"status":200`, `"duration_ms":`, `"bytes":10`} {
		if !bytes.Contains(raw[:bytes.IndexByte(raw, '\n')], []byte(k)) {
			t.Errorf("access log line lacks %s: %s", k, raw[:bytes.IndexByte(raw, '\n')])
		}
	}
}
