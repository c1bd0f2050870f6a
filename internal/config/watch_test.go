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

// watchWait bounds every wait for a reload; reloads take SettleTime, or
// SettleTime+HoldTime for a file that does not load.
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

// machine is a Watcher whose state machine the test drives by hand, with
// its own clock: no fsnotify, no goroutine, no timer.
type machine struct {
	*Watcher
	t   *testing.T
	rec *applied
	t0  time.Time
}

func newMachine(t *testing.T, initial string) *machine {
	t.Helper()
	path := filepath.Join(t.TempDir(), "zoku.yaml")
	if err := os.WriteFile(path, []byte(initial), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env())
	if err != nil {
		t.Fatal(err)
	}
	rec := &applied{}
	w := newWatcher(path, env(), slog.New(slog.NewTextHandler(t.Output(), nil)), rec.apply)
	w.SetRunning(c)
	return &machine{Watcher: w, t: t, rec: rec, t0: time.Unix(1_700_000_000, 0)}
}

// at is the test clock: ms milliseconds after the start.
func (m *machine) at(ms int) time.Time { return m.t0.Add(time.Duration(ms) * time.Millisecond) }

// write writes text in place, as one write, and reports the change event
// at ms.
func (m *machine) write(ms int, text string) {
	m.t.Helper()
	if err := os.WriteFile(m.path, []byte(text), 0o600); err != nil {
		m.t.Fatal(err)
	}
	m.changed(m.at(ms))
}

// expectDue checks when the state machine wants to look next (-1: never).
func (m *machine) expectDue(ms int) {
	m.t.Helper()
	want := time.Time{}
	if ms >= 0 {
		want = m.at(ms)
	}
	if !m.due.Equal(want) {
		m.t.Fatalf("due at %v, want %v", m.due.Sub(m.t0), want.Sub(m.t0))
	}
}

