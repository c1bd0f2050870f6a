package dns01

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/go-acme/lego/v5/challenge"
)

// fact is what lego's descriptor says about one provider (generated).
type fact struct {
	code, name              string
	aliases                 []string
	credentials, additional []string
	// unavailable: the module proxy does not serve the provider's SDK, so
	// this build cannot contain it.
	unavailable bool
}

// Builder builds a provider from the environment variables visible when
// it runs, as lego's NewDNSProvider functions do.
type Builder func() (challenge.Provider, error)

// Adapt turns a lego provider constructor (for example
// cloudflare.NewDNSProvider) into a Builder. lego returns a typed nil
// pointer with its error; Adapt returns a nil interface instead.
func Adapt[P challenge.Provider](newProvider func() (P, error)) Builder {
	return func() (challenge.Provider, error) {
		p, err := newProvider()
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

var (
	regMu    sync.RWMutex
	builders = map[string]Builder{}
)

// Register makes the provider with lego code code buildable in this binary.
// Package catalogue calls it for every provider lego has; package dns01
// registers its built-ins itself. It panics when code is not a lego code,
// is unavailable in this build, or is registered twice: all are
// programming errors found at start-up.
func Register(code string, b Builder) {
	i := slices.IndexFunc(facts, func(f fact) bool { return f.code == code })
	if i < 0 {
		panic(fmt.Sprintf("dns-01: Register(%q): not a lego %s provider code", code, legoVersion))
	}
	if facts[i].unavailable {
		panic(fmt.Sprintf("dns-01: Register(%q): the provider is marked unavailable in this build; run go generate", code))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := builders[code]; dup {
		panic(fmt.Sprintf("dns-01: Register(%q): registered twice", code))
	}
	builders[code] = b
}

// builder returns the registered Builder for code, or nil.
func builder(code string) Builder {
	regMu.RLock()
	defer regMu.RUnlock()
	return builders[code]
}

// envMu serialises provider construction: lego providers read their
// settings from the process environment, and a ProviderSpec with its own
// variables changes that environment while its provider is built.
var envMu sync.Mutex

// buildWithEnv runs b. With vars == nil it sees the process environment as
// it is. Otherwise, for the duration of the call, each of names and its
// _FILE variant is unset, then vars are set; everything is restored
// afterwards, so the provider sees only the variables given to it.
func buildWithEnv(b Builder, names []string, vars map[string]string) (challenge.Provider, error) {
	envMu.Lock()
	defer envMu.Unlock()
	if vars == nil {
		return b()
	}
	type saved struct {
		value string
		set   bool
	}
	old := map[string]saved{}
	keep := func(name string) {
		if _, done := old[name]; !done {
			v, ok := os.LookupEnv(name)
			old[name] = saved{v, ok}
		}
	}
	defer func() {
		for name, s := range old {
			if s.set {
				_ = os.Setenv(name, s.value)
			} else {
				_ = os.Unsetenv(name)
			}
		}
	}()
	for _, n := range names {
		for _, name := range []string{n, n + "_FILE"} {
			keep(name)
			_ = os.Unsetenv(name)
		}
	}
	for name, v := range vars {
		keep(name)
		if err := os.Setenv(name, v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	return b()
}

// variableNames returns every variable of f with the prefixes of lego's
// older names for it, for isolation in buildWithEnv.
func (f fact) variableNames() []string {
	names := slices.Concat(f.credentials, f.additional)
	// lego still reads the v4 names of a few renamed providers.
	if f.code == "dnsupdate" {
		for _, n := range slices.Clone(names) {
			names = append(names, "RFC2136_"+strings.TrimPrefix(n, "DNSUPDATE_"))
		}
	}
	return names
}
