package legocli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// kind is the type of a flag's value.
type kind int

const (
	kBool kind = iota
	kString
	kInt
	kUint
	kDuration
	kTime // RFC 3339 timestamp
	kList // repeatable; a comma also separates values
)

// flagDef is one flag of lego's command line: its name, short aliases,
// value type, LEGO_* variable and default.
type flagDef struct {
	name    string
	aliases []string
	kind    kind
	env     string // the LEGO_* variable that sets it; "" for none
	def     string // default value, as text
	usage   string
	// local flags apply to their own command only; the others are also
	// understood by every command below (urfave/cli's persistent flags).
	local bool
	// note, when set, says how zoku's behaviour differs from lego's for
	// this flag; it is printed when the flag is used.
	note string
	// hidden flags are zoku's own (the v4 translation) and not shown.
	hidden bool
}

// envName is lego's rule for a flag's variable: LEGO_ and the name in
// upper case with every run of other characters turned into one '_'.
func envName(flag string) string {
	fields := strings.FieldsFunc(flag, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	return "LEGO_" + strings.ToUpper(strings.Join(fields, "_"))
}

// errHelp is returned when --help was asked for and printed.
var errHelp = errors.New("help printed")

// usageError is a command line lego would refuse; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// values holds the flags of one invocation: what the command line set,
// else the LEGO_* variable, else the default.
type values struct {
	defs   map[string]*flagDef // by name and alias
	given  map[string][]string // by name: values from the command line
	getenv func(string) string
}

func newValues(defs []*flagDef, getenv func(string) string) *values {
	v := &values{defs: map[string]*flagDef{}, given: map[string][]string{}, getenv: getenv}
	for _, d := range defs {
		v.defs[d.name] = d
		for _, a := range d.aliases {
			v.defs[a] = d
		}
	}
	return v
}

// raw returns the values of a flag and whether they were set (on the
// command line or by its variable).
func (v *values) raw(name string) ([]string, bool) {
	d, ok := v.defs[name]
	if !ok {
		panic("legocli: undefined flag " + name) // a programming error, caught by tests
	}
	if vals, ok := v.given[d.name]; ok {
		return vals, true
	}
	if d.env != "" && v.getenv != nil {
		if e := v.getenv(d.env); e != "" {
			if d.kind == kList {
				return splitList(e), true
			}
			return []string{e}, true
		}
	}
	if d.def == "" {
		return nil, false
	}
	return []string{d.def}, false
}

// IsSet reports whether the command line or the flag's variable set it.
func (v *values) IsSet(name string) bool {
	_, ok := v.raw(name)
	return ok
}

func (v *values) String(name string) string {
	vals, _ := v.raw(name)
	if len(vals) == 0 {
		return ""
	}
	return vals[len(vals)-1]
}

func (v *values) Bool(name string) bool {
	b, _ := strconv.ParseBool(v.String(name))
	return b
}

func (v *values) Int(name string) int {
	n, _ := strconv.Atoi(v.String(name))
	return n
}

func (v *values) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(v.String(name))
	return d
}

func (v *values) Time(name string) time.Time {
	t, _ := time.Parse(time.RFC3339, v.String(name))
	return t
}

func (v *values) List(name string) []string {
	vals, _ := v.raw(name)
	var out []string
	for _, s := range vals {
		out = append(out, splitList(s)...)
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// check validates a value for its kind.
func check(d *flagDef, val, from string) error {
	var err error
	switch d.kind {
	case kBool:
		_, err = strconv.ParseBool(val)
	case kInt:
		_, err = strconv.Atoi(val)
	case kUint:
		_, err = strconv.ParseUint(val, 10, 64)
	case kDuration:
		_, err = time.ParseDuration(val)
		if err != nil {
			return usagef("invalid value %q for %s --%s: want a duration such as 90s or 2m", val, from, d.name)
		}
	case kTime:
		if _, err = time.Parse(time.RFC3339, val); err != nil {
			return usagef("invalid value %q for %s --%s: want an RFC 3339 time such as 2026-03-01T00:00:00Z", val, from, d.name)
		}
	}
	if err != nil {
		return usagef("invalid value %q for %s --%s", val, from, d.name)
	}
	return nil
}

// checkEnv validates the LEGO_* variables of the flags not set on the
// command line, the way lego refuses a bad one.
func (v *values) checkEnv(defs []*flagDef) error {
	for _, d := range defs {
		if _, given := v.given[d.name]; given || d.env == "" || v.getenv == nil {
			continue
		}
		if e := v.getenv(d.env); e != "" && d.kind != kList {
			if err := check(d, e, "variable "+d.env+" of"); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseFlags reads flags from args until the first word that is not a
// flag, and returns the remaining words. Flags are --name, -name (both
// spellings for every name and alias, as urfave/cli accepts), with the
// value after '=' or as the next word; a bool takes a value only after
// '='. "--" ends the flags.
func (v *values) parseFlags(args []string, where string) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[i+1:], nil
		}
		if len(a) < 2 || a[0] != '-' {
			return args[i:], nil
		}
		name := strings.TrimLeft(a, "-")
		if name == "h" || name == "help" {
			return nil, errHelp
		}
		val, hasVal := "", false
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, val, hasVal = name[:k], name[k+1:], true
		}
		d, ok := v.defs[name]
		if !ok {
			return nil, usagef("%s: flag provided but not defined: -%s", where, name)
		}
		if !hasVal {
			if d.kind == kBool {
				val = "true"
			} else {
				if i+1 >= len(args) {
					return nil, usagef("%s: flag needs an argument: -%s", where, name)
				}
				i++
				val = args[i]
			}
		}
		if err := check(d, val, where); err != nil {
			return nil, err
		}
		if d.kind == kList {
			v.given[d.name] = append(v.given[d.name], val)
		} else {
			v.given[d.name] = []string{val}
		}
	}
	return nil, nil
}