// expectEvents checks the events sent so far (drained).
func (m *machine) expectEvents(want ...string) {
	m.t.Helper()
	var got []string
	for len(m.events) > 0 {
		ev := <-m.events
		switch {
		case ev.Applied:
			b := m.rec.snapshot()
			got = append(got, "applied "+b[len(b)-1])
		default:
			got = append(got, "refused")
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		m.t.Fatalf("events %v, want %v", got, want)
	}
}

// routesConfig has a static service whose body is body and a route per
// name.
func routesConfig(body string, routes ...string) string {
	var b strings.Builder
	b.WriteString(watchDoc(body) + "routes:\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "  %s:\n    host: %s.example.test\n    service: s\n", r, r)
	}
	return b.String()
}

func TestWatcherWaitsForTheFileToSettle(t *testing.T) {
	m := newMachine(t, routesConfig("zero", "a"))
	m.write(0, routesConfig("one", "a"))
	m.expectDue(150)
	m.wake(m.at(100)) // not due: nothing happens
	m.expectEvents()

	// A second write before the first settles starts the wait again: the
	// first write's deadline passes without a read.
	m.write(100, routesConfig("two", "a"))
	m.expectDue(250)
	m.wake(m.at(150))
	m.expectEvents()
	m.wake(m.at(250))
	m.expectEvents("applied two")
	m.expectDue(-1)

	// Unchanged bytes are not applied again.
	m.write(300, routesConfig("two", "a"))
	m.wake(m.at(450))
	m.expectEvents()
}

func TestWatcherRechecksSizeAndTime(t *testing.T) {
	m := newMachine(t, routesConfig("zero", "a"))
	m.write(0, routesConfig("one", "a"))
	// The file changes again and the event is lost (or late): at the
	// deadline its size differs from when the change was seen.
	if err := os.WriteFile(m.path, []byte(routesConfig("one, longer", "a")), 0o600); err != nil {
		t.Fatal(err)
	}
	m.wake(m.at(150))
	m.expectEvents()
	m.expectDue(300)
	m.wake(m.at(300))
	m.expectEvents("applied one, longer")
}

func TestWatcherHoldsAFileThatDropsRoutes(t *testing.T) {
	full := routesConfig("one", "a", "b", "c")
	t.Run("the rest arrives", func(t *testing.T) {
		m := newMachine(t, full)
		// The first part of a two-part write: valid, but only route a.
		m.write(0, routesConfig("two", "a"))
		m.wake(m.at(150))
		m.expectEvents()
		m.expectDue(150 + 2000)
		// The second part, 400 ms later: the hold ends, the whole file
		// settles and is applied; the first part never was.
		m.write(400, routesConfig("two", "a", "b", "c", "d"))
		m.expectDue(550)
		m.wake(m.at(550))
		m.expectEvents("applied two")
		if got := m.rec.snapshot(); len(got) != 1 {
			t.Fatalf("applied %v, want the whole file only", got)
		}
	})
	t.Run("the file stays", func(t *testing.T) {
		m := newMachine(t, full)
		m.write(0, routesConfig("fewer", "a"))
		m.wake(m.at(150))
		m.wake(m.at(2000)) // early: still held
		m.expectEvents()
		m.expectDue(2150)
		m.wake(m.at(2150))
		m.expectEvents("applied fewer")
		// Now a (one route) is what runs: a file with a and b is applied
		// after it settles.
		m.write(3000, routesConfig("more", "a", "b"))
		m.wake(m.at(3150))
		m.expectEvents("applied more")
	})
	t.Run("a file with the same routes is not held", func(t *testing.T) {
		m := newMachine(t, full)
		m.write(0, routesConfig("same", "c", "b", "a"))
		m.wake(m.at(150))
		m.expectEvents("applied same")
	})
}

func TestWatcherHoldsAFileThatDoesNotLoad(t *testing.T) {
	m := newMachine(t, routesConfig("one", "a"))
	// Cut in the middle of the next route's name.
	m.write(0, routesConfig("two", "a")+"  b")
	m.wake(m.at(150))
	m.expectEvents()
	m.expectDue(2150)
	m.wake(m.at(2150))
	ev := func() ReloadEvent {
		select {
		case ev := <-m.events:
			return ev
		default:
			t.Fatal("no event after the hold")
			return ReloadEvent{}
		}
	}()
	if ev.Applied || ev.Err == nil || !strings.Contains(ev.Err.Error(), `"b" has no ":" after it and the file ends there`) {
		t.Fatalf("got %+v, want a refusal naming the cut", ev)
	}
	if got := m.rec.snapshot(); len(got) != 0 {
		t.Fatalf("applied %v", got)
	}
}

func TestWatcherReloadDoesNotWait(t *testing.T) {
	m := newMachine(t, routesConfig("one", "a", "b"))
	m.write(0, routesConfig("two", "a"))
	m.wake(m.at(150)) // held: it drops b
	m.expectEvents()
	m.due, m.held = time.Time{}, nil
	m.try(true) // what Reload (SIGHUP) does
	m.expectEvents("applied two")
}

// TestWatchSeesAChangeBeforeItStarted: a file changed between Load and
// Watch (the running config was built from the old one) is applied once the
// watcher knows the config in service; the unchanged file is not.
func TestWatchSeesAChangeBeforeItStarted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  bool
		applied []string
	}{{"changed", true, []string{"two"}}, {"unchanged", false, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "zoku.yaml")
			writeAtomic(t, path, watchDoc("one"))
			c, err := Load(path, env())
			if err != nil {
				t.Fatal(err)
			}
			if tc.change {
				writeAtomic(t, path, watchDoc("two"))
			}
			rec := &applied{}
			w, err := Watch(t.Context(), path, env(), slog.New(slog.DiscardHandler), rec.apply)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.SetRunning(c)
			if tc.change {
				waitEvent(t, w, "change before Watch", func(ev ReloadEvent) bool { return ev.Applied })
			}
			// A later change proves the first look is over either way.
			writeAtomic(t, path, watchDoc("three"))
			waitEvent(t, w, "later change", func(ev ReloadEvent) bool {
				b := rec.snapshot()
				return ev.Applied && len(b) > 0 && b[len(b)-1] == "three"
			})
			got := rec.snapshot()
			if want := append(tc.applied, "three"); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("applied %v, want %v", got, want)
			}
		})
	}
}
