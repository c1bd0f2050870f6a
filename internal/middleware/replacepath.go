package middleware

import (
	"net/http"
	"regexp"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// replacePath replaces the whole path and keeps the old one in
// X-Replaced-Path.
type replacePath struct{ path string }

func newReplacePath(c *config.ReplacePath) *replacePath { return &replacePath{path: c.Path} }

func (m *replacePath) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		r.Header.Set("X-Replaced-Path", r.URL.EscapedPath())
		setPath(r, m.path, "")
		next(w, r, st)
	}
}

// replacePathRegex replaces the path when the regular expression matches
// it ($1 and ${name} in the replacement stand for groups).
type replacePathRegex struct {
	re          *regexp.Regexp
	replacement string
}

func newReplacePathRegex(c *config.ReplacePathRegex) (*replacePathRegex, error) {
	re, err := regexp.Compile(c.Regex)
	if err != nil {
		return nil, err
	}
	return &replacePathRegex{re: re, replacement: c.Replacement}, nil
}

func (m *replacePathRegex) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		if m.re.MatchString(r.URL.Path) {
			r.Header.Set("X-Replaced-Path", r.URL.EscapedPath())
			setPath(r, m.re.ReplaceAllString(r.URL.Path, m.replacement), "")
		}
		next(w, r, st)
	}
}
