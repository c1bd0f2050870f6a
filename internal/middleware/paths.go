package middleware

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// The path middlewares (stripPrefix, stripPrefixRegex, addPrefix,
// replacePath, replacePathRegex) change r.URL for the rest of the request
// path: the request belongs to the router, which notes the path it logs
// before any middleware runs. They work on the decoded path; the encoded
// form is kept where the change leaves it valid, and rebuilt otherwise.

// setPath points r at a copy of its URL with path p (and raw, the encoded
// form when known, else "").
func setPath(r *http.Request, p, raw string) {
	u := *r.URL
	if p == "" || p[0] != '/' {
		p = "/" + p
		if raw != "" {
			raw = "/" + raw
		}
	}
	u.Path, u.RawPath = p, raw
	if raw != "" && u.EscapedPath() != raw {
		u.RawPath = "" // raw does not encode p: let EscapedPath rebuild it
	}
	r.URL = &u
}

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

// addPrefix puts a prefix before the path.
type addPrefix struct{ prefix, raw string }

func newAddPrefix(c *config.AddPrefix) *addPrefix {
	pre := strings.TrimSuffix(c.Prefix, "/")
	return &addPrefix{prefix: pre, raw: (&url.URL{Path: pre}).EscapedPath()}
}

func (m *addPrefix) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		raw := ""
		if r.URL.RawPath != "" {
			raw = m.raw + r.URL.RawPath
		}
		setPath(r, m.prefix+r.URL.Path, raw)
		next(w, r, st)
	}
}

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
