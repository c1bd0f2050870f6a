package middleware

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestIPAllowList(t *testing.T) {
	for _, tc := range []struct {
		name, mw, remote, xff string
		want                  int
	}{
		{"peer in range", "sourceRange: [10.0.0.0/8, 192.0.2.7]", "10.1.2.3:1000", "", 200},
		{"peer single IP", "sourceRange: [10.0.0.0/8, 192.0.2.7]", "192.0.2.7:1000", "", 200},
		{"peer outside", "sourceRange: [10.0.0.0/8]", "192.0.2.8:1000", "10.0.0.1", 403},
		{"v4-mapped v6 peer", "sourceRange: [10.0.0.0/8]", "[::ffff:10.9.9.9]:1000", "", 200},
		{"depth 1: nearest proxy's view", "sourceRange: [203.0.113.0/24], depth: 1", "10.0.0.2:1", "198.51.100.1, 203.0.113.5", 200},
		{"depth 2", "sourceRange: [203.0.113.0/24], depth: 2", "10.0.0.2:1", "198.51.100.1, 203.0.113.5", 403},
		{"depth without header", "sourceRange: [0.0.0.0/0], depth: 1", "10.0.0.2:1", "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := build(t, "  m: {ipAllowList: {"+tc.mw+"}}\n", Env{})
			req := get("/")
			req.RemoteAddr = tc.remote
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			if rec := do(m.Wrap(terminal(&seen{}, nil)), req); rec.Code != tc.want {
				t.Errorf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

func TestRateLimitBurst(t *testing.T) {
	clk := newClock()
	st := &State{}
	mws := "  m: {rateLimit: {average: 2, period: 1s, burst: 3}}\n"
	m := build(t, mws, Env{Now: clk.now, State: st})
	next := m.Wrap(terminal(&seen{}, nil))
	from := func(ip string) *http.Request { r := get("/"); r.RemoteAddr = ip + ":999"; return r }
	for i := range 3 {
		if rec := do(next, from("192.0.2.1")); rec.Code != 200 {
			t.Fatalf("request %d of the burst: %d, want 200", i+1, rec.Code)
		}
	}
	rec := do(next, from("192.0.2.1"))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("past the burst: %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := do(next, from("192.0.2.2")); rec.Code != 200 {
		t.Errorf("another client: %d, want 200 (a bucket each)", rec.Code)
	}
	clk.add(500 * time.Millisecond) // one token back (2 per second)
	if rec := do(next, from("192.0.2.1")); rec.Code != 200 {
		t.Errorf("after 0.5 s: %d, want 200", rec.Code)
	}
	if rec := do(next, from("192.0.2.1")); rec.Code != 429 {
		t.Errorf("token spent again: %d, want 429", rec.Code)
	}

	// A reload with the same config keeps the buckets; a changed one
	// starts afresh.
	st.Begin()
	again := build(t, mws, Env{Now: clk.now, State: st}).Wrap(terminal(&seen{}, nil))
	st.Retain()
	if rec := do(again, from("192.0.2.1")); rec.Code != 429 {
		t.Errorf("after a reload with the same config: %d, want 429 (bucket kept)", rec.Code)
	}
	st.Begin()
	changed := build(t, "  m: {rateLimit: {average: 2, period: 1s, burst: 4}}\n", Env{Now: clk.now, State: st}).Wrap(terminal(&seen{}, nil))
	st.Retain()
	if rec := do(changed, from("192.0.2.1")); rec.Code != 200 {
		t.Errorf("after a reload with a new config: %d, want 200 (fresh bucket)", rec.Code)
	}
	if st.Len() != 1 {
		t.Errorf("state keeps %d entries, want 1 (the running config's)", st.Len())
	}
}

func TestRateLimitByHeaderAndBound(t *testing.T) {
	clk := newClock()
	m := build(t, "  m: {rateLimit: {average: 1, burst: 1, sourceHeader: X-Api-Key, maxSources: 32}}\n", Env{Now: clk.now})
	rl := m.(*rateLimit)
	next := m.Wrap(terminal(&seen{}, nil))
	if rec := do(next, get("/", "X-Api-Key", "k1")); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	if rec := do(next, get("/", "X-Api-Key", "k1")); rec.Code != 429 {
		t.Errorf("same key: %d, want 429", rec.Code)
	}
	if rec := do(next, get("/", "X-Api-Key", "k2")); rec.Code != 200 {
		t.Errorf("other key: %d, want 200", rec.Code)
	}
	// A flood of new clients cannot grow the table past its bound.
	for i := range 10_000 {
		do(next, get("/", "X-Api-Key", "flood-"+string(rune('a'+i%26))+string(rune(i))))
	}
	if n := rl.tab.size(); n > 32 {
		t.Errorf("table holds %d clients, want at most 32", n)
	}
}

func TestInFlightReq(t *testing.T) {
	m := build(t, "  m: {inFlightReq: {amount: 1}}\n", Env{})
	entered, release := make(chan struct{}), make(chan struct{})
	next := m.Wrap(terminal(&seen{}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
	}))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); do(next, get("/slow")) }()
	<-entered
	if rec := do(next, get("/")); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second request while one is in flight: %d, want 429", rec.Code)
	}
	other := get("/")
	other.RemoteAddr = "198.51.100.9:1"
	if rec := do(next, other); rec.Code != 200 {
		t.Errorf("another client: %d, want 200", rec.Code)
	}
	close(release)
	wg.Wait()
	if rec := do(next, httptest.NewRequest("GET", "/", nil)); rec.Code != 200 {
		t.Errorf("after the first ended: %d, want 200", rec.Code)
	}
}
