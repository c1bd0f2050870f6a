package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// newLogger returns the progress logger: plain lines by default
// ("12:04:05 ordering certificate domains=[a.example]"), slog JSON with
// --log-format json.
func newLogger(w io.Writer, format string, verbose bool) (*slog.Logger, error) {
	return newLevelLogger(w, format, logLevel("", verbose))
}

// logLevel is the slog level of the config's log.level (validated: debug,
// info, warn, error; empty is info); verbose (--verbose) means debug.
func logLevel(name string, verbose bool) slog.Level {
	switch {
	case verbose || name == "debug":
		return slog.LevelDebug
	case name == "warn":
		return slog.LevelWarn
	case name == "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// newLevelLogger is newLogger at a given level.
func newLevelLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
	case "text", "":
		return slog.New(&plainHandler{w: w, mu: new(sync.Mutex), level: level}), nil
	}
	return nil, fmt.Errorf("unknown --log-format %q; use text or json", format)
}

// plainHandler writes one human-readable line per record. The component
// attribute is left out: it is for machines.
type plainHandler struct {
	w     io.Writer
	mu    *sync.Mutex
	level slog.Level
	attrs []slog.Attr
}

func (h *plainHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *plainHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Time.Format(time.TimeOnly))
	if r.Level != slog.LevelInfo {
		b.WriteString(" " + r.Level.String())
	}
	b.WriteString(" " + r.Message)
	add := func(a slog.Attr) bool {
		if a.Key == "component" || a.Equal(slog.Attr{}) {
			return true
		}
		v := a.Value.Resolve().String()
		if strings.ContainsAny(v, " \t\"") {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(" " + a.Key + "=" + v)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *plainHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *plainHandler) WithGroup(string) slog.Handler { return h }
