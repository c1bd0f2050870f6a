package config

import (
	"bytes"
	"context"
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

// debounce is how long the watcher waits after the first change event
// before reading the file, so one save (truncate, write, chmod; or write
// temp, rename) is read once, complete.
const debounce = 150 * time.Millisecond

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

	fsw    *fsnotify.Watcher
	reload chan struct{}
	events chan ReloadEvent
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error // from closing fsw; set once in Close

	last []byte // content of the last attempt; owned by the loop goroutine
}

// Watch starts watching path (its folder, because editors and
// configuration management replace files by renaming a new one over them,
// and Kubernetes swaps a "..data" symlink). After a burst of changes
// settles (about 150 ms) the file is loaded with getenv (nil means
// os.Getenv) and, when valid, passed to apply; a change that leaves the
// bytes as they were is ignored. Watch does not load the file first: call
// Load, start with its result, then Watch. logger must not be nil. The
// watcher stops when ctx ends or Close is called.
func Watch(ctx context.Context, path string, getenv func(string) string, logger *slog.Logger, apply func(*Config) error) (*Watcher, error) {
	if logger == nil || apply == nil {
		return nil, errors.New("config: watch needs a logger and an apply function")
	}
	if getenv == nil {
		getenv = os.Getenv
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
	w := &Watcher{
		path:   path,
		name:   filepath.Base(abs),
		getenv: getenv,
		logger: logger.With("component", "config"),
		apply:  apply,
		fsw:    fsw,
		reload: make(chan struct{}, 1),
		events: make(chan ReloadEvent, 16),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go w.loop(ctx)
	return w, nil
}

// Events delivers one ReloadEvent per reload attempt. It is buffered;
// events nobody reads are dropped when the buffer is full, so reading is
// optional. It is closed when the watcher stops.
func (w *Watcher) Events() <-chan ReloadEvent { return w.events }

// Reload asks for a reload now, even if the file did not change (for
// SIGHUP: a ${ENV} or file: secret may have). It does not wait; the
// outcome arrives on Events.
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
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) || fire != nil {
				continue
			}
			timer = time.NewTimer(debounce)
			fire = timer.C
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.logger.Warn("config watch error; reloading to be safe", "file", w.path, "error", err)
			if fire == nil {
				timer = time.NewTimer(debounce)
				fire = timer.C
			}
		case <-fire:
			fire = nil
			w.try(false)
		case <-w.reload:
			w.try(true)
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

// try runs one reload attempt and reports it.
func (w *Watcher) try(force bool) {
	data, err := os.ReadFile(w.path)
	if err == nil && !force && w.last != nil && bytes.Equal(data, w.last) {
		return
	}
	w.last = data
	var ev ReloadEvent
	switch {
	case err != nil:
		ev.Err = &Error{File: w.path, Reason: fmt.Sprintf("cannot read the file: %v; the running config stays", cause(err)), Err: err}
		w.logger.Error("config reload refused", "file", w.path, "error", ev.Err)
	default:
		c, perr := Parse(w.path, data, w.getenv)
		if perr != nil {
			ev.Err = perr
			w.logger.Error("config reload refused; the running config stays", "file", w.path, "error", perr)
			break
		}
		if aerr := w.safeApply(c); aerr != nil {
			ev.Err = fmt.Errorf("config: apply %s: %w", w.path, aerr)
			w.logger.Error("config apply failed", "file", w.path, "error", aerr)
			break
		}
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
