package middleware

import (
	"net/http"
	"sync"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// inFlight bounds the requests under way per client (IP, or the value of
// a header); one more gets 429.
type inFlight struct {
	tab    *inFlightTable
	amount int
	header string
	depth  int
}

func newInFlight(c *config.InFlightReq, state any) *inFlight {
	return &inFlight{tab: state.(*inFlightTable), amount: c.Amount, header: c.SourceHeader, depth: c.Depth}
}

func (m *inFlight) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		key, ok := source(r, m.header, m.depth)
		if !ok {
			plainError(w, "400 bad request: no client address", http.StatusBadRequest)
			return
		}
		if !m.tab.acquire(key, m.amount) {
			plainError(w, "429 too many requests in flight", http.StatusTooManyRequests)
			return
		}
		defer m.tab.release(key)
		next(w, r, st)
	}
}

// inFlightTable counts the requests under way per client; it survives
// reloads that leave the middleware's config unchanged, so that requests
// started before a reload still count after it.
type inFlightTable struct {
	shards [rateShards]struct {
		mu    sync.Mutex
		count map[sourceKey]int // guarded by mu; no zero entries
	}
}

func newInFlightTable() *inFlightTable {
	t := &inFlightTable{}
	for i := range t.shards {
		t.shards[i].count = map[sourceKey]int{}
	}
	return t
}

func (t *inFlightTable) acquire(key sourceKey, limit int) bool {
	s := &t.shards[shardOf(key, rateShards)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count[key] >= limit {
		return false
	}
	s.count[key]++
	return true
}

func (t *inFlightTable) release(key sourceKey) {
	s := &t.shards[shardOf(key, rateShards)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.count[key]; n <= 1 {
		delete(s.count, key)
	} else {
		s.count[key] = n - 1
	}
}
