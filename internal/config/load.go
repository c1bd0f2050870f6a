package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/zoku/zoku/internal/suggest"
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
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Load reads the file at path and returns its Config: decoded (YAML for
// .yaml/.yml, TOML for .toml), ${ENV} and file: references resolved,
// defaults filled in and validated. getenv looks variables up (nil means
// os.Getenv). Every error is an *Error.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Reason: fmt.Sprintf("cannot read the file: %v; check the path and its permissions", err), Err: err}
	}
	return Parse(path, data, getenv)
}

// Parse is Load for data already read; name picks the format by its
// extension and is the file name in errors.
func Parse(name string, data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var (
		root *node
		err  error
	)
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		root, err = parseYAML(data)
	case ".toml":
		root, err = parseTOML(data)
	default:
		return nil, &Error{File: name, Reason: fmt.Sprintf("unknown file type %q; name the file .yaml, .yml or .toml", filepath.Ext(name))}
	}
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, &Error{File: name, Line: se.pos.line, Column: se.pos.col, Reason: se.reason}
		}
		return nil, &Error{File: name, Reason: err.Error(), Err: err}
	}
	c := &Config{Source: name}
	d := &decoder{file: name, getenv: getenv, pos: map[string]position{"": root.pos}}
	if root.kind != mapNode && root.kind != nullNode {
		return nil, d.fail(root.pos, "", "the file must be a table of keys (entryPoints:, routes:, ...), not %s", root.kind)
	}
	if err := d.decode(root, reflect.ValueOf(c).Elem(), ""); err != nil {
		return nil, err
	}
	c.positions = d.pos
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decoder fills Go values from a node tree, recording where every key path
// is.
type decoder struct {
	file   string
	getenv func(string) string
	pos    map[string]position
}

