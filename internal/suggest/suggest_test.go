package suggest

import (
	"strconv"
	"testing"
)

func TestClosest(t *testing.T) {
	candidates := []string{"address", "cat", "cut", "entryPoints"}
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"adress", 2, "address"},
		{"ENTRYPOINTS", 0, "entryPoints"},
		{"cot", 1, "cat"}, // "cat" and "cut" are both 1 away; the first wins
		{"xyz", 2, ""},
		{"cat", -1, ""},
		{"", 3, "cat"},
	}
	for _, tt := range tests {
		t.Run(tt.in+"/"+strconv.Itoa(tt.max), func(t *testing.T) {
			if got := Closest(tt.in, candidates, tt.max); got != tt.want {
				t.Errorf("Closest(%q, %d): got %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"iijdpf", "iijdfp", 2},
		{"exec", "exec", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := Distance(tt.a, tt.b); got != tt.want {
				t.Errorf("Distance(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
