package middleware

import "sync"

// State keeps the state of middlewares across reloads: rate-limit
// buckets, in-flight counts and circuit breakers. An entry is found by the
// middleware's name, kind and config, so a middleware whose config did
// not change gets its state back and one whose config changed starts
// afresh. The zero value is ready; it is safe for concurrent use.
//
// The router builds a new config's middlewares (Apply), swaps them in,
// then calls Retain with the keys the running config uses, which forgets
// the rest.
type State struct {
	mu      sync.Mutex
	entries map[string]any // guarded by mu
	used    map[string]bool
}

// get returns the entry of key, making it with fresh when there is none,
// and marks it used by the config being built.
func (s *State) get(key string, fresh func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = map[string]any{}
	}
	if s.used == nil {
		s.used = map[string]bool{}
	}
	s.used[key] = true
	v, ok := s.entries[key]
	if !ok {
		v = fresh()
		s.entries[key] = v
	}
	return v
}

// Begin starts building a config: the entries it asks for from now on
// are the ones Retain keeps.
func (s *State) Begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = map[string]bool{}
}

// Retain forgets every entry the config built since Begin did not ask
// for. Call it once that config runs.
func (s *State) Retain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.entries {
		if !s.used[k] {
			delete(s.entries, k)
		}
	}
}

// Len is the number of entries kept.
func (s *State) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
