package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// simpleSeeds are answers readSimpleResponse takes (the first
// simpleTaken), and near misses it must leave to net/http (the last, an
// empty connection, is an error).
var simpleSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nDate: Thu, 03 Dec 2026 08:00:00 GMT\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\nx-custom-thing: a\r\nX-CUSTOM-THING: b\r\n\r\nabcEXTRA",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK \r\nContent-Length:2 \r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\nhi",
	"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 4\r\n\r\nboom",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567",
	"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",
	"HTTP/1.1 200 OK\r\nConnection: foo,, \t close ,bar\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: closed, xclose\r\nConnection: Close\r\nContent-Length: 2\r\n\r\nok",
	// Left to net/http:
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 2 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nX-Bad Name: a\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nX-Bare: a\rb\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nX-Lf: a\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nX-Utf8: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
	"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
	"HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: 2\r\n\r\nhi",
	"",
}

const simpleTaken = 13

// parsed is all of a parse a caller can see.
type parsed struct {
	Err                       string
	Status                    string
	StatusCode                int
	Proto                     string
	ProtoMajor, ProtoMinor    int
	Header, Trailer           http.Header
	ContentLength             int64
	Close                     bool
	TransferEncoding          []string
	Body, BodyErr, Rest       string
	SameRequest, BodyIsNoBody bool
	PlainAndCompressedAsSent  bool
}

func observe(resp *http.Response, err error, req *http.Request, br *bufio.Reader) parsed {
	if err != nil {
		return parsed{Err: err.Error()}
	}
	o := parsed{Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor,
		ProtoMinor: resp.ProtoMinor, Header: resp.Header, Trailer: resp.Trailer, ContentLength: resp.ContentLength,
		Close: resp.Close, TransferEncoding: resp.TransferEncoding, SameRequest: resp.Request == req,
		BodyIsNoBody: resp.Body == http.NoBody, PlainAndCompressedAsSent: !resp.Uncompressed && resp.TLS == nil}
	b, berr := io.ReadAll(resp.Body)
	o.Body = string(b)
	if berr != nil {
		o.BodyErr = berr.Error()
	}
	rest, _ := io.ReadAll(br)
	o.Rest = string(rest)
	return o
}

// FuzzSimpleResponse feeds any bytes, as an answer to GET and to HEAD, to
// readSimpleResponse and to http.ReadResponse: whatever the first takes
// must read exactly as net/http reads it (status, every header, framing,
// body, body error, and the bytes left for the next answer), and what it
// does not take must be left unread.
func FuzzSimpleResponse(f *testing.F) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	for _, s := range simpleSeeds {
		f.Add(s, false)
	}
	f.Add(simpleSeeds[0], true)
	// One answer for every head, as a connection reuses it: a field left
	// over from an earlier answer shows as a difference.
	var a answer
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		req, _ := http.NewRequest(method, "http://example.test/", nil)
		std := bufio.NewReaderSize(strings.NewReader(raw), 4096)
		sresp, serr := http.ReadResponse(std, req)
		want := observe(sresp, serr, req, std)

		br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
		resp, err := readSimpleResponse(br, req, &a)
		if resp == nil && err == nil {
			// Not taken: net/http must read the same as from the start.
			resp, err := http.ReadResponse(br, req)
			if got := observe(resp, err, req, br); !reflect.DeepEqual(got, want) {
				t.Fatalf("after a refusal, net/http reads\n%+v\nnot\n%+v", got, want)
			}
			return
		}
		if got := observe(resp, err, req, br); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nsimple: %+v\nnet/http: %+v", raw, got, want)
		}
	})
}

// TestSimpleResponseTakes checks that the usual answers do take the
// simple path (the fuzz test alone would pass if it took none).
func TestSimpleResponseTakes(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	for _, raw := range simpleSeeds[:simpleTaken] {
		br := bufio.NewReader(strings.NewReader(raw))
		var a answer
		resp, err := readSimpleResponse(br, req, &a)
		if resp == nil || err != nil {
			t.Errorf("%q: not taken (%v)", raw, err)
		}
	}
	for _, raw := range simpleSeeds[simpleTaken : len(simpleSeeds)-1] {
		br := bufio.NewReader(strings.NewReader(raw))
		var a answer
		if resp, err := readSimpleResponse(br, req, &a); resp != nil || err != nil {
			t.Errorf("%q: taken, want it left to net/http", raw)
		}
		if br.Buffered() != len(raw) {
			t.Errorf("%q: %d bytes buffered, want all %d unread", raw, br.Buffered(), len(raw))
		}
	}
	br := bufio.NewReader(strings.NewReader(""))
	var a answer
	if _, err := readSimpleResponse(br, req, &a); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("empty connection: err = %v, want io.ErrUnexpectedEOF as net/http says", err)
	}
}

// TestSimpleResponseAllocations checks the point of the simple parser.
func TestSimpleResponseAllocations(t *testing.T) {
	raw := []byte(simpleSeeds[0])
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	rd := bytes.NewReader(raw)
	br := bufio.NewReader(rd)
	var a answer
	n := testing.AllocsPerRun(100, func() {
		rd.Reset(raw)
		br.Reset(rd)
		resp, err := readSimpleResponse(br, req, &a)
		if resp == nil || err != nil {
			t.Fatal("not taken")
		}
	})
	if n > 2 {
		t.Errorf("%v allocations per answer, want at most 2 (the value slices, the head; the response and its header map are reused)", n)
	}
}

// BenchmarkReadResponse reads a usual answer head with the simple parser
// and with http.ReadResponse.
func BenchmarkReadResponse(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Thu, 03 Dec 2026 08:00:00 GMT\r\n\r\nhello")
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	rd := bytes.NewReader(raw)
	br := bufio.NewReader(rd)
	for _, simple := range []bool{true, false} {
		name := "simple"
		if !simple {
			name = "net-http"
		}
		b.Run(name, func(b *testing.B) {
			var a answer
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				var resp *http.Response
				var err error
				if simple {
					resp, err = readSimpleResponse(br, req, &a)
				} else {
					resp, err = http.ReadResponse(br, req)
				}
				if resp == nil || err != nil {
					b.Fatal("not read")
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSimpleResponseReuse reads answers one after the other into one
// answer, as a connection does: each answer has only its own fields, and
// the value slices handed over from an earlier one (as relay hands them
// to the client's answer) keep their values.
func TestSimpleResponseReuse(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	many := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	for i := range maxReusedFields + 8 {
		many += "X-Field-" + strconv.Itoa(i) + ": v\r\n"
	}
	raws := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-A: first\r\nSet-Cookie: a=1\r\n\r\n1",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-B: second\r\n\r\n22",
		many + "\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: last\r\n\r\n",
	}
	var a answer
	var kept []http.Header
	for _, raw := range raws {
		br := bufio.NewReader(strings.NewReader(raw))
		resp, err := readSimpleResponse(br, req, &a)
		if resp == nil || err != nil {
			t.Fatalf("%q: not taken (%v)", raw, err)
		}
		std, _ := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), req)
		if !reflect.DeepEqual(resp.Header, std.Header) || resp.StatusCode != std.StatusCode {
			t.Fatalf("%q: read %d %v, want %d %v", raw, resp.StatusCode, resp.Header, std.StatusCode, std.Header)
		}
		got, _ := io.ReadAll(resp.Body)
		want, _ := io.ReadAll(std.Body)
		if string(got) != string(want) {
			t.Fatalf("%q: body %q, want %q", raw, got, want)
		}
		handed := http.Header{}
		for k, vv := range resp.Header {
			handed[k] = vv
		}
		kept = append(kept, handed)
	}
	if v := kept[0]["X-A"]; len(v) != 1 || v[0] != "first" {
		t.Errorf("the first answer's X-A, handed over, is now %q", v)
	}
	if v := kept[1]["X-B"]; len(v) != 1 || v[0] != "second" {
		t.Errorf("the second answer's X-B, handed over, is now %q", v)
	}
}
