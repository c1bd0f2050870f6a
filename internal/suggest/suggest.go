// Package suggest finds the likely intended word behind a typo, for the
// "did you mean" part of an error message.
package suggest

import "strings"

// Closest returns the candidate nearest to s by edit distance, ignoring
// case, when that distance is at most maxDistance; else "". Of equally near
// candidates the first wins, so pass them sorted for a stable answer. A
// negative maxDistance matches nothing.
func Closest(s string, candidates []string, maxDistance int) string {
	best, bestDist := "", maxDistance+1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if d := Distance(ls, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// Distance returns the Levenshtein distance between a and b: the fewest
// single-byte insertions, deletions and substitutions that turn a into b.
// It counts bytes, which suits the ASCII keys and codes it is used on.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
