// Package dns01 solves ACME DNS-01 challenges with lego's DNS providers,
// chosen by lego code ("cloudflare", "iijdpf", "dnsupdate", ...).
//
// The facts about every provider lego has (display name, aliases, variable
// names) come from lego's own descriptors through a generated table
// (zz_gen_providers.go, see gen/). Which providers a binary can build
// depends on what registered them: this package registers the few built-ins
// that need no cloud SDK (dnsupdate alias rfc2136, exec, httpreq, iijdpf),
// and package catalogue registers all the others. Only cmd/zoku imports
// catalogue, so tests link just the built-ins. Providers whose SDK the
// module proxy does not serve are listed as unavailable in this build.
//
// Providers read their settings from lego's environment variables, each of
// which may instead name a file through its _FILE variant. A ProviderSpec
// can give a provider its own variables instead of the process-wide ones,
// which is how one Solver serves several zones with several accounts.
//
// Solver adds what lego's DNS-01 support lacks: a provider per zone chosen
// by longest suffix (after following a CNAME at _acme-challenge, so
// delegated names are written with the target zone's provider), a bounded
// propagation check that asks the authoritative servers on a configurable
// port and then the given resolvers, and a cleanup that runs even when the
// order's context was cancelled. PersistRecord and friends cover
// DNS-PERSIST-01.
//
// Errors are one line, prefixed "dns-01:", and name the fix: an unknown code
// suggests the nearest, a code that lego v5 dropped names its replacement,
// and missing credentials list the variables needed. No error or log line
// contains a variable's value.
package dns01

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/go-acme/lego/v5/challenge"
)

// Info describes one DNS provider.
type Info struct {
	// Code is what --dns takes, as in lego.
	Code string
	// Name is the provider's display name.
	Name string
	// Aliases are other codes accepted for this provider.
	Aliases []string
	// Required lists the variables lego's descriptor gives as credentials.
	// Some providers accept one of several ways to authenticate and lego
	// lists all of them (Note says which go together). Each may also be
	// given as <NAME>_FILE.
	Required []string
	// Optional lists further variables the provider reads (endpoints,
	// TTL, propagation timeout, polling interval, ...).
	Optional []string
	// Note is zoku's remark on the provider; empty when there is none.
	Note string
	// Linked reports whether this binary can build the provider.
	Linked bool
	// Unavailable reports that the provider cannot be part of this build:
	// the Go module proxy does not serve its SDK.
	Unavailable bool
}

// ErrUnknownProvider matches, with errors.Is, the error for a code that lego
// does not know, including codes that lego v5 dropped.
var ErrUnknownProvider = errors.New("dns-01: unknown provider")

// ErrUnavailableProvider matches, with errors.Is, the error for a provider
// that lego knows but this binary cannot build.
var ErrUnavailableProvider = errors.New("dns-01: provider unavailable in this build")

// ErrMissingCredentials matches, with errors.Is, the error for a provider
// whose required environment variables are not set.
var ErrMissingCredentials = errors.New("dns-01: missing credentials")

// missingMarker is the text lego's platform/env package puts in the error for
// unset variables. lego has no sentinel for it, so the text is the contract.
const missingMarker = "credentials information are missing: "

// Providers returns every provider lego has, sorted by code, with Linked
// and Unavailable set for this binary. The result is a copy.
func Providers() []Info {
	out := make([]Info, 0, len(facts))
	for _, f := range facts {
		out = append(out, f.info())
	}
	return out
}

// Lookup returns the provider for code or one of its aliases, matched
// case-insensitively. A provider this binary cannot build is still found
// (see Info.Linked); NewProvider reports that.
func Lookup(code string) (Info, error) {
	f, err := find(code)
	if err != nil {
		return Info{}, err
	}
	return f.info(), nil
}

// NewProvider looks up code and builds its provider from the process
// environment, as lego does. Missing credentials give an error that
// matches ErrMissingCredentials and lego's own error with errors.Is.
func NewProvider(code string) (challenge.Provider, error) {
	return newProvider(code, nil)
}

// newProvider builds code's provider; vars, when not nil, replace the
// process environment's values of the provider's variables.
func newProvider(code string, vars map[string]string) (challenge.Provider, error) {
	f, err := find(code)
	if err != nil {
		return nil, err
	}
	b, err := f.builder()
	if err != nil {
		return nil, err
	}
	p, err := buildWithEnv(b, f.variableNames(), vars)
	if err != nil { // never test p: lego returns a typed nil with its error
		return nil, f.buildError(err, vars)
	}
	return p, nil
}

