package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// A target's type-specific section (`netscaler:`, `haproxy:`, ...) is not
// a field of Target: each type of target ("kind") registers its section
// with RegisterTargetKind from its own package, so adding a kind touches
// that package alone. The configuration knows the section's keys (the yaml
// tags of the registered struct), its defaults and its checks, and nothing
// of how a deploy runs: package deploy/kind registers both halves from one
// call, and the zoku program links the kinds in (package cli imports
// deploy/builtin); a config loaded without them knows no target type.

// TargetKind is one type of deploy target as the configuration sees it.
type TargetKind struct {
	// Name is the value of type: and the key of the section: lower-case
	// letters and digits, not a key Target already has.
	Name string
	// NewSection returns a pointer to a new zero section: a struct whose
	// yaml, toml and json tags name its keys, like every table of the
	// file. Duration and Secret fields are read as elsewhere.
	NewSection func() any
	// Responder says the kind answers HTTP-01 itself: challenge.responder
	// is allowed, and is its default when no other way is set.
	Responder bool
	// Required, when set, refuses a target without the section with
	// "<target> has no <name> section; <Required>". Otherwise a missing
	// section gets a zero one before Defaults.
	Required string
	// Defaults fills the section's documented defaults (and may fill the
	// target's, e.g. Verify). It runs after the common keys are normalised,
	// and only when t.Settings is set. Nil means none.
	Defaults func(t *Target)
	// Validate checks the section (t.Settings) after Defaults; its
	// errors come from k.Errorf so they name the file and line. Nil means
	// nothing to check.
	Validate func(k *TargetCheck, t *Target) error
}

var kinds = struct {
	sync.RWMutex
	m map[string]TargetKind
}{m: map[string]TargetKind{}}

// RegisterTargetKind adds a kind. Target packages call deploy/kind.Register,
// which calls this with the schema half. It is meant for init functions
// and panics, like database/sql.Register, on a name that is taken or not
// usable as a key, or without NewSection.
func RegisterTargetKind(k TargetKind) {
	if !validKindName(k.Name) {
		panic(fmt.Sprintf("config: target kind name %q: use lower-case letters and digits", k.Name))
	}
	if _, common := structKeys(targetType)[k.Name]; common {
		panic(fmt.Sprintf("config: target kind name %q is a key every target has", k.Name))
	}
	if k.NewSection == nil {
		panic(fmt.Sprintf("config: target kind %q has no NewSection", k.Name))
	}
	if s := k.NewSection(); s == nil || reflect.TypeOf(s).Kind() != reflect.Pointer || reflect.TypeOf(s).Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: target kind %q: NewSection must return a pointer to a struct, not %T", k.Name, s))
	}
	kinds.Lock()
	defer kinds.Unlock()
	if _, dup := kinds.m[k.Name]; dup {
		panic(fmt.Sprintf("config: target kind %q registered twice", k.Name))
	}
	kinds.m[k.Name] = k
}

