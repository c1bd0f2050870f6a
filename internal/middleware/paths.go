package middleware

import (
	"net/http"
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
