package embedca

import (
	"fmt"
	"os"
	"slices"
	"sync"
)

// envMu serialises the set-construct-restore dance around Pebble's
// constructors, so several CAs can start concurrently in one process, each
// with its own knobs.
var envMu sync.Mutex

// envVar is one variable to set for the duration of withEnv; an empty value
// unsets it.
type envVar struct{ key, value string }

// withEnv sets vars, runs fn, and restores the previous environment, all
// under envMu. Code outside this package that reads the same variables
// concurrently may see the temporary values.
func withEnv(vars []envVar, fn func()) (err error) {
	envMu.Lock()
	defer envMu.Unlock()

	type saved struct {
		key, value string
		ok         bool
	}
	var restore []saved
	defer func() {
		for _, s := range slices.Backward(restore) {
			var rerr error
			if s.ok {
				rerr = os.Setenv(s.key, s.value)
			} else {
				rerr = os.Unsetenv(s.key)
			}
			if rerr != nil && err == nil {
				err = fmt.Errorf("embedca: restore env %s: %w", s.key, rerr)
			}
		}
	}()
	for _, v := range vars {
		old, ok := os.LookupEnv(v.key)
		restore = append(restore, saved{v.key, old, ok})
		var serr error
		if v.value == "" {
			serr = os.Unsetenv(v.key)
		} else {
			serr = os.Setenv(v.key, v.value)
		}
		if serr != nil {
			return fmt.Errorf("embedca: set env %s: %w", v.key, serr)
		}
	}
	fn()
	return nil
}

// sortedKeys returns m's keys in order, for deterministic iteration.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
