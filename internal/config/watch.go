package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// The watcher's timing. A save is one or more writes; the file is read
// once it has settled, and a candidate that would take routes away (or
// does not load) is acted on only once it has stayed unchanged for a while
// longer: a file written in parts must not be applied between them.
const (
	// SettleTime is how long the file must go without a change event,
	// with its size and modification time unchanged, before it is read.
	// Every change starts the wait again.
	SettleTime = 150 * time.Millisecond
	// HoldTime is how long a settled file that does not load, or that
	// lacks routes the running configuration has, must stay unchanged
	// before it is refused or applied.
	HoldTime = 2 * time.Second
)

// ReloadEvent is the outcome of one reload attempt.
type ReloadEvent struct {
	// Applied is true when the new Config was loaded and apply returned
	// nil.
	Applied bool
	// Err is why the reload was refused (an *Error for a bad file) or what
	// apply returned; nil when Applied.
	Err error
}

// Watcher re-loads a configuration file when it changes and hands each
// valid result to an apply function. A file that does not load (syntax,
// unknown key, validation, missing ${ENV}) is refused: the error is logged
// as one line and apply is not called, so the running configuration stays.
// Create it with Watch; stop it with Close.
type Watcher struct {
	path   string
	name   string // base name of path, matched against events
	getenv func(string) string
	logger *slog.Logger
	apply  func(*Config) error

	// Timing; the defaults are SettleTime, HoldTime and time.Now (tests
	// drive the state machine with their own times).
	settle, hold time.Duration
	now          func() time.Time

	fsw    *fsnotify.Watcher
	reload chan struct{}
	events chan ReloadEvent
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error // from closing fsw; set once in Close

	runMu   sync.Mutex
	running *Config // in service; guarded by runMu

	// first carries the config in service at start to the loop, which
	// then looks at the file once: a change made between Load and Watch is
	// not missed.
	first chan *Config

	// The state machine, owned by the loop goroutine.
	due      time.Time // when to look at the file; zero: nothing pending
	snap     fileStamp // the file when the last change was seen
	held     *held     // a candidate waiting to stay unchanged for hold
	last     [sha256.Size]byte
	haveLast bool // last is the content of the last attempt
}

// fileStamp is what tells a file changed without reading it.
type fileStamp struct {
	exists  bool
	size    int64
	modTime int64 // Unix nanoseconds
}

// held is a candidate that waits: the hash of its content (zero when the
// file could not be read) and when it was first seen.
type held struct {
	sum   [sha256.Size]byte
	since time.Time
}

