package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Error is a configuration problem at a place in the file. Its message is
// one line: "config: <file>:<line>:<col>: <reason>", where the reason names
// the key path, what is wrong and, where there is one, the fix. It never
// contains the value of a Secret.
type Error struct {
	// File is the name given to Load or Parse; empty for a Config built in
	// code.
	File string
	// Line and Column are 1-based; zero when the place is unknown.
	Line, Column int
	// Path is the key path, e.g. "entryPoints.web.address" or
	// "services.api.servers[0].url"; empty for the whole file.
	Path string
	// Reason is the message after the position.
	Reason string
	// Err is the underlying cause (a file error, a TLS error), if any.
	Err error
}

// maxReason bounds the reason of an Error: values quoted in it are clipped
// already (see clip), this catches the rest.
const maxReason = 1000

// Error returns the one-line message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	reason := strings.ReplaceAll(e.Reason, "\n", " ")
	if len(reason) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut] + "…"
	}
	b.WriteString(reason)
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Load reads the file at path and returns its Config: decoded (YAML for
// .yaml/.yml, TOML for .toml), ${ENV} and file: references resolved,
// defaults filled in and validated. getenv looks variables up (nil means
// os.Getenv). Every error is an *Error. A file over MaxFileBytes is
// refused without being read whole.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, getenv)
}

// readFile reads at most MaxFileBytes of path; every error is an *Error.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Reason: fmt.Sprintf("cannot read the file: %v; check the path and its permissions", cause(err)), Err: err}
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	if size > MaxFileBytes {
		return nil, &Error{File: path, Reason: tooLarge(size)}
	}
	// The size may change while it is read (a writer still at work):
	// read one byte past the limit to notice.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, &Error{File: path, Reason: fmt.Sprintf("cannot read the file: %v; check the path and its permissions", cause(err)), Err: err}
	}
	if len(data) > MaxFileBytes {
		return nil, &Error{File: path, Reason: tooLarge(int64(len(data)))}
	}
	return data, nil
}

// Parse is Load for data already read; name picks the format by its
// extension and is the file name in errors. data over MaxFileBytes is
// refused.
func Parse(name string, data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if len(data) > MaxFileBytes {
		return nil, &Error{File: name, Reason: tooLarge(int64(len(data)))}
	}
	var parse func([]byte) (*node, error)
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		parse = parseYAML
	case ".toml":
		parse = parseTOML
	default:
		return nil, &Error{File: name, Reason: fmt.Sprintf("unknown file type %q; name the file .yaml, .yml or .toml", clip(filepath.Ext(name)))}
	}
	if se := checkText(data); se != nil {
		return nil, &Error{File: name, Line: se.pos.line, Column: se.pos.col, Reason: se.reason}
	}
	root, err := parse(data)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, &Error{File: name, Line: se.pos.line, Column: se.pos.col, Reason: se.reason}
		}
		return nil, &Error{File: name, Reason: err.Error(), Err: err}
	}
	c := &Config{Source: name, sum: sha256.Sum256(data), hasSum: true}
	d := &decoder{file: name, getenv: getenv}
	if root.kind != mapNode && root.kind != nullNode {
		hint := ""
		if root.kind == scalarNode {
			hint = fmt.Sprintf(" (%q has no \":\"; is one missing, or the file cut short?)", clip(root.text))
		}
		return nil, d.fail(root.pos, "", "the file must be a table of keys (entryPoints:, routes:, ...), not %s%s", root.kind, hint)
	}
	if err := d.decode(root, reflect.ValueOf(c).Elem(), nil); err != nil {
		return nil, err
	}
	c.applyDefaults()
	// The tree names lines in Validate's errors; it is dropped after (a
	// file of 100,000 routes has a tree of 60 MiB, which a running
	// config should not carry).
	c.tree = root
	err = c.Validate()
	c.tree = nil
	if err != nil {
		return nil, err
	}
	return c, nil
}
