package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// watchWait bounds every wait for a reload; reloads take ~150 ms.
const watchWait = 10 * time.Second

func watchDoc(body string) string {
	return "entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nservices:\n  s:\n    static:\n      body: " + body + "\n"
}

// applied records what the watcher applied.
type applied struct {
	mu     sync.Mutex
	bodies []string
	fail   string // apply returns an error for this body
}

func (a *applied) apply(c *Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	body := c.Services["s"].Static.Body
	if body == a.fail {
		return errors.New("backend refused " + body)
	}
	a.bodies = append(a.bodies, body)
	return nil
}

func (a *applied) snapshot() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.bodies...)
}

// waitEvent reads events until match accepts one, and fails the test when
// none does within watchWait (intermediate events, such as a read of a
// half-written file, are skipped).
func waitEvent(t *testing.T, w *Watcher, what string, match func(ReloadEvent) bool) ReloadEvent {
	t.Helper()
	deadline := time.NewTimer(watchWait)
	defer deadline.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("%s: events closed; saw %v", what, seen)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, fmt.Sprintf("{Applied:%v Err:%v}", ev.Applied, ev.Err))
		case <-deadline.C:
			t.Fatalf("%s: no matching reload event within %v; saw %v", what, watchWait, seen)
		}
	}
}

func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "zoku.yaml")
	if err := os.WriteFile(path, []byte(watchDoc("one")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env()); err != nil {
		t.Fatal(err)
	}
	rec := &applied{fail: "refused-by-apply"}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	w, err := Watch(t.Context(), path, env(), logger, rec.apply)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	appliedBody := func(body string) func(ReloadEvent) bool {
		return func(ev ReloadEvent) bool {
			b := rec.snapshot()
			return ev.Applied && len(b) > 0 && b[len(b)-1] == body
		}
	}

	t.Run("write in place is applied", func(t *testing.T) {
		if err := os.WriteFile(path, []byte(watchDoc("two")), 0o600); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, w, "valid change", appliedBody("two"))
	})

	t.Run("invalid change is refused with its line", func(t *testing.T) {
		before := len(rec.snapshot())
		bad := watchDoc("three") + "    adress: x\n"
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		ev := waitEvent(t, w, "invalid change", func(ev ReloadEvent) bool {
			return ev.Err != nil && strings.Contains(ev.Err.Error(), "adress")
		})
		want := path + `:8:5: unknown key "adress" in services.s`
		if ev.Applied || !strings.Contains(ev.Err.Error(), want) {
			t.Errorf("got %+v, want a refusal containing %q", ev, want)
		}
		if got := rec.snapshot(); len(got) != before {
			t.Errorf("apply was called for an invalid file: %v", got[before:])
		}
	})

	t.Run("rename over the file is applied", func(t *testing.T) {
		writeAtomic(t, path, watchDoc("four"))
		waitEvent(t, w, "rename-replace", appliedBody("four"))
	})

	t.Run("apply error is reported", func(t *testing.T) {
		writeAtomic(t, path, watchDoc("refused-by-apply"))
		ev := waitEvent(t, w, "apply error", func(ev ReloadEvent) bool {
			return ev.Err != nil && strings.Contains(ev.Err.Error(), "backend refused")
		})
		if ev.Applied {
			t.Errorf("got Applied with error %v", ev.Err)
		}
	})

	t.Run("Reload reloads an unchanged file", func(t *testing.T) {
		writeAtomic(t, path, watchDoc("five"))
		waitEvent(t, w, "change before reload", appliedBody("five"))
		n := len(rec.snapshot())
		w.Reload()
		waitEvent(t, w, "forced reload", func(ev ReloadEvent) bool { return ev.Applied && len(rec.snapshot()) == n+1 })
	})

	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitClosed(t, w)
}

// waitClosed drains Events until the watcher closes it.
func waitClosed(t *testing.T, w *Watcher) {
	t.Helper()
	deadline := time.NewTimer(watchWait)
	defer deadline.Stop()
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return
			}
		case <-deadline.C:
			t.Fatal("Events was not closed after the watcher stopped")
		}
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "zoku.toml")
	if err := os.WriteFile(path, []byte("[entryPoints.web]\naddress = \":0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	w, err := Watch(ctx, path, env(), slog.New(slog.DiscardHandler), func(*Config) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitClosed(t, w)
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestWatchArguments(t *testing.T) {
	noop := func(*Config) error { return nil }
	tests := []struct {
		name   string
		path   string
		logger *slog.Logger
		apply  func(*Config) error
		want   string
	}{
		{"nil logger", filepath.Join(t.TempDir(), "z.yaml"), nil, noop, "config: watch needs a logger"},
		{"missing folder", filepath.Join(t.TempDir(), "nope", "z.yaml"), slog.New(slog.DiscardHandler), noop, "check that its folder exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Watch(t.Context(), tt.path, env(), tt.logger, tt.apply)
			if err == nil {
				w.Close()
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
