package http1

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/zoku/zoku/internal/httphead"
)

// Most requests an edge router sees have a head like
//
//	GET /static/app.js?v=3 HTTP/1.1
//	Host: www.example.com
//	User-Agent: ...
//	Accept: */*
//
// and no body. readSimpleRequest parses such a head without net/http, in
// three allocations (the URL, the value slices, and one string for the
// whole head whose parts the keys and values are; the request and its
// header map are the connection's, and the handler gets a copy of the
// request), where
// http.ReadRequest makes one more per header (BenchmarkReadRequest). Anything else is left to http.ReadRequest, which
// reads it, or refuses it, as net/http's server does: another version, a
// method other than upper-case letters or CONNECT, a target that is not a
// path of plain characters (a '%', '#' or byte outside ASCII in the path,
// an absolute URL, '*'), a body of any kind (Content-Length or
// Transfer-Encoding present), Pragma (net/http may add Cache-Control), a
// folded line, a byte outside printable ASCII. FuzzSimpleRequest compares
// the two on any head.

// readSimpleRequest sets req to the request whose whole head is head (its
// lines ending in CRLF, as the loop's peekHead found it), its fields in h
// (cleared first; a new map when nil), and reports false, with req
// untouched, when the head is not a simple one.
func readSimpleRequest(head []byte, req *http.Request, h http.Header) bool {
	nl := bytes.Index(head, crlf)
	if nl < 0 || !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		return false
	}
	method, target, ok := requestLine(head[:nl])
	if !ok {
		return false
	}
	fields, hasClose := 0, false
	for rest := head[nl+2:]; len(rest) > 2; { // the last two bytes: the empty line
		i := bytes.Index(rest, crlf)
		if i < 0 {
			return false
		}
		ln := rest[:i]
		rest = rest[i+2:]
		colon := bytes.IndexByte(ln, ':')
		if colon <= 0 || !httphead.Token(ln[:colon]) || !httphead.Printable(ln[colon+1:]) {
			return false // also a folded line: it starts with a space
		}
		fields++
		k, v := ln[:colon], httphead.TrimOWS(ln[colon+1:])
		switch {
		case httphead.EqualFold(k, "Content-Length"), httphead.EqualFold(k, "Transfer-Encoding"), httphead.EqualFold(k, "Pragma"):
			return false
		case httphead.EqualFold(k, "Connection"):
			hasClose = hasClose || httphead.HasToken(v, "close")
		}
	}

	s := string(head) // keys and values below are parts of it
	clear(h)
	h = httphead.Header(h, s[nl+2:len(s)-2], fields)
	if len(h["Host"]) > 1 {
		clear(h)
		return false // net/http's error
	}
	uri := s[len(method)+1 : len(method)+1+len(target)]
	u := &url.URL{Path: uri}
	if q := strings.IndexByte(uri, '?'); q >= 0 {
		u.Path, u.RawQuery = uri[:q], uri[q+1:]
		u.ForceQuery = u.RawQuery == ""
	}
	var host string
	if vv := h["Host"]; len(vv) > 0 {
		host = vv[0]
		delete(h, "Host") // as http.ReadRequest: the field is Request.Host
	}
	*req = http.Request{
		Method:     s[:len(method)],
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Close:      hasClose,
		Host:       host,
		RequestURI: uri,
	}
	return true
}

// requestLine splits "METHOD TARGET HTTP/1.1" when the method is upper-case
// letters (not CONNECT) and the target a path that net/url takes as it is:
// it then has no RawPath, and its query, if any, is kept raw.
func requestLine(line []byte) (method, target []byte, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 16 {
		return nil, nil, false
	}
	method = line[:sp]
	for _, c := range method {
		if c < 'A' || c > 'Z' {
			return nil, nil, false
		}
	}
	if string(method) == http.MethodConnect {
		return nil, nil, false
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 || string(rest[sp+1:]) != "HTTP/1.1" {
		return nil, nil, false
	}
	target = rest[:sp]
	if target[0] != '/' {
		return nil, nil, false
	}
	path, query, _ := bytes.Cut(target, []byte("?"))
	for _, c := range path {
		if !pathByte[c] {
			return nil, nil, false
		}
	}
	for _, c := range query {
		if c <= ' ' || c > '~' || c == '#' {
			return nil, nil, false
		}
	}
	return method, target, true
}

var crlf = []byte("\r\n")

// pathByte marks the bytes net/url keeps in a path as they are (neither
// unescaped nor escaped): letters, digits, "-._~" and "$&+,/:;=@".
var pathByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~$&+,/:;=@", byte(c)) >= 0
	}
	return t
}()
