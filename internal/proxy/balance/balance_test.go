package balance

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// server is a Backend with fixed properties.
type server struct {
	down     bool
	weight   int
	inFlight int64
}

func (s *server) Available() bool { return !s.down }
func (s *server) Weight() int     { return s.weight }
func (s *server) InFlight() int64 { return s.inFlight }
func pool(servers ...*server) []Backend {
	out := make([]Backend, len(servers))
	for i, s := range servers {
		out[i] = s
	}
	return out
}

// spread runs n picks and counts them per index; -1 picks go to the last slot.
func spread(t *testing.T, sel Selector, p []Backend, n int) []int {
	t.Helper()
	counts := make([]int, len(p)+1)
	for range n {
		i := sel.Select(p)
		if i < 0 {
			counts[len(p)]++
			continue
		}
		counts[i]++
	}
	return counts
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const picks = 1000

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		want    string // type name, or error substring
		wantErr bool
	}{
		{"", "*balance.RoundRobin", false},
		{"round-robin", "*balance.RoundRobin", false},
		{"Weighted", "*balance.Weighted", false},
		{"least-requests", "*balance.LeastRequests", false},
		{" power-of-two-choices ", "*balance.PowerOfTwo", false},
		{"random", "unknown strategy \"random\"", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := New(tt.name)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "balance: ") {
					t.Fatalf("New(%q) error = %v, want one containing %q", tt.name, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q) error = %v", tt.name, err)
			}
			if got := typeName(sel); got != tt.want {
				t.Errorf("New(%q) = %s, want %s", tt.name, got, tt.want)
			}
		})
	}
}

func typeName(s Selector) string {
	switch s.(type) {
	case *RoundRobin:
		return "*balance.RoundRobin"
	case *Weighted:
		return "*balance.Weighted"
	case *LeastRequests:
		return "*balance.LeastRequests"
	case *PowerOfTwo:
		return "*balance.PowerOfTwo"
	}
	return "?"
}

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name string
		pool []Backend
		want []int // counts per index, then the -1 count
	}{
		{"all up", pool(&server{}, &server{}, &server{}, &server{}), []int{250, 250, 250, 250, 0}},
		{"one down: its turn goes to the next", pool(&server{}, &server{down: true}, &server{}, &server{}), []int{250, 0, 500, 250, 0}},
		{"all down", pool(&server{down: true}, &server{down: true}), []int{0, 0, picks}},
		{"empty", nil, []int{picks}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spread(t, &RoundRobin{}, tt.pool, picks)
			if !equal(got, tt.want) {
				t.Errorf("counts = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("first pick is index 0", func(t *testing.T) {
		if got := (&RoundRobin{}).Select(pool(&server{}, &server{})); got != 0 {
			t.Errorf("first Select = %d, want 0", got)
		}
	})
}

func TestWeighted(t *testing.T) {
	tests := []struct {
		name string
		pool []Backend
		want []int
	}{
		{"5:3:2", pool(&server{weight: 5}, &server{weight: 3}, &server{weight: 2}), []int{500, 300, 200, 0}},
		{"zero weight counts as 1", pool(&server{weight: 0}, &server{weight: 1}), []int{500, 500, 0}},
		{"down server gets nothing", pool(&server{weight: 3}, &server{weight: 5, down: true}, &server{weight: 1}), []int{750, 0, 250, 0}},
		{"all down", pool(&server{weight: 2, down: true}), []int{0, picks}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spread(t, &Weighted{}, tt.pool, picks)
			if !equal(got, tt.want) {
				t.Errorf("counts = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("smooth", func(t *testing.T) {
		// Weights 5,1,1: nginx's documented sequence is a a b a c a a.
		sel, p := &Weighted{}, pool(&server{weight: 5}, &server{weight: 1}, &server{weight: 1})
		var got []int
		for range 7 {
			got = append(got, sel.Select(p))
		}
		if want := []int{0, 0, 1, 0, 2, 0, 0}; !equal(got, want) {
			t.Errorf("sequence = %v, want %v", got, want)
		}
	})
}

func TestLeastRequests(t *testing.T) {
	tests := []struct {
		name string
		pool []Backend
		want []int
	}{
		{"prefers idle, ties round-robin", pool(&server{inFlight: 5}, &server{}, &server{inFlight: 3}, &server{}), []int{0, 500, 0, 500, 0}},
		{"all idle spread evenly", pool(&server{}, &server{}, &server{}, &server{}), []int{250, 250, 250, 250, 0}},
		{"least loaded wins", pool(&server{inFlight: 9}, &server{inFlight: 2}, &server{inFlight: 4}), []int{0, picks, 0, 0}},
		{"skips a down idle server", pool(&server{down: true}, &server{inFlight: 7}), []int{0, picks, 0}},
		{"all down", pool(&server{down: true}), []int{0, picks}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spread(t, &LeastRequests{}, tt.pool, picks)
			if !equal(got, tt.want) {
				t.Errorf("counts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPowerOfTwo(t *testing.T) {
	tests := []struct {
		name      string
		pool      []Backend
		want      []int // expected counts; checked within tol
		tol       int
		exactZero []int // indexes that must never be picked
	}{
		{"idle servers share evenly", pool(&server{}, &server{}, &server{}, &server{}), []int{250, 250, 250, 250, 0}, 50, nil},
		{"busiest is never picked", pool(&server{}, &server{}, &server{}, &server{inFlight: 100}), []int{333, 333, 333, 0, 0}, 60, []int{3}},
		{"load ranks picks", pool(&server{inFlight: 1}, &server{inFlight: 2}, &server{inFlight: 3}), []int{667, 333, 0, 0}, 60, []int{2}},
		{"one available", pool(&server{down: true}, &server{inFlight: 50}), []int{0, picks, 0}, 0, []int{0}},
		{"all down", pool(&server{down: true}, &server{down: true}), []int{0, 0, picks}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			got := spread(t, &PowerOfTwo{Rand: r.IntN}, tt.pool, picks)
			for i := range tt.want {
				if d := got[i] - tt.want[i]; d > tt.tol || d < -tt.tol {
					t.Errorf("counts = %v, want %v ±%d", got, tt.want, tt.tol)
					break
				}
			}
			for _, i := range tt.exactZero {
				if got[i] != 0 {
					t.Errorf("index %d picked %d times, want 0", i, got[i])
				}
			}
		})
	}
}

func BenchmarkSelect(b *testing.B) {
	p := pool(&server{weight: 1}, &server{weight: 2}, &server{weight: 3}, &server{weight: 4})
	for _, name := range []string{StrategyRoundRobin, StrategyWeighted, StrategyLeastRequests, StrategyPowerOfTwo} {
		sel, err := New(name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sel.Select(p)
			}
		})
	}
}
