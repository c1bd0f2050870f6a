package middleware

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// rateLimit is a token bucket per client (IP, or the value of a header):
// Average requests per Period on average, bursts of Burst; a request
// finding the bucket empty gets 429 with Retry-After (whole seconds until
// a token is back).
type rateLimit struct {
	tab    *rateTable
	header string
	depth  int
	now    func() time.Time
}

func newRateLimit(c *config.RateLimit, state any, env Env) *rateLimit {
	return &rateLimit{tab: state.(*rateTable), header: c.SourceHeader, depth: c.Depth, now: env.Now}
}

func (m *rateLimit) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		key, ok := source(r, m.header, m.depth)
		if !ok {
			plainError(w, "400 bad request: no client address", http.StatusBadRequest)
			return
		}
		if wait := m.tab.take(key, m.now()); wait > 0 {
			secs := int64(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
			plainError(w, "429 too many requests", http.StatusTooManyRequests)
			return
		}
		next(w, r, st)
	}
}

// rateShards spreads the buckets over locks.
const rateShards = 16

// rateTable holds the buckets of one rateLimit; it survives reloads that
// leave the middleware's config unchanged.
type rateTable struct {
	rate     float64 // tokens per second
	burst    float64
	perShard int
	shards   [rateShards]rateShard
}

type rateShard struct {
	mu        sync.Mutex
	buckets   map[sourceKey]*bucket // guarded by mu
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateTable(c *config.RateLimit) *rateTable {
	t := &rateTable{
		rate:     float64(c.Average) / c.Period.D().Seconds(),
		burst:    float64(c.Burst),
		perShard: max(c.MaxSources/rateShards, 1),
	}
	for i := range t.shards {
		t.shards[i].buckets = map[sourceKey]*bucket{}
	}
	return t
}

// take takes a token from key's bucket at now; it returns 0 when there
// was one, else how long until there is.
func (t *rateTable) take(key sourceKey, now time.Time) time.Duration {
	s := &t.shards[shardOf(key, rateShards)]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= t.perShard {
			t.sweep(s, now)
		}
		b = &bucket{tokens: t.burst, last: now}
		s.buckets[key] = b
	} else if el := now.Sub(b.last); el > 0 {
		b.tokens = min(t.burst, b.tokens+el.Seconds()*t.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / t.rate * float64(time.Second))
}

// sweep makes room in a full shard: it drops the buckets that have
// refilled (a full bucket is the same as none), at most once a second;
// if none has, it drops one at random (map order), so that a flood of
// new clients cannot grow the table.
func (t *rateTable) sweep(s *rateShard, now time.Time) {
	if now.Sub(s.lastSweep) >= time.Second {
		s.lastSweep = now
		for k, b := range s.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*t.rate >= t.burst {
				delete(s.buckets, k)
			}
		}
	}
	for k := range s.buckets {
		if len(s.buckets) < t.perShard {
			break
		}
		delete(s.buckets, k)
	}
}

// size is the number of clients tracked.
func (t *rateTable) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
