package middleware

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// stripPrefix removes the first listed prefix the path starts with, at a
// segment boundary ("/api" strips "/api" and "/api/x", not "/apis"), and
// tells the service in X-Forwarded-Prefix.
type stripPrefix struct{ prefixes []string }

func newStripPrefix(c *config.StripPrefix) *stripPrefix {
	m := &stripPrefix{}
	for _, p := range c.Prefixes {
		m.prefixes = append(m.prefixes, strings.TrimSuffix(p, "/"))
	}
	return m
}

func (m *stripPrefix) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		p := r.URL.Path
		for _, pre := range m.prefixes {
			if !strings.HasPrefix(p, pre) || (len(p) > len(pre) && p[len(pre)] != '/') {
				continue
			}
			raw := ""
			if r.URL.RawPath != "" && strings.HasPrefix(r.URL.RawPath, pre) {
				raw = r.URL.RawPath[len(pre):]
			}
			setPath(r, p[len(pre):], raw)
			r.Header.Set("X-Forwarded-Prefix", pre)
			break
		}
		next(w, r, st)
	}
}

// stripPrefixRegex removes the start of the path that the regular
// expression matches.
type stripPrefixRegex struct{ re *regexp.Regexp }

func newStripPrefixRegex(c *config.StripPrefixRegex) (*stripPrefixRegex, error) {
	re, err := regexp.Compile(c.Regex)
	if err != nil {
		return nil, err
	}
	return &stripPrefixRegex{re: re}, nil
}

func (m *stripPrefixRegex) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		p := r.URL.Path
		if loc := m.re.FindStringIndex(p); loc != nil && loc[0] == 0 && loc[1] > 0 {
			setPath(r, p[loc[1]:], "")
			r.Header.Set("X-Forwarded-Prefix", p[:loc[1]])
		}
		next(w, r, st)
	}
}
