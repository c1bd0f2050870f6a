package health

import (
	"errors"
	"testing"
	"time"
)

func TestRegistryKeepsStateWhileReferenced(t *testing.T) {
	var r Registry // zero value is ready
	const u = "http://127.0.0.1:8080"
	now := time.Unix(1000, 0)

	old := r.Acquire(u)
	old.StartRequest()
	old.SetActive(false, now, errors.New("probe failed"))

	// Reload: the new config takes its reference before the old one goes.
	next := r.Acquire(u)
	r.Release(old)
	if next != old {
		t.Fatalf("Acquire after reload returned a new Server, want the shared one")
	}
	if got := next.InFlight(); got != 1 {
		t.Errorf("InFlight after reload = %d, want 1", got)
	}
	if next.Available(now) {
		t.Errorf("Available after reload = true, want false (health state kept)")
	}
	if got := r.Len(); got != 1 {
		t.Errorf("Len = %d, want 1", got)
	}

	r.Release(next)
	if got := r.Len(); got != 0 {
		t.Errorf("Len after last release = %d, want 0", got)
	}
	r.Release(next) // over-release is a no-op
	fresh := r.Acquire(u)
	if fresh == old || !fresh.Available(now) || fresh.InFlight() != 0 {
		t.Errorf("Acquire after last release = %+v, want a fresh, up, idle Server", fresh.Status(now))
	}
}

func TestRegistryDistinctURLs(t *testing.T) {
	r := NewRegistry()
	a, b := r.Acquire("http://a"), r.Acquire("http://b")
	if a == b {
		t.Fatal("different URLs share a Server")
	}
	if got, want := r.Len(), 2; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
	r.Release(nil)
	r.Release(&Server{url: "http://a"}) // not the registered one
	if got, want := r.Len(), 2; got != want {
		t.Errorf("Len after foreign releases = %d, want %d", got, want)
	}
}
