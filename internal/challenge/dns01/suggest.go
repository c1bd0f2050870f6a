package dns01

import "strings"

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo, else "". A candidate that starts with s (at least three
// letters typed) also counts, so "digital" suggests "digitalocean". Ties go
// to the alphabetically first candidate, since candidates arrive sorted.
func suggest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(s, c)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" && bestDist <= max(1, len(s)/3) {
		return best
	}
	if len(s) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(c, s) {
				return c
			}
		}
	}
	return ""
}

// editDistance returns the Levenshtein distance between a and b, counted in
// bytes (provider codes are ASCII).
func editDistance(a, b string) int {
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