var (
	durationType = reflect.TypeFor[Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

func (d *decoder) fail(p position, path, format string, args ...any) *Error {
	return &Error{File: d.file, Line: p.line, Column: p.col, Path: path, Reason: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *node, v reflect.Value, path string) error {
	t := v.Type()
	if n.kind == nullNode {
		// A key with no value ("tls:") turns an optional section on with
		// its defaults; for anything else it means "unset".
		if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if n.kind != mapNode {
			return d.fail(n.pos, path, "%s must be a table of keys, not %s", describe(path), n.kind)
		}
		fields := structKeys(t)
		for _, e := range n.entries {
			p := join(path, e.key)
			d.pos[p] = e.pos
			idx, ok := fields[e.key]
			if !ok && path == "" && strings.HasPrefix(e.key, "x-") {
				continue // extension keys, a home for YAML anchors
			}
			if !ok {
				return d.unknownKey(e, path, fields)
			}
			if err := d.decode(e.val, v.Field(idx), p); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.kind != mapNode {
			return d.fail(n.pos, path, "%s must be a table of names, not %s", describe(path), n.kind)
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		for _, e := range n.entries {
			p := join(path, e.key)
			d.pos[p] = e.pos
			if e.key == "" {
				return d.fail(e.pos, p, "empty name in %s; give it a name", path)
			}
			ev := reflect.New(t.Elem()).Elem()
			if err := d.decode(e.val, ev, p); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(e.key).Convert(t.Key()), ev)
		}
		return nil
	case reflect.Slice:
		if n.kind != listNode {
			return d.fail(n.pos, path, "%s must be a list, not %s", describe(path), n.kind)
		}
		s := reflect.MakeSlice(t, len(n.items), len(n.items))
		for i, item := range n.items {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.pos[p] = item.pos
			if err := d.decode(item, s.Index(i), p); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.kind != scalarNode {
		return d.fail(n.pos, path, "%s must be a single value, not %s", describe(path), n.kind)
	}
	text, err := d.expand(n, path)
	if err != nil {
		return err
	}
	switch {
	case t == durationType:
		dur, err := parseDuration(text)
		if err != nil {
			return d.fail(n.pos, path, "%s: %v", path, err)
		}
		v.Set(reflect.ValueOf(dur))
	case t == secretType:
		s, err := d.secret(n, path, text)
		if err != nil {
			return err
		}
		v.SetString(s)
	case t.Kind() == reflect.String:
		v.SetString(text)
	case t.Kind() == reflect.Bool:
		switch strings.ToLower(text) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return d.fail(n.pos, path, "%s: %q is not true or false", path, text)
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		i, err := strconv.ParseInt(text, 0, t.Bits())
		if err != nil {
			return d.fail(n.pos, path, "%s: %q is not a whole number", path, text)
		}
		v.SetInt(i)
	default:
		return d.fail(n.pos, path, "%s: unsupported type %s", path, t)
	}
	return nil
}

func describe(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// structKeys maps a struct's yaml key names to field indexes.
func structKeys(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func (d *decoder) unknownKey(e *entry, path string, fields map[string]int) error {
	where := "at the top level"
	if path != "" {
		where = "in " + path
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if path == "" {
		if hint, ok := traefikKeys[e.key]; ok {
			return d.fail(e.pos, e.key, "unknown key %q at the top level; %s", e.key, hint)
		}
	}
	if s := closest(e.key, keys); s != "" {
		return d.fail(e.pos, join(path, e.key), "unknown key %q %s (did you mean %q?)", e.key, where, s)
	}
	return d.fail(e.pos, join(path, e.key), "unknown key %q %s; valid keys are %s", e.key, where, strings.Join(keys, ", "))
}

// traefikKeys point Traefik users at zoku's equivalent of a top-level key.
var traefikKeys = map[string]string{
	"acme":               "zoku's ACME settings are under certificates.acme (and certificates.domains, certificates.onHostRule)",
	"defaultEntryPoints": "routes are served on every entry point without a redirect unless they list entryPoints",
	"http":               "routers and services are top-level routes: and services:",
	"tls":                "TLS options belong to an entry point (entryPoints.<name>.tls); certificate files to certificates.files",
	"providers":          "zoku has no providers; list routes and services in this file (it is watched and re-applied)",
	"kubernetes":         "zoku has no providers; list routes and services in this file (it is watched and re-applied)",
	"docker":             "zoku has no providers; list routes and services in this file (it is watched and re-applied)",
}

// closest returns the candidate closest to s (ignoring case), or "" when
// none is close enough to be a likely typo: at most two edits, and fewer
// than len(s).
func closest(s string, candidates []string) string {
	return suggest.Closest(s, candidates, min(2, len(s)-1))
}

// expand replaces ${NAME} and ${NAME:-default} in a scalar; "$${" writes a
// literal "${". An unset or empty variable without a default is an error
// naming the variable (never its value).
func (d *decoder) expand(n *node, path string) (string, error) {
	s := n.text
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", d.fail(n.pos, path, "%s: unterminated ${ (write ${NAME}, or $${ for a literal ${)", path)
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", d.fail(n.pos, path, "%s: ${%s} is not a valid variable reference; write ${NAME} or ${NAME:-default}", path, name)
		}
		val := d.getenv(name)
		if val == "" {
			if !hasDef {
				return "", d.fail(n.pos, path, "%s: environment variable %s is not set; set it or write ${%s:-default}", path, name, name)
			}
			val = def
		}
		b.WriteString(val)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// cause strips the operation and path from a file error (the path is
// already in the message).
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// secret resolves a Secret: "file:/path" is replaced by the file's content,
// trimmed of surrounding white space. Relative paths are relative to the
// working directory, like every other path in the file.
func (d *decoder) secret(n *node, path, text string) (string, error) {
	file, ok := strings.CutPrefix(text, "file:")
	if !ok {
		return text, nil
	}
	if file == "" {
		return "", d.fail(n.pos, path, "%s: file: names no file; write file:/path/to/secret", path)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		e := d.fail(n.pos, path, "%s: cannot read secret file %s: %v; check the path and its permissions", path, file, cause(err))
		e.Err = err
		return "", e
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", d.fail(n.pos, path, "%s: secret file %s is empty; put the secret in it", path, file)
	}
	return v, nil
}