func validKindName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// TargetKinds returns the names of the registered kinds, sorted.
func TargetKinds() []string {
	kinds.RLock()
	defer kinds.RUnlock()
	names := make([]string, 0, len(kinds.m))
	for n := range kinds.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookupKind(name string) (TargetKind, bool) {
	kinds.RLock()
	defer kinds.RUnlock()
	k, ok := kinds.m[name]
	return k, ok
}

var targetType = reflect.TypeFor[Target]()

// newSection is the decoder's hook for Target (decode.go): a key that is a
// registered kind's name decodes into a new section of that kind, kept
// until the defaults pick the one named by type.
func (t *Target) newSection(key string) (reflect.Value, bool) {
	k, ok := lookupKind(key)
	if !ok {
		return reflect.Value{}, false
	}
	s := k.NewSection()
	if t.sections == nil {
		t.sections = map[string]any{}
	}
	t.sections[key] = s
	return reflect.ValueOf(s), true
}

// sectionKeys are the keys newSection takes, for "did you mean".
func (*Target) sectionKeys() []string { return TargetKinds() }

// sectioned is a struct whose table also takes keys known only at run
// time (Target: the registered kinds' sections).
type sectioned interface {
	newSection(key string) (reflect.Value, bool)
	sectionKeys() []string
}

// TargetCheck is what a kind's Validate reports problems through.
type TargetCheck struct {
	c *Config
	// Path is the target's key path, "targets.<name>"; Section is the
	// kind's section, "targets.<name>.<kind>".
	Path, Section string
}

// Errorf returns the *Error to report: at the line of path (a whole key
// path such as k.Section+".url"), or of its nearest parent in the file.
func (k *TargetCheck) Errorf(path, format string, args ...any) error {
	return k.c.errAt(path, format, args...)
}

// HostPort checks that addr is host:port with a port from 0 to 65535 and
// a host that is empty, an IP or a host name; the error says which part is
// wrong, without quoting addr.
func (*TargetCheck) HostPort(addr string) error {
	_, err := splitAddress(addr)
	return err
}

// Hostname reports whether h is a valid (ASCII) host name.
func (*TargetCheck) Hostname(h string) bool { return validHostname(h, false) }

// FileProblem strips the operation and path from a file error, for a
// message that names the key and the path itself.
func (*TargetCheck) FileProblem(err error) error { return cause(err) }

// view is t as the file writes it: the common keys and, under the name of
// its type, the section. YAML and JSON render it, so a config round-trips
// and the admin API shows the section where the user wrote it.
func (t Target) view() any {
	if t.Settings == nil || t.Type == "" {
		type plain Target // without the methods, so no recursion
		return plain(t)
	}
	fields := make([]reflect.StructField, 0, 5)
	for i := range targetType.NumField() {
		if f := targetType.Field(i); f.IsExported() && f.Tag.Get("yaml") != "-" {
			fields = append(fields, f)
		}
	}
	st := reflect.TypeOf(t.Settings)
	fields = append(fields, reflect.StructField{
		Name: "Section", Type: st,
		Tag: reflect.StructTag(fmt.Sprintf(`yaml:%q toml:%q json:"%s,omitempty"`, t.Type, t.Type, t.Type)),
	})
	v := reflect.New(reflect.StructOf(fields)).Elem()
	src := reflect.ValueOf(t)
	for i := range len(fields) - 1 {
		v.Field(i).Set(src.FieldByName(fields[i].Name))
	}
	v.Field(len(fields) - 1).Set(reflect.ValueOf(t.Settings))
	return v.Interface()
}

// MarshalYAML writes the section under the name of the target's type.
func (t Target) MarshalYAML() (any, error) { return t.view(), nil }

// MarshalJSON writes the section under the name of the target's type.
func (t Target) MarshalJSON() ([]byte, error) { return json.Marshal(t.view()) }

// applyKindDefaults picks the section named by t.Type and fills its
// defaults (an unknown type is left for validation to name).
func (t *Target) applyKindDefaults() {
	k, ok := lookupKind(t.Type)
	if !ok {
		return
	}
	t.Settings = t.sections[t.Type]
	ch := &t.Challenge
	if k.Responder && ch.Listen == "" && ch.Webroot == "" && ch.Exec == nil && !ch.DNS {
		ch.Responder = true
	}
	if t.Settings == nil && k.Required == "" {
		t.Settings = k.NewSection()
	}
	if t.Settings != nil && k.Defaults != nil {
		k.Defaults(t)
	}
}

// targetKind returns t's kind, after checking that t.Type names one and
// that no other kind's section is set.
func (c *Config) targetKind(p string, t *Target) (TargetKind, error) {
	names := TargetKinds()
	if len(names) == 0 {
		return TargetKind{}, c.errAt(p+".type", "%s.type %q: this program has no target types built in", p, t.Type)
	}
	k, ok := lookupKind(t.Type)
	if !ok {
		return TargetKind{}, c.errAt(p+".type", "%s.type %q is unknown; use one of %s%s", p, t.Type, strings.Join(names, ", "), didYouMean(t.Type, names))
	}
	for _, s := range sortedKeys(t.sections) {
		if s != t.Type {
			return TargetKind{}, c.errAt(p+"."+s, "%s.%s is set but the type is %s; remove it or change the type", p, s, t.Type)
		}
	}
	return k, nil
}

// validateSection checks the section of t's kind k.
func (c *Config) validateSection(p string, k TargetKind, t *Target) error {
	if t.Settings == nil {
		return c.errAt(p, "%s has no %s section; %s", p, t.Type, k.Required)
	}
	if k.Validate == nil {
		return nil
	}
	err := k.Validate(&TargetCheck{c: c, Path: p, Section: p + "." + t.Type}, t)
	var e *Error
	if err != nil && !errors.As(err, &e) {
		// A kind that returns a plain error still gets a position.
		return c.errAt(p+"."+t.Type, "%s.%s: %v", p, t.Type, err)
	}
	return err
}

// responderKinds describes the kinds that answer HTTP-01 themselves, for
// the error about challenge.responder elsewhere.
func responderKinds() string {
	var out []string
	for _, n := range TargetKinds() {
		if k, _ := lookupKind(n); k.Responder {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "target types that answer HTTP-01 themselves, and this program has none"
	}
	return strings.Join(out, " and ") + " targets"
}
