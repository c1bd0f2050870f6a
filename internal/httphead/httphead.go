// Package httphead holds the byte-level checks that zoku's own HTTP/1.1
// head parsers share: the request parser of the server loop
// (internal/http1) and the response parser of the proxy's fast path
// (internal/proxy). Each parser takes only heads these checks pass, and
// leaves every other head to net/http, so that what the two read is what
// net/http reads.
package httphead

import (
	"bytes"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Printable reports whether b holds only visible ASCII, spaces and tabs.
func Printable(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}

// Token reports whether b is an RFC 9110 token.
func Token(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return len(b) > 0
}

// TrimOWS cuts the spaces and tabs around a header value.
func TrimOWS[T string | []byte](s T) T {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// EqualFold reports whether the ASCII bytes b equal s, ignoring case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y || (x < 'a' || x > 'z') && b[i] != s[i] {
			return false
		}
	}
	return true
}

// CanonicalKey returns k in net/http's canonical form: k itself when it
// already is (no allocation), a shared string for a common header in
// another spelling, or a new string.
func CanonicalKey(k string) string {
	if c, ok := commonKeys[k]; ok {
		return c
	}
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return http.CanonicalHeaderKey(k)
		}
		upper = c == '-'
	}
	return k
}

// commonKeys maps the lower-case spellings of common request and response
// headers (as HTTP/2-minded clients and servers write them) to one shared
// canonical string.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		// Requests.
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cookie", "Host", "If-Modified-Since",
		"If-None-Match", "Origin", "Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id",
		// Responses.
		"Accept-Ranges", "Access-Control-Allow-Origin", "Age", "Content-Encoding",
		"Content-Language", "Content-Length", "Content-Type", "Date", "Etag", "Expires", "Keep-Alive",
		"Last-Modified", "Location", "Server", "Set-Cookie", "Strict-Transport-Security", "Vary",
		"X-Content-Type-Options", "X-Frame-Options",
		// Both.
		"Cache-Control", "Connection",
	} {
		m[k] = k
		lower := []byte(k)
		for i, c := range lower {
			if 'A' <= c && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		m[string(lower)] = k
	}
	return m
}()

// Header adds to h (a new map when nil) the fields of lines: n lines of
// "Name: value", each ending in CRLF, that the caller has checked (a
// token, a colon, a printable value), and returns it. Keys are canonical;
// values are trimmed and, as the keys, parts of lines; one new slice holds
// the first value of every key.
func Header(h http.Header, lines string, n int) http.Header {
	if h == nil {
		h = make(http.Header, n)
	}
	strs := make([]string, n)
	for len(lines) > 0 {
		i := strings.Index(lines, "\r\n")
		ln := lines[:i]
		lines = lines[i+2:]
		colon := strings.IndexByte(ln, ':')
		k := CanonicalKey(ln[:colon])
		v := TrimOWS(ln[colon+1:])
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
			continue
		}
		strs[0] = v
		h[k], strs = strs[:1:1], strs[1:]
	}
	return h
}

// Recycle returns h emptied for the next request or answer on the same
// connection, or nil, to make a new map, when h holds more than max keys:
// a map that grew that large once is left to the collector, not kept.
func Recycle(h http.Header, max int) http.Header {
	if len(h) > max {
		return nil
	}
	clear(h)
	return h
}

// HasToken reports whether the comma-separated list v holds token,
// ignoring case (httpguts.HeaderValuesContainsToken, without allocating).
func HasToken(v []byte, token string) bool {
	for tok := range bytes.SplitSeq(v, []byte(",")) {
		if EqualFold(TrimOWS(tok), token) {
			return true
		}
	}
	return false
}
