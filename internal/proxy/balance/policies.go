package balance

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Compile-time checks that every policy is a Selector.
var (
	_ Selector = (*RoundRobin)(nil)
	_ Selector = (*Weighted)(nil)
	_ Selector = (*LeastRequests)(nil)
	_ Selector = (*PowerOfTwo)(nil)
)

// RoundRobin hands requests to the backends in turn. The first call picks
// index 0. An unavailable backend is skipped and its turn goes to the next
// available one, so over n calls with every backend up each gets exactly
// n/len(pool) requests (±1). The zero value is ready to use.
type RoundRobin struct {
	next atomic.Uint64
}

// Select implements Selector.
func (s *RoundRobin) Select(pool []Backend) int {
	n := uint64(len(pool))
	if n == 0 {
		return -1
	}
	start := s.next.Add(1) - 1
	for i := range n {
		j := int((start + i) % n)
		if pool[j].Available() {
			return j
		}
	}
	return -1
}

// Weighted is smooth weighted round-robin (the algorithm nginx uses): each
// pick adds every available backend's weight to its running score, chooses
// the highest score (the lowest index on ties) and subtracts the total
// weight from the winner. Over every run of sum(weights) picks each backend
// is chosen exactly weight times, and picks of one backend are spread out
// rather than bunched. It is deterministic. The zero value is ready to use.
type Weighted struct {
	mu      sync.Mutex // guards current
	current []int      // running score per pool index
}

// Select implements Selector.
func (s *Weighted) Select(pool []Backend) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.current) != len(pool) {
		s.current = make([]int, len(pool))
	}
	best, total := -1, 0
	for i, b := range pool {
		if !b.Available() {
			continue
		}
		w := weight(b)
		s.current[i] += w
		total += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best >= 0 {
		s.current[best] -= total
	}
	return best
}

// LeastRequests picks the available backend with the fewest requests in
// flight. Ties go round-robin: the scan starts one place further on each
// call, and the first backend with the lowest count wins, so idle backends
// share the load evenly. The zero value is ready to use.
type LeastRequests struct {
	next atomic.Uint64
}

// Select implements Selector.
func (s *LeastRequests) Select(pool []Backend) int {
	n := uint64(len(pool))
	if n == 0 {
		return -1
	}
	start := s.next.Add(1) - 1
	best, bestLoad := -1, int64(0)
	for i := range n {
		j := int((start + i) % n)
		b := pool[j]
		if !b.Available() {
			continue
		}
		if load := b.InFlight(); best < 0 || load < bestLoad {
			best, bestLoad = j, load
		}
	}
	return best
}

// PowerOfTwo draws two different available backends at random and picks
// the one with fewer requests in flight (the first drawn on a tie). It
// spreads load nearly as well as LeastRequests while looking at only two
// backends, and the most loaded backend is never chosen when there are two
// or more available.
type PowerOfTwo struct {
	// Rand returns a uniform random int in [0, n). Nil means
	// math/rand/v2's IntN. It must be safe for concurrent use when Select
	// is called concurrently; tests inject a seeded source.
	Rand func(n int) int
}

// Select implements Selector.
func (s *PowerOfTwo) Select(pool []Backend) int {
	// Snapshot the available indexes once, so that a backend going down
	// mid-call cannot shift the draw. Pools of up to 64 need no allocation.
	var buf [64]int
	avail := buf[:0]
	for i, b := range pool {
		if b.Available() {
			avail = append(avail, i)
		}
	}
	switch len(avail) {
	case 0:
		return -1
	case 1:
		return avail[0]
	}
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.IntN
	}
	a := rnd(len(avail))
	b := rnd(len(avail) - 1)
	if b >= a {
		b++ // two different backends
	}
	ia, ib := avail[a], avail[b]
	if pool[ib].InFlight() < pool[ia].InFlight() {
		return ib
	}
	return ia
}
