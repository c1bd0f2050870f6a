package middleware

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// circuitBreaker watches the answers of the rest of the request path. In
// a window of recent answers (at least minRequests of them), when the
// share of 5xx answers reaches errorRatio, or half of them or more took
// latency or longer (the median did), it opens: requests get
// responseCode with Retry-After for fallbackDuration. Then it recovers:
// for recoveryDuration a share of requests growing from 0 to all goes
// through, and the first trip again opens it anew; when recovery ends
// well it is closed. Its state is kept across reloads that leave its
// config unchanged.
type circuitBreaker struct {
	b   *breaker
	now func() time.Time
	log interface {
		Warn(msg string, args ...any)
		Info(msg string, args ...any)
	}
}

func newCircuitBreaker(state any, env Env) *circuitBreaker {
	return &circuitBreaker{b: state.(*breaker), now: env.Now, log: env.Logger}
}

func (m *circuitBreaker) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		start := m.now()
		if ok, wait := m.b.allow(start); !ok {
			w.Header().Set("Retry-After", strconv.FormatInt(max(int64(wait.Seconds()+0.999), 1), 10))
			plainError(w, http.StatusText(m.b.code)+": circuit breaker open", m.b.code)
			return
		}
		sw := getStatusWriter(w, nil)
		next(sw, r, st)
		status := sw.status
		putStatusWriter(sw)
		if r.Context().Err() != nil && status == 0 {
			return // the client left: says nothing of the service
		}
		// Status 0: an upgraded (hijacked) connection, or an empty 200.
		if change := m.b.record(m.now(), status >= 500, m.now().Sub(start)); change != "" {
			m.log.Warn("circuit breaker "+change, "state", change)
		}
	}
}

// Breaker states.
const (
	closed = iota
	open
	recovering
)

// breaker is a circuit breaker's state: statistics in buckets of a
// sliding window, and the state machine. Safe for concurrent use.
type breaker struct {
	ratio       float64
	latency     time.Duration
	minRequests int
	fallback    time.Duration
	recovery    time.Duration
	code        int
	bucketLen   time.Duration

	mu      sync.Mutex
	state   int
	since   time.Time       // of the state
	buckets [10]statsBucket // ring, by time
	credit  float64         // admission ramp while recovering
}

type statsBucket struct {
	start              time.Time
	total, fails, slow int
}

func newBreaker(c *config.CircuitBreaker) *breaker {
	return &breaker{
		ratio: c.ErrorRatio, latency: c.Latency.D(), minRequests: c.MinRequests,
		fallback: c.FallbackDuration.D(), recovery: c.RecoveryDuration.D(), code: c.ResponseCode,
		bucketLen: c.Window.D() / 10,
	}
}

// allow says whether a request may go through at now, and if not how
// long the breaker stays open.
func (b *breaker) allow(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case open:
		if left := b.fallback - now.Sub(b.since); left > 0 {
			return false, left
		}
		b.state, b.since, b.credit = recovering, now, 0
		b.clearStats()
		fallthrough
	case recovering:
		el := now.Sub(b.since)
		if el >= b.recovery {
			b.state, b.since = closed, now
			return true, 0
		}
		// Let through a share el/recovery of requests, evenly: each
		// request adds that share to a credit, and one whole credit
		// lets one through.
		b.credit += float64(el) / float64(b.recovery)
		if b.credit >= 1 {
			b.credit--
			return true, 0
		}
		return false, b.recovery - el
	}
	return true, 0
}

// record adds one answer and returns "opened" or "closed" when the state
// changed.
func (b *breaker) record(now time.Time, failed bool, took time.Duration) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == open {
		return ""
	}
	bk := b.bucketAt(now)
	bk.total++
	if failed {
		bk.fails++
	}
	if b.latency > 0 && took >= b.latency {
		bk.slow++
	}
	total, fails, slow := 0, 0, 0
	for i := range b.buckets {
		x := &b.buckets[i]
		if now.Sub(x.start) < 10*b.bucketLen {
			total, fails, slow = total+x.total, fails+x.fails, slow+x.slow
		}
	}
	trip := total >= b.minRequests &&
		(b.ratio > 0 && float64(fails) >= b.ratio*float64(total) || b.latency > 0 && 2*slow >= total)
	if b.state == recovering && failed && total < b.minRequests {
		trip = true // a failure while recovering, before the window fills, reopens
	}
	if trip {
		b.state, b.since = open, now
		b.clearStats()
		return "opened"
	}
	if b.state == recovering && now.Sub(b.since) >= b.recovery {
		b.state, b.since = closed, now
		return "closed"
	}
	return ""
}

// bucketAt returns the bucket of now, starting it afresh if it is stale.
func (b *breaker) bucketAt(now time.Time) *statsBucket {
	n := now.UnixNano() / int64(b.bucketLen)
	bk := &b.buckets[n%int64(len(b.buckets))]
	start := time.Unix(0, n*int64(b.bucketLen))
	if !bk.start.Equal(start) {
		*bk = statsBucket{start: start}
	}
	return bk
}

func (b *breaker) clearStats() { b.buckets = [10]statsBucket{} }

// State returns the breaker's state: closed, open or recovering.
func (b *breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return [...]string{"closed", "open", "recovering"}[b.state]
}
