package dns01

import (
	"strings"

	"github.com/zoku/zoku/internal/suggest"
)

// closestCode returns the candidate closest to s when it is close enough to
// be a likely typo, else "". A candidate that starts with s (at least three
// letters typed) also counts, so "digital" suggests "digitalocean". Ties go
// to the alphabetically first candidate, since candidates arrive sorted.
func closestCode(s string, candidates []string) string {
	if best := suggest.Closest(s, candidates, max(1, len(s)/3)); best != "" {
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
