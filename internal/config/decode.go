package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/zoku/zoku/internal/suggest"
)

// decoder fills Go values from a node tree.
type decoder struct {
	file   string
	getenv func(string) string
}

var (
	durationType = reflect.TypeFor[Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

// keyPath is where a value is: a chain of keys and list indexes, turned
// into "services.api.servers[0].url" only when an error needs it (most
// loads need none, and a file with 100,000 routes has a million paths).
type keyPath struct {
	parent *keyPath
	key    string
	index  int      // a list index when key is ""
	at     position // of the key
}

// String returns the dotted path ("" for the whole file).
func (p *keyPath) String() string {
	if p == nil {
		return ""
	}
	var parts []*keyPath
	for q := p; q != nil; q = q.parent {
		parts = append(parts, q)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		q := parts[i]
		switch {
		case q.key == "" && q.index >= 0:
			b.WriteString("[" + strconv.Itoa(q.index) + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(q.key)
		}
	}
	return b.String()
}

// fail makes an *Error at p; string arguments are clipped (see clip).
func (d *decoder) fail(p position, path, format string, args ...any) *Error {
	return &Error{File: d.file, Line: p.line, Column: p.col, Path: path, Reason: fmt.Sprintf(format, clipArgs(args)...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decode(n *node, v reflect.Value, kp *keyPath) error {
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
		return d.decode(n, v.Elem(), kp)
	case reflect.Struct:
		if n.kind != mapNode {
			path := kp.String()
			return d.fail(n.pos, path, "%s must be a table of keys, not %s%s", describe(path), n.kind, lostColon(n, kp))
		}
		fields := structKeys(t)
		var ext sectioned // a target's kind sections (targetkinds.go)
		if t == targetType && v.CanAddr() {
			ext, _ = v.Addr().Interface().(sectioned)
		}
		for _, e := range n.entries {
			idx, ok := fields[e.key]
			if !ok && kp == nil && strings.HasPrefix(e.key, "x-") {
				continue // extension keys, a home for YAML anchors
			}
			if !ok && ext != nil {
				if sv, found := ext.newSection(e.key); found {
					if err := d.decode(e.val, sv, &keyPath{parent: kp, key: e.key, at: e.pos}); err != nil {
						return err
					}
					continue
				}
			}
			if !ok {
				var more []string
				if ext != nil {
					more = ext.sectionKeys()
				}
				return d.unknownKey(e, kp.String(), fields, more...)
			}
			if err := d.decode(e.val, v.Field(idx), &keyPath{parent: kp, key: e.key, at: e.pos}); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.kind != mapNode {
			path := kp.String()
			return d.fail(n.pos, path, "%s must be a table of names, not %s%s", describe(path), n.kind, lostColon(n, kp))
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(t, len(n.entries)))
		}
		for _, e := range n.entries {
			sub := &keyPath{parent: kp, key: e.key, at: e.pos}
			if e.key == "" {
				return d.fail(e.pos, sub.String(), "empty name in %s; give it a name", kp.String())
			}
			ev := reflect.New(t.Elem()).Elem()
			if err := d.decode(e.val, ev, sub); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(e.key).Convert(t.Key()), ev)
		}
		return nil
	case reflect.Slice:
		if n.kind != listNode {
			path := kp.String()
			return d.fail(n.pos, path, "%s must be a list, not %s", describe(path), n.kind)
		}
		s := reflect.MakeSlice(t, len(n.items), len(n.items))
		for i, item := range n.items {
			if err := d.decode(item, s.Index(i), &keyPath{parent: kp, index: i}); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.kind != scalarNode {
		path := kp.String()
		return d.fail(n.pos, path, "%s must be a single value, not %s", describe(path), n.kind)
	}
	text, err := d.expand(n, kp)
	if err != nil {
		return err
	}
	switch {
	case t == durationType:
		dur, err := parseDuration(text)
		if err != nil {
			path := kp.String()
			return d.fail(n.pos, path, "%s: %v", path, err)
		}
		v.Set(reflect.ValueOf(dur))
	case t == secretType:
		s, err := d.secret(n, kp, text)
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
			path := kp.String()
			return d.fail(n.pos, path, "%s: %q is not true or false", path, text)
		}
	case t.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			path := kp.String()
			return d.fail(n.pos, path, "%s: %q is not a number", path, text)
		}
		v.SetFloat(f)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		i, err := strconv.ParseInt(text, 0, t.Bits())
		if err != nil {
			path := kp.String()
			return d.fail(n.pos, path, "%s: %q is not a whole number", path, text)
		}
		v.SetInt(i)
	default:
		path := kp.String()
		return d.fail(n.pos, path, "%s: unsupported type %s", path, t)
	}
	return nil
}

// lostColon explains a single value where a table belongs that sits on
// the lines below its key: YAML reads "tls:\n  minVer" as the value
// "minVer", so this is a key that lost its ":" (often a file cut short).
func lostColon(n *node, kp *keyPath) string {
	if n.kind != scalarNode || kp == nil || n.pos.line <= kp.at.line {
		return ""
	}
	return fmt.Sprintf(" (%q on line %d has no \":\"; is one missing, or the file cut short?)", clip(n.text), n.pos.line)
}

func describe(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// structKeysCache holds structKeys' result per type (reflect.Type to
// map[string]int): the decoder asks once per table of the file.
var structKeysCache sync.Map

// structKeys maps a struct's yaml key names to field indexes. The map is
// shared: do not modify it.
func structKeys(t reflect.Type) map[string]int {
	if m, ok := structKeysCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	structKeysCache.Store(t, m)
	return m
}

// unknownKey refuses e, suggesting the closest of the struct's keys and
// more (keys the struct takes beyond its fields).
func (d *decoder) unknownKey(e *entry, path string, fields map[string]int, more ...string) error {
	where := "at the top level"
	if path != "" {
		where = "in " + path
	}
	keys := make([]string, 0, len(fields)+len(more))
	for k := range fields {
		keys = append(keys, k)
	}
	keys = append(keys, more...)
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
func (d *decoder) expand(n *node, kp *keyPath) (string, error) {
	s := n.text
	if !strings.Contains(s, "${") {
		return s, nil
	}
	path := kp.String()
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
func (d *decoder) secret(n *node, kp *keyPath, text string) (string, error) {
	file, ok := strings.CutPrefix(text, "file:")
	if !ok {
		return text, nil
	}
	path := kp.String()
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
