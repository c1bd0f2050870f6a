package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy/health"
)

// TestServerKilledAndRestarted follows one server through an outage:
// passive failures take it out, the active check confirms it, and it comes
// back once it serves again and a check passes.
func TestServerKilledAndRestarted(t *testing.T) {
	a, b := startBackend(t, "a", nil), startBackend(t, "b", nil)
	clk := newClock()
	svc := newService(t, &config.Service{
		Servers:       servers(a.url(), b.url()),
		HealthCheck:   &config.HealthCheck{Path: "/healthz", Interval: config.Duration(time.Hour)},
		PassiveHealth: &config.PassiveHealth{MaxFailures: 2, Window: config.Duration(time.Minute), Cooldown: config.Duration(time.Minute)},
	}, nil, Options{Now: clk.Now})
	f := startFront(t, svc)
	ctx := context.Background()
	status := func() (aUp, bUp bool, aErr string) {
		st := svc.Servers()
		return st[0].Up, st[1].Up, st[0].LastError
	}

	svc.CheckNow(ctx)
	if aUp, bUp, _ := status(); !aUp || !bUp {
		t.Fatalf("before the outage: up = %v, %v, want both up", aUp, bUp)
	}

	a.kill()
	// Every request still succeeds: tries on a are refused and retried on
	// b. Two refusals take a out; the loop is bounded.
	for i := 0; i < 10; i++ {
		if code, body := f.do(t, http.MethodGet, "/", ""); code != 200 || body != "b" {
			t.Fatalf("request %d during the outage: got %d %q, want 200 %q", i, code, body, "b")
		}
		f.nextStats(t)
		if aUp, _, _ := status(); !aUp {
			break
		}
	}
	aUp, bUp, aErr := status()
	if aUp || !bUp || !strings.Contains(aErr, "connection refused") {
		t.Fatalf("after passive failures: a up = %v (error %q), b up = %v; want a down with a refused error, b up", aUp, aErr, bUp)
	}
	hitsB := b.hits.Load()
	for range 4 {
		f.do(t, http.MethodGet, "/", "")
		f.nextStats(t)
	}
	if got := b.hits.Load() - hitsB; got != 4 {
		t.Errorf("with a out, b got %d of 4 requests, want 4", got)
	}

	// The active check confirms: a stays down after the cooldown.
	svc.CheckNow(ctx)
	clk.Advance(2 * time.Minute)
	if aUp, _, aErr := status(); aUp || !strings.Contains(aErr, "health: probe failed") {
		t.Fatalf("after CheckNow and the cooldown: a up = %v (error %q), want down by the probe", aUp, aErr)
	}

	a.restart(t)
	svc.CheckNow(ctx)
	if aUp, _, aErr := status(); !aUp || aErr != "" {
		t.Fatalf("after restart and CheckNow: a up = %v (error %q), want up with no error", aUp, aErr)
	}
	if st := svc.Servers()[0]; !st.LastCheck.Equal(clk.Now()) {
		t.Errorf("LastCheck = %v, want the injected now %v", st.LastCheck, clk.Now())
	}
	got := map[string]int{}
	for range 4 {
		_, body := f.do(t, http.MethodGet, "/", "")
		f.nextStats(t)
		got[body]++
	}
	if got["a"] != 2 || got["b"] != 2 {
		t.Errorf("after recovery: spread = %v, want a:2 b:2", got)
	}
}

// TestBackend5xxCountsAsFailure checks which answers feed passive health.
func TestBackend5xxCountsAsFailure(t *testing.T) {
	tests := []struct {
		status int
		wantUp bool
	}{
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
		{http.StatusGatewayTimeout, false},
		{http.StatusNotFound, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			a := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tt.status) })
			svc := newService(t, &config.Service{
				Servers:       servers(a.url()),
				PassiveHealth: &config.PassiveHealth{MaxFailures: 1},
			}, nil, Options{Now: newClock().Now})
			f := startFront(t, svc)
			if code, _ := f.do(t, http.MethodGet, "/", ""); code != tt.status {
				t.Errorf("status = %d, want the backend's %d passed through", code, tt.status)
			}
			f.nextStats(t)
			if got := svc.Servers()[0].Up; got != tt.wantUp {
				t.Errorf("Up after one %d = %v, want %v", tt.status, got, tt.wantUp)
			}
		})
	}
}

// TestReloadKeepsHealth builds a new Service for the same server, as a
// config reload does, and checks that health and in-flight state carry
// over while the old Service drains.
func TestReloadKeepsHealth(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	a := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "a")
	})
	clk := newClock()
	reg := health.NewRegistry()
	cfg := &config.Service{Servers: servers(a.url()), PassiveHealth: &config.PassiveHealth{MaxFailures: 1, Cooldown: config.Duration(time.Minute)}}
	old, err := NewService("app", cfg, reg, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := startFront(t, old)

	// A request in flight on the old service.
	slow := make(chan int, 1)
	go func() {
		resp, err := f.Client().Get(f.URL + "/slow")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(testWait):
		t.Fatal("slow request did not reach the backend")
	}
	old.ups[0].state.RecordFailure(clk.Now(), old.passive, errTryTimeout)

	next := newService(t, cfg, reg, Options{Now: clk.Now})
	old.Close()
	st := next.Servers()[0]
	if st.Up || st.InFlight != 1 || st.LastError != errTryTimeout.Error() {
		t.Errorf("new service sees %+v, want down, 1 in flight, the old last error", st)
	}
	close(release)
	if code := <-slow; code != 200 {
		t.Errorf("in-flight request on the closed service: status %d, want 200", code)
	}
	f.nextStats(t)
	if got := next.Servers()[0].InFlight; got != 0 {
		t.Errorf("InFlight after the request ended = %d, want 0", got)
	}
	clk.Advance(2 * time.Minute)
	if !next.Servers()[0].Up {
		t.Errorf("after the cooldown: server down, want up")
	}

	next.Close()
	if got := reg.Len(); got != 0 {
		t.Errorf("registry holds %d servers after both services closed, want 0", got)
	}
}
