package middleware

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

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
