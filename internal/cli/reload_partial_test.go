package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// partialRoutes is how many routes the config of the two-part write has.
const partialRoutes = 200

// twoPartConfig is a config whose routes come last, one per line group, so
// a cut between two routes leaves a valid config with fewer routes.
func twoPartConfig(port int, dir, body string, routes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "admin:\n  disabled: true\nentryPoints:\n  web:\n    address: 127.0.0.1:%d\n", port)
	fmt.Fprintf(&b, "certificates:\n  acme:\n    storage: %s\n", filepath.Join(dir, "store"))
	fmt.Fprintf(&b, "services:\n  s:\n    static:\n      body: %q\n", body)
	b.WriteString("routes:\n")
	for i := range routes {
		fmt.Fprintf(&b, "  r%d:\n    host: r%d.example.test\n    service: s\n", i, i)
	}
	return b.String()
}

// heldSignal is a log handler that reports the watcher's "config change
// held" line: the moment the watcher has read a half-written file and
// decided to wait.
type heldSignal struct{ ch chan string }

func (h heldSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h heldSignal) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h heldSignal) WithGroup(string) slog.Handler            { return h }
func (h heldSignal) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "config change held") {
		select {
		case h.ch <- r.Message:
		default:
		}
	}
	return nil
}

// load sends requests to every route, from a few clients at once, until
// stop is closed (or it has sent max requests, or a minute has passed),
// and counts the answers that are not a 200 from one of the bodies.
type load struct {
	ok, failed atomic.Int64
	firstFail  atomic.Value  // string
	progress   chan struct{} // a request finished
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, port, routes int, bodies ...string) *load {
	l := &load{stop: make(chan struct{}), progress: make(chan struct{}, 1)}
	const clients, max = 4, 200_000
	deadline := time.Now().Add(time.Minute)
	var sent atomic.Int64
	for c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for i := c; ; i += clients {
				select {
				case <-l.stop:
					return
				default:
				}
				if sent.Add(1) > max || time.Now().After(deadline) {
					return
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
				req.Host = fmt.Sprintf("r%d.example.test", i%routes)
				resp, err := client.Do(req)
				if err != nil {
					l.fail(fmt.Sprintf("%s: %v", req.Host, err))
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := string(b)
				good := resp.StatusCode == http.StatusOK
				if good {
					good = false
					for _, want := range bodies {
						good = good || got == want
					}
				}
				if !good {
					l.fail(fmt.Sprintf("%s: %d %q", req.Host, resp.StatusCode, got))
					continue
				}
				l.ok.Add(1)
				l.tick()
			}
		}()
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) fail(what string) {
	l.failed.Add(1)
	l.firstFail.CompareAndSwap(nil, what)
	l.tick()
}

func (l *load) tick() {
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

func (l *load) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// waitOK waits until n more requests have succeeded, and fails the test
// if one fails or none succeed for 30 s.
func (l *load) waitOK(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	idle := time.NewTimer(30 * time.Second)
	defer idle.Stop()
	for l.ok.Load() < target {
		if f := l.failed.Load(); f > 0 {
			t.Fatalf("%d requests failed; first: %v", f, l.firstFail.Load())
		}
		select {
		case <-l.progress:
		case <-idle.C:
			t.Fatalf("requests stopped succeeding (%d so far)", l.ok.Load())
		}
	}
}

// TestReloadOfAFileWrittenInTwoParts serves requests for every route
// while the config file is rewritten in place in two parts, the first of
// which is a valid config lacking half the routes (or a file cut in the
// middle of a line). The second part is written once the watcher has seen
// the first and held it, which is at least the watcher's settle time
// later. No request may fail, and the first part must never be applied.
func TestReloadOfAFileWrittenInTwoParts(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(text string) int
	}{
		{"cut between two routes", func(text string) int {
			return strings.Index(text, fmt.Sprintf("  r%d:\n", partialRoutes/2))
		}},
		{"cut in the middle of a line", func(text string) int {
			i := strings.Index(text, fmt.Sprintf("  r%d:\n", partialRoutes/2))
			return i + len("  r100:\n    ho")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, dir := testenv.FreePort(t), t.TempDir()
			path := filepath.Join(dir, "zoku.yaml")
			must(t, os.WriteFile(path, []byte(twoPartConfig(port, dir, "v1", partialRoutes)), 0o600))
			cfg, err := config.Load(path, os.Getenv)
			must(t, err)
			held := heldSignal{ch: make(chan string, 1)}
			ctx, cancel := context.WithCancel(context.Background())
			srv, err := startServer(ctx, Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}, path, cfg, slog.New(held), engineOptions{})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); srv.close() })

			l := startLoad(t, port, partialRoutes, "v1", "v2")
			l.waitOK(t, 500)

			// The new file has every route and one more, and a new body.
			next := twoPartConfig(port, dir, "v2", partialRoutes+1)
			cut := tc.cut(next)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
			must(t, err)
			defer f.Close()
			_, err = f.WriteString(next[:cut])
			must(t, err)

			select {
			case msg := <-held.ch:
				t.Logf("after part one: %s", msg)
			case ev := <-srv.watcher.Events():
				t.Errorf("the watcher acted on the half-written file: %+v", ev)
				if ev.Applied {
					// Let the load meet the half config before going on.
					l.waitOK(t, 500)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the watcher did not read the first part within 30 s")
			}
			_, err = f.WriteString(next[cut:])
			must(t, err)
			must(t, f.Close())

			select {
			case ev := <-srv.watcher.Events():
				if !ev.Applied {
					t.Fatalf("the whole file was refused: %v", ev.Err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the whole file was not applied within 30 s")
			}
			// Keep the load on across the apply, then check the new
			// route answers with the new body.
			l.waitOK(t, 500)
			l.halt()
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
			req.Host = fmt.Sprintf("r%d.example.test", partialRoutes)
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "v2" {
				t.Errorf("new route: %d %q, want 200 v2", resp.StatusCode, b)
			}
			if n := l.failed.Load(); n > 0 {
				t.Fatalf("%d of %d requests failed; first: %v", n, n+l.ok.Load(), l.firstFail.Load())
			}
			t.Logf("%d requests, none failed", l.ok.Load())
		})
	}
}