// builder returns f's Builder, or why this binary has none.
func (f *fact) builder() (Builder, error) {
	if f.unavailable {
		return nil, &multiError{
			msg: fmt.Sprintf("dns-01: provider %q is unavailable in this build: the Go module proxy this build used does not serve its SDK; "+
				"use a zoku built where it is, or another provider (exec or httpreq can drive any DNS API)", f.code),
			errs: []error{ErrUnavailableProvider},
		}
	}
	b := builder(f.code)
	if b == nil {
		return nil, &multiError{
			msg: fmt.Sprintf("dns-01: provider %q is not linked into this binary; import "+
				"github.com/zoku/zoku/internal/challenge/dns01/catalogue to link every provider", f.code),
			errs: []error{ErrUnavailableProvider},
		}
	}
	return b, nil
}

// buildError explains a failed construction in one line.
func (f *fact) buildError(err error, vars map[string]string) error {
	msg := err.Error()
	i := strings.Index(msg, missingMarker)
	if i < 0 {
		return fmt.Errorf("dns-01: provider %q could not be set up: %w", f.code, err)
	}
	var missing []string
	for n := range strings.SplitSeq(msg[i+len(missingMarker):], ",") {
		if n = strings.TrimSpace(n); n != "" {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		missing = f.credentials
	}
	where := "set"
	if vars != nil {
		where = "give the provider"
	}
	return &multiError{
		msg: fmt.Sprintf("dns-01: provider %q is missing credentials: %s %s (or %s_FILE naming a file); "+
			"'zoku dns providers %s' lists all its variables%s",
			f.code, where, strings.Join(missing, ", "), missing[0], f.code, fileProblems(missing, vars)),
		errs: []error{ErrMissingCredentials, err},
	}
}

// fileProblems explains required variables that were given through a _FILE
// variant lego could not use (it only logs those), as "; NAME_FILE ...".
// It names files, never their content.
func fileProblems(required []string, vars map[string]string) string {
	get := os.Getenv
	if vars != nil {
		get = func(name string) string { return vars[name] }
	}
	var b strings.Builder
	for _, name := range required {
		path := get(name + "_FILE")
		if get(name) != "" || path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "; %s_FILE cannot be read: %v", name, err)
		case strings.TrimRight(string(data), "\r\n") == "":
			fmt.Fprintf(&b, "; %s_FILE names an empty file (%s)", name, path)
		}
	}
	return b.String()
}

// find returns the fact for code or alias, or a one-line error.
func find(code string) (*fact, error) {
	c := strings.ToLower(strings.TrimSpace(code))
	for i := range facts {
		if facts[i].code == c || slices.Contains(facts[i].aliases, c) {
			return &facts[i], nil
		}
	}
	if c == "" {
		return nil, &multiError{
			msg:  "dns-01: no provider given; 'zoku dns providers' lists the codes",
			errs: []error{ErrUnknownProvider},
		}
	}
	if r, ok := retired[c]; ok {
		return nil, &multiError{msg: retiredMessage(c, r), errs: []error{ErrUnknownProvider}}
	}
	msg := fmt.Sprintf("dns-01: unknown provider %q; 'zoku dns providers' lists the %d codes lego %s has", c, len(facts), legoVersion)
	if s := closestCode(c, candidates()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return nil, &multiError{msg: msg, errs: []error{ErrUnknownProvider}}
}

// retiredMessage explains that code is gone and how to use its replacement.
func retiredMessage(code string, r retiredEntry) string {
	msg := fmt.Sprintf("dns-01: provider %q is gone: %s; use --dns %s", code, r.reason, r.replacement)
	for _, f := range facts {
		if f.code != r.replacement {
			continue
		}
		if len(f.credentials) > 0 {
			msg += " and set " + strings.Join(f.credentials, ", ")
		}
		if len(r.optional) > 0 {
			msg += " (optional: " + strings.Join(r.optional, ", ") + ")"
		}
	}
	return msg
}

// candidates returns every code and alias, the names a typo may be close
// to, sorted.
func candidates() []string {
	var out []string
	for _, f := range facts {
		out = append(out, f.code)
		out = append(out, f.aliases...)
	}
	slices.Sort(out)
	return out
}

// info returns f as an Info that shares no slice with the table.
func (f *fact) info() Info {
	return Info{
		Code:        f.code,
		Name:        f.name,
		Aliases:     slices.Clone(f.aliases),
		Required:    slices.Clone(f.credentials),
		Optional:    slices.Clone(f.additional),
		Note:        notes[f.code],
		Linked:      !f.unavailable && builder(f.code) != nil,
		Unavailable: f.unavailable,
	}
}

// multiError is a one-line message that still matches each of errs with
// errors.Is and errors.As.
type multiError struct {
	msg  string
	errs []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }
