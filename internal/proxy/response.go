package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"

	"github.com/zoku/zoku/internal/httphead"
)

// Most servers answer a proxied request with a head like
//
//	HTTP/1.1 200 OK
//	Content-Type: text/html
//	Content-Length: 1234
//	Date: ...
//
// all of it in the first read. readSimpleResponse parses such a head
// without net/http, in two allocations (one string for the whole head,
// whose parts the keys and values are, and the value slices) where
// http.ReadResponse makes nine: the response and its header map are the
// connection's, reused answer after answer. It takes about 80 % of
// http.ReadResponse's time (BenchmarkReadResponse). Anything else (another
// version, a 1xx, 204 or 304 answer, an answer to HEAD, a body not framed
// by exactly one Content-Length, Transfer-Encoding, a folded line, a
// byte outside printable ASCII, a head not yet all read) is left unread
// for http.ReadResponse, so what this parser takes it reads exactly as
// net/http does (FuzzSimpleResponse compares the two).

// answer is what the answers read on one connection reuse, one after the
// other: the response, its header map, and its body reader. Only the map
// is kept from one answer to the next; the value slices it held were
// handed to the client's answer and are new each time.
type answer struct {
	resp   http.Response
	header http.Header
	body   fixedBody
}

// maxReusedFields bounds the header map an answer leaves for the next: a
// map that grew larger is dropped, not cleared and kept.
const maxReusedFields = 32

// readSimpleResponse returns the answer in br when it is simple (above),
// built in a (the answer before it is gone); nil and no error when it is
// not (br is then untouched). An error is the one http.ReadResponse would return for
// a connection that failed before a byte came.
func readSimpleResponse(br *bufio.Reader, req *http.Request, a *answer) (*http.Response, error) {
	if _, err := br.Peek(1); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // as http.ReadResponse says it
		}
		return nil, err
	}
	if req.Method == http.MethodHead {
		return nil, nil
	}
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n")) // the last header line's CRLF, then the empty line
	if end < 0 {
		return nil, nil
	}
	// The status line: "HTTP/1.1 ddd" and an optional reason. Lines end
	// in CRLF; a bare CR or LF inside one fails printable.
	nl := bytes.Index(buf, crlf)
	line := buf[:nl]
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || !httphead.Printable(line[12:]) || (len(line) > 12 && line[12] != ' ') {
		return nil, nil
	}
	code := 0
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return nil, nil
		}
		code = code*10 + int(d-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, nil
	}

	// The header lines: check them all before anything is allocated.
	fields, clen, hasClose := 0, int64(-1), false
	for rest := buf[nl+2 : end+2]; len(rest) > 0; {
		i := bytes.Index(rest, crlf)
		ln := rest[:i]
		rest = rest[i+2:]
		colon := bytes.IndexByte(ln, ':')
		if colon <= 0 || !httphead.Token(ln[:colon]) || !httphead.Printable(ln[colon+1:]) {
			return nil, nil // also a folded line: it starts with a space
		}
		fields++
		k, v := ln[:colon], httphead.TrimOWS(ln[colon+1:])
		switch {
		case httphead.EqualFold(k, "Content-Length"):
			if clen >= 0 {
				return nil, nil // net/http decides about duplicates
			}
			if clen = parseLength(v); clen < 0 {
				return nil, nil
			}
		case httphead.EqualFold(k, "Transfer-Encoding"), httphead.EqualFold(k, "Trailer"), httphead.EqualFold(k, "Pragma"):
			return nil, nil // framing, trailers, and Pragma (net/http may add Cache-Control)
		case httphead.EqualFold(k, "Connection"):
			hasClose = hasClose || httphead.HasToken(v, "close")
		}
	}
	if clen < 0 {
		return nil, nil // framed by the connection's end
	}

	head := string(buf[:end+2]) // keys and values below are parts of it
	h := httphead.Header(httphead.Recycle(a.header, maxReusedFields), head[nl+2:], fields)
	a.header = h
	if hasClose {
		delete(h, "Connection") // net/http drops it when it says close
	}
	a.resp = http.Response{
		Status:        head[9:nl],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: clen,
		Close:         hasClose,
		Request:       req,
		Body:          http.NoBody,
	}
	resp := &a.resp
	if clen > 0 {
		a.body = fixedBody{r: br, n: clen}
		resp.Body = &a.body
	}
	_, _ = br.Discard(end + 4)
	return resp, nil
}

// fixedBody is a body of a known length, read from the connection (each
// upConn keeps one for its answers: no allocation per answer).
type fixedBody struct {
	r io.Reader
	n int64 // bytes left
}

// Read reads the body; a connection that ends early is
// io.ErrUnexpectedEOF, as in net/http.
func (b *fixedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if err == io.EOF {
		if b.n > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	if b.n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// Close does nothing: the connection is the pool's.
func (b *fixedBody) Close() error { return nil }

// parseLength parses a Content-Length value: digits only, at most 18 of
// them; -1 otherwise.
func parseLength(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -1
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

var crlf = []byte("\r\n")
