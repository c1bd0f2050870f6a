package middleware

import (
	"net/http"
	"testing"
	"time"
)

func TestCircuitBreaker(t *testing.T) {
	clk := newClock()
	st := &State{}
	mws := "  m: {circuitBreaker: {errorRatio: 0.5, minRequests: 4, window: 10s, fallbackDuration: 5s, recoveryDuration: 4s}}\n"
	m := build(t, mws, Env{Now: clk.now, State: st})
	status := 500
	var s seen
	next := m.Wrap(terminal(&s, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	for i := range 4 {
		if rec := do(next, get("/")); rec.Code != 500 {
			t.Fatalf("request %d: %d, want the service's 500", i+1, rec.Code)
		}
	}
	rec := do(next, get("/"))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "5" {
		t.Fatalf("open: %d Retry-After %q, want 503 and 5", rec.Code, rec.Header().Get("Retry-After"))
	}
	if n := s.get().n; n != 4 {
		t.Errorf("the service got %d requests, want 4 (none while open)", n)
	}

	// A reload with the same config keeps it open.
	st.Begin()
	again := build(t, mws, Env{Now: clk.now, State: st}).Wrap(terminal(&s, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	st.Retain()
	if rec := do(again, get("/")); rec.Code != 503 {
		t.Errorf("after a reload: %d, want 503 (still open)", rec.Code)
	}

	// Recovery lets a growing share through.
	status = 200
	clk.add(5 * time.Second)
	passed := 0
	for range 40 {
		clk.add(50 * time.Millisecond) // 2 s of the 4 s ramp
		if do(again, get("/")).Code == 200 {
			passed++
		}
	}
	if passed == 0 || passed == 40 {
		t.Errorf("%d of 40 requests passed in the first half of the recovery, want some but not all", passed)
	}
	clk.add(3 * time.Second)
	for i := range 10 {
		if rec := do(again, get("/")); rec.Code != 200 {
			t.Fatalf("after recovery, request %d: %d, want 200", i, rec.Code)
		}
	}
}

func TestCircuitBreakerLatency(t *testing.T) {
	clk := newClock()
	m := build(t, "  m: {circuitBreaker: {latency: 1s, minRequests: 4}}\n", Env{Now: clk.now})
	slow := true
	next := m.Wrap(terminal(&seen{}, func(w http.ResponseWriter, _ *http.Request) {
		if slow {
			clk.add(2 * time.Second) // the answer takes 2 s by the breaker's clock
		}
	}))
	for range 3 {
		do(next, get("/"))
	}
	slow = false
	do(next, get("/")) // 3 of 4 slow: the median is slow
	if rec := do(next, get("/")); rec.Code != 503 {
		t.Errorf("median over the latency: %d, want 503", rec.Code)
	}
}
