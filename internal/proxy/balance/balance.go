// Package balance chooses which backend server of a service gets the next
// request.
//
// A Selector has one method, Select, which returns the index of a backend in
// the pool it is given, or -1 when no backend is available. Every Selector
// skips backends whose Available method reports false, so health checking
// stays outside this package: the caller marks servers down and the selectors
// route around them. A caller that must avoid a server it already tried (a
// retry) passes a copy of the pool in which that entry reports unavailable.
//
// One Selector serves one pool for its whole life: the pool passed to Select
// must keep the same backends in the same order from call to call (only
// their availability, weight and load may change). Stateful policies such as
// Weighted key their state by index and start over when the pool length
// changes.
//
// All selectors are safe for concurrent use. The round-robin and
// least-requests policies are lock-free; Weighted takes a mutex for the few
// nanoseconds of its arithmetic.
package balance

import (
	"fmt"
	"strings"
)

// Strategy names, as written in a service's "strategy" key.
const (
	StrategyRoundRobin    = "round-robin"
	StrategyWeighted      = "weighted"
	StrategyLeastRequests = "least-requests"
	StrategyPowerOfTwo    = "power-of-two-choices"
)

// Backend is what a Selector needs to know about one server.
type Backend interface {
	// Available reports whether the server may take a request now.
	Available() bool
	// Weight is the server's share under Weighted; values below 1 count
	// as 1.
	Weight() int
	// InFlight is the number of requests the server is handling now.
	InFlight() int64
}

// Selector picks a backend from a pool.
type Selector interface {
	// Select returns the index in pool of the chosen backend, or -1 when
	// no backend in pool is available.
	Select(pool []Backend) int
}

// New returns a fresh Selector for the named strategy. The empty name means
// round-robin. An unknown name is an error that lists the known ones.
func New(strategy string) (Selector, error) {
	switch strings.ToLower(strings.TrimSpace(strategy)) {
	case "", StrategyRoundRobin:
		return &RoundRobin{}, nil
	case StrategyWeighted:
		return &Weighted{}, nil
	case StrategyLeastRequests:
		return &LeastRequests{}, nil
	case StrategyPowerOfTwo:
		return &PowerOfTwo{}, nil
	default:
		return nil, fmt.Errorf("balance: unknown strategy %q; use %s, %s, %s or %s",
			strategy, StrategyRoundRobin, StrategyWeighted, StrategyLeastRequests, StrategyPowerOfTwo)
	}
}

// weight returns b's weight, with values below 1 counted as 1.
func weight(b Backend) int {
	if w := b.Weight(); w > 1 {
		return w
	}
	return 1
}