// Watch starts watching path (its folder, because editors and
// configuration management replace files by renaming a new one over them,
// and Kubernetes swaps a "..data" symlink). Once a change has settled
// (SettleTime without another change, size and time unchanged) the file is
// loaded with getenv (nil means os.Getenv) and, when valid, passed to
// apply; a change that leaves the bytes as they were is ignored. A file
// that does not load, or that lacks routes the running configuration has,
// is refused or applied only after it has stayed unchanged for HoldTime
// too, so a file caught half-written is not acted on. Write the new file
// next to the old one and rename it over: then no reader sees half a file.
//
// Watch does not load the file first: call Load, start with its result,
// then Watch and SetRunning. logger must not be nil. The watcher stops
// when ctx ends or Close is called.
func Watch(ctx context.Context, path string, getenv func(string) string, logger *slog.Logger, apply func(*Config) error) (*Watcher, error) {
	if logger == nil || apply == nil {
		return nil, errors.New("config: watch needs a logger and an apply function")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: watch %s: %w", path, err)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("config: watch %s: %w", path, err)
	}
	if err := fsw.Add(filepath.Dir(abs)); err != nil {
		_ = fsw.Close()
		return nil, fmt.Errorf("config: watch %s: %w; check that its folder exists and is readable", path, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := newWatcher(path, getenv, logger, apply)
	w.fsw, w.cancel = fsw, cancel
	go w.loop(ctx)
	return w, nil
}

// newWatcher makes a Watcher without starting it (tests drive its state
// machine directly).
func newWatcher(path string, getenv func(string) string, logger *slog.Logger, apply func(*Config) error) *Watcher {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Watcher{
		path:   path,
		name:   filepath.Base(path),
		getenv: getenv,
		logger: logger.With("component", "config"),
		apply:  apply,
		settle: SettleTime,
		hold:   HoldTime,
		now:    time.Now,
		reload: make(chan struct{}, 1),
		events: make(chan ReloadEvent, 16),
		first:  make(chan *Config, 1),
		done:   make(chan struct{}),
	}
}

// SetRunning tells the watcher which configuration is in service (the one
// Load returned, which the caller started with): a change that lacks some
// of its routes is held for HoldTime. After that the watcher keeps track
// itself of what it applied. Safe to call at any time.
func (w *Watcher) SetRunning(c *Config) {
	w.runMu.Lock()
	w.running = c
	w.runMu.Unlock()
	select {
	case w.first <- c:
	default:
	}
}

// Events delivers one ReloadEvent per reload attempt. It is buffered;
// events nobody reads are dropped when the buffer is full, so reading is
// optional. It is closed when the watcher stops.
func (w *Watcher) Events() <-chan ReloadEvent { return w.events }

// Reload asks for a reload now, even if the file did not change (for
// SIGHUP: a ${ENV} or file: secret may have). It does not wait for the
// file to settle or hold; the outcome arrives on Events.
func (w *Watcher) Reload() {
	select {
	case w.reload <- struct{}{}:
	default: // one is already pending
	}
}

// Close stops the watcher and waits for it to finish. It is safe to call
// more than once.
func (w *Watcher) Close() error {
	w.once.Do(func() {
		w.cancel()
		<-w.done
		w.err = w.fsw.Close()
	})
	return w.err
}

func (w *Watcher) loop(ctx context.Context) {
	defer close(w.done)
	defer close(w.events)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var fire <-chan time.Time
	// arm sets the timer to the state machine's next due time.
	arm := func() {
		timer.Stop()
		fire = nil
		if !w.due.IsZero() {
			timer.Reset(w.due.Sub(w.now()))
			fire = timer.C
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-w.first:
			// The file as it was loaded is not a change; anything else
			// since is.
			if c != nil && c.hasSum && !w.haveLast {
				w.last, w.haveLast = c.sum, true
			}
			w.changed(w.now())
			arm()
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				w.changed(w.now())
				arm()
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.logger.Warn("config watch error; reloading to be safe", "file", w.path, "error", err)
			w.changed(w.now())
			arm()
		case <-fire:
			w.wake(w.now())
			arm()
		case <-w.reload:
			w.due, w.held = time.Time{}, nil
			w.try(true)
			arm()
		}
	}
}

// relevant reports whether ev may have changed the file: any change to
// its name, or to a Kubernetes-style "..data" link in the folder.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	base := filepath.Base(ev.Name)
	return base == w.name || strings.HasPrefix(base, "..")
}

func (w *Watcher) stamp() fileStamp {
	fi, err := os.Stat(w.path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, size: fi.Size(), modTime: fi.ModTime().UnixNano()}
}

// changed notes a change event at now: the wait for the file to settle
// starts again.
func (w *Watcher) changed(now time.Time) {
	w.snap = w.stamp()
	w.due = now.Add(w.settle)
}

// wake runs when the state machine is due: it reads the file if it has
// settled, and acts on it or waits more.
func (w *Watcher) wake(now time.Time) {
	if w.due.IsZero() || now.Before(w.due) {
		return
	}
	w.due = time.Time{}
	if st := w.stamp(); st != w.snap {
		// Changed since the last event (or with none): wait again.
		w.snap, w.due = st, now.Add(w.settle)
		return
	}
	data, rerr := readFile(w.path)
	if st := w.stamp(); st != w.snap {
		w.snap, w.due = st, now.Add(w.settle)
		return
	}
	var sum [sha256.Size]byte
	if rerr == nil {
		sum = sha256.Sum256(data)
		if w.haveLast && sum == w.last {
			w.held = nil
			return
		}
	}
	var (
		c    *Config
		perr error
	)
	if rerr == nil {
		c, perr = Parse(w.path, data, w.getenv)
	}
	if why := w.doubtful(rerr, perr, c); why != "" {
		if w.held == nil || w.held.sum != sum {
			w.held = &held{sum: sum, since: now}
			w.due = now.Add(w.hold)
			w.logger.Info("config change held: "+why+"; acting on it once the file stays unchanged for "+w.hold.String(), "file", w.path)
			return
		}
		if wait := w.held.since.Add(w.hold); now.Before(wait) {
			w.due = wait
			return
		}
	}
	w.held = nil
	w.last, w.haveLast = sum, rerr == nil
	w.report(rerr, perr, c)
}

// doubtful says why a settled file may still be a file being written: it
// cannot be read, does not load, or lacks routes the running configuration
// has. "" means it can be acted on at once.
func (w *Watcher) doubtful(rerr, perr error, c *Config) string {
	switch {
	case rerr != nil:
		return "it cannot be read"
	case perr != nil:
		return "it does not load"
	}
	w.runMu.Lock()
	running := w.running
	w.runMu.Unlock()
	if running == nil {
		return ""
	}
	missing, example := 0, ""
	for name := range running.Routes {
		if _, ok := c.Routes[name]; !ok {
			missing++
			if example == "" || name < example {
				example = name
			}
		}
	}
	if missing == 0 {
		return ""
	}
	return fmt.Sprintf("it lacks %d of the running routes (%s among them)", missing, clip(example))
}

// try reads and loads the file now and reports the outcome (Reload).
func (w *Watcher) try(force bool) {
	data, rerr := readFile(w.path)
	var (
		c    *Config
		perr error
	)
	if rerr == nil {
		sum := sha256.Sum256(data)
		if !force && w.haveLast && sum == w.last {
			return
		}
		w.last, w.haveLast = sum, true
		c, perr = Parse(w.path, data, w.getenv)
	}
	w.report(rerr, perr, c)
}

// report applies c or logs why not, and sends the ReloadEvent.
func (w *Watcher) report(rerr, perr error, c *Config) {
	var ev ReloadEvent
	switch {
	case rerr != nil:
		ev.Err = rerr
		var ce *Error
		if errors.As(rerr, &ce) {
			ce.Reason += "; the running config stays"
		}
		w.logger.Error("config reload refused", "file", w.path, "error", ev.Err)
	case perr != nil:
		ev.Err = perr
		w.logger.Error("config reload refused; the running config stays", "file", w.path, "error", perr)
	default:
		if aerr := w.safeApply(c); aerr != nil {
			ev.Err = fmt.Errorf("config: apply %s: %w", w.path, aerr)
			w.logger.Error("config apply failed", "file", w.path, "error", aerr)
			break
		}
		w.SetRunning(c)
		ev.Applied = true
		w.logger.Info("config reloaded", "file", w.path)
	}
	select {
	case w.events <- ev:
	default:
		w.logger.Debug("config reload event dropped; nobody reads Events", "file", w.path)
	}
}

func (w *Watcher) safeApply(c *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.logger.Error("config apply panicked", "file", w.path, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("apply panicked: %v", r)
		}
	}()
	return w.apply(c)
}
