// Package dns01 builds lego DNS providers for ACME DNS-01 challenges by code
// ("cloudflare", "iijdpf", "exec", ...).
//
// Providers read their settings from the same environment variables as lego
// (for example IIJ_DPF_API_TOKEN), and each variable may instead name a file
// through its _FILE variant (IIJ_DPF_API_TOKEN_FILE=/run/secrets/token), as
// lego allows. The catalogue is a single table in catalogue.go; only the
// providers listed there are linked into the binary.
//
// Errors are one line, prefixed "dns-01:", and name the fix: an unknown code
// lists the known ones and suggests the nearest, a code that lego v5 dropped
// names its replacement, and missing credentials list the variables needed.
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
	// Required lists the environment variables of the usual way to
	// authenticate; each may also be given as <NAME>_FILE.
	Required []string
	// Optional lists further variables the provider reads (endpoints,
	// TTL, propagation timeout, polling interval, ...).
	Optional []string
	// Note describes other accepted ways to authenticate and provider
	// quirks; empty when there are none.
	Note string
}

// ErrUnknownProvider matches, with errors.Is, the error for a code that is
// not in the catalogue, including codes that lego v5 dropped.
var ErrUnknownProvider = errors.New("dns-01: unknown provider")

// ErrMissingCredentials matches, with errors.Is, the error for a provider
// whose required environment variables are not set.
var ErrMissingCredentials = errors.New("dns-01: missing credentials")

// missingMarker is the text lego's platform/env package puts in the error for
// unset variables. lego has no sentinel for it, so the text is the contract.
const missingMarker = "credentials information are missing"

// Providers returns every provider of the catalogue, sorted by code. The
// result is a copy; changing it does not change the catalogue.
func Providers() []Info {
	out := make([]Info, 0, len(catalogue))
	for _, e := range catalogue {
		out = append(out, e.info.clone())
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// Lookup returns the provider for code or one of its aliases. Codes are
// matched case-insensitively.
func Lookup(code string) (Info, error) {
	e, err := find(code)
	if err != nil {
		return Info{}, err
	}
	return e.info.clone(), nil
}

// NewProvider looks up code and builds its provider from the environment,
// as lego does. Missing credentials give an error that matches
// ErrMissingCredentials and lego's own error with errors.Is.
func NewProvider(code string) (challenge.Provider, error) {
	e, err := find(code)
	if err != nil {
		return nil, err
	}
	p, err := e.build()
	if err != nil { // never test p: lego returns a typed nil with its error
		if strings.Contains(err.Error(), missingMarker) {
			return nil, &multiError{
				msg: fmt.Sprintf("dns-01: provider %q is missing credentials: %v; it needs: %s%s",
					e.info.Code, err, strings.Join(e.info.Required, ", "), fileProblems(e.info.Required)),
				errs: []error{ErrMissingCredentials, err},
			}
		}
		return nil, fmt.Errorf("dns-01: provider %q could not be set up: %w", e.info.Code, err)
	}
	return p, nil
}

// fileProblems explains required variables that were given through a _FILE
// variant lego could not use (it only logs those), as "; NAME_FILE ...".
// It names files, never their content.
func fileProblems(required []string) string {
	var b strings.Builder
	for _, name := range required {
		path := os.Getenv(name + "_FILE")
		if os.Getenv(name) != "" || path == "" {
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

// find returns the catalogue entry for code, or a one-line error.
func find(code string) (*entry, error) {
	c := strings.ToLower(strings.TrimSpace(code))
	for i := range catalogue {
		if catalogue[i].info.Code == c || slices.Contains(catalogue[i].info.Aliases, c) {
			return &catalogue[i], nil
		}
	}
	if c == "" {
		return nil, &multiError{
			msg:  "dns-01: no provider given; known providers: " + strings.Join(codes(), ", "),
			errs: []error{ErrUnknownProvider},
		}
	}
	if r, ok := retired[c]; ok {
		return nil, &multiError{msg: retiredMessage(c, r), errs: []error{ErrUnknownProvider}}
	}
	msg := fmt.Sprintf("dns-01: unknown provider %q; known providers: %s", c, strings.Join(codes(), ", "))
	if s := suggest(c, candidates()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return nil, &multiError{msg: msg, errs: []error{ErrUnknownProvider}}
}

// retiredMessage explains that code is gone and how to use its replacement.
func retiredMessage(code string, r retiredEntry) string {
	msg := fmt.Sprintf("dns-01: provider %q is gone: %s; use --dns %s", code, r.reason, r.replacement)
	for _, e := range catalogue {
		if e.info.Code != r.replacement {
			continue
		}
		if len(e.info.Required) > 0 {
			msg += " and set " + strings.Join(e.info.Required, ", ")
		}
		if len(r.optional) > 0 {
			msg += " (optional: " + strings.Join(r.optional, ", ") + ")"
		}
	}
	return msg
}

// codes returns the sorted codes of the catalogue.
func codes() []string {
	out := make([]string, 0, len(catalogue))
	for _, e := range catalogue {
		out = append(out, e.info.Code)
	}
	slices.Sort(out)
	return out
}

// candidates returns every code and alias, the names a typo may be close to.
func candidates() []string {
	var out []string
	for _, e := range catalogue {
		out = append(out, e.info.Code)
		out = append(out, e.info.Aliases...)
	}
	slices.Sort(out)
	return out
}

// clone returns a copy of i that shares no slice with it.
func (i Info) clone() Info {
	i.Aliases = slices.Clone(i.Aliases)
	i.Required = slices.Clone(i.Required)
	i.Optional = slices.Clone(i.Optional)
	return i
}

// multiError is a one-line message that still matches each of errs with
// errors.Is and errors.As.
type multiError struct {
	msg  string
	errs []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }
