package http1

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

// simpleRequestSeeds are heads readSimpleRequest takes (the first
// simpleRequestsTaken), and near misses it must leave to net/http.
var simpleRequestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n",
	"GET /static/app.js?v=123 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: https://www.example.com/\r\nCookie: session=abc; theme=dark\r\nSec-Fetch-Dest: script\r\nConnection: keep-alive\r\n\r\n",
	"HEAD /a/b/c.txt HTTP/1.1\r\nhost: a.test\r\nuser-agent: curl/8.0\r\naccept: */*\r\n\r\n",
	"DELETE /items/7 HTTP/1.1\r\nHost: a.test\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
	"GET /x? HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /x?a=1&b=%41?c HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET //double/slash;p=1,2:@$&+= HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:a.test\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Dup: 1\r\nx-dup: 2\r\nX-WEIRD_Key: 3\r\n\r\n",
	"OPTIONS /cors HTTP/1.1\r\nHost: a.test\r\nOrigin: https://b.test\r\nConnection: foo,, \t close ,bar\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nTrailer: X-T\r\nExpect: 100-continue\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\r\nX: y\r\n\r\n",
	// Left to net/http:
	"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a.test\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"get / HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
	"CONNECT /rpc HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET http://a.test/x HTTP/1.1\r\nHost: b.test\r\n\r\n",
	"GET /a%2Fb HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /a#frag HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /a!b HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"GET /?q=\xff HTTP/1.1\r\nHost: a.test\r\n\r\n",
	"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello",
	"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Folded: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\n Host: a.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : a.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\n: empty\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a.test\r\nX-Nul: a\x00b\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"\r\n",
}

const simpleRequestsTaken = 11

// requestSeen is all of a parsed request a handler can see.
type requestSeen struct {
	Err                    string
	Method, Proto, Host    string
	ProtoMajor, ProtoMinor int
	URL                    url.URL
	Header, Trailer        http.Header
	ContentLength          int64
	TransferEncoding       []string
	Close                  bool
	RequestURI             string
	BodyIsNoBody           bool
	Rest                   string
}

func seeRequest(req *http.Request, err error, rest io.Reader) requestSeen {
	if err != nil {
		return requestSeen{Err: err.Error()}
	}
	o := requestSeen{Method: req.Method, Proto: req.Proto, Host: req.Host, ProtoMajor: req.ProtoMajor,
		ProtoMinor: req.ProtoMinor, URL: *req.URL, Header: req.Header, Trailer: req.Trailer,
		ContentLength: req.ContentLength, TransferEncoding: req.TransferEncoding, Close: req.Close,
		RequestURI: req.RequestURI, BodyIsNoBody: req.Body == http.NoBody}
	b, _ := io.ReadAll(rest)
	o.Rest = string(b)
	if req.Form != nil || req.GetBody != nil || req.TLS != nil || req.RemoteAddr != "" || req.Context() != context.Background() {
		o.Err = "unexpected fields set"
	}
	return o
}

// loopHead returns the head the loop would give readSimpleRequest for
// raw, and false when the loop would not call it.
func loopHead(raw string) (string, bool) {
	n := headEnd([]byte(raw))
	if n == 0 || !crlfOnly([]byte(raw[:n])) {
		return "", false
	}
	return raw[:n], true
}

// FuzzSimpleRequest feeds any bytes to readSimpleRequest, as the loop
// does (a whole head of CRLF lines), and to http.ReadRequest: whatever the
// first takes must read exactly as net/http reads it (method, URL, every
// header, framing, and the bytes left for the next request).
func FuzzSimpleRequest(f *testing.F) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	for _, s := range simpleRequestSeeds {
		f.Add(s)
	}
	// One header map for every head, as a connection reuses it: a field
	// left over from an earlier head shows as a difference.
	reused := http.Header{}
	f.Fuzz(func(t *testing.T, raw string) {
		head, ok := loopHead(raw)
		if !ok {
			return
		}
		req := new(http.Request)
		if !readSimpleRequest([]byte(head), req, reused) {
			return // left to http.ReadRequest itself
		}
		std := bufio.NewReader(strings.NewReader(raw))
		sreq, serr := http.ReadRequest(std)
		want := seeRequest(sreq, serr, std)
		if got := seeRequest(req, nil, strings.NewReader(raw[len(head):])); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nsimple:   %+v\nnet/http: %+v", raw, got, want)
		}
	})
}

// TestSimpleRequestTakes checks that the usual requests take the simple
// path and the near misses do not (the fuzz test alone would pass if it
// took none, or took what it must not).
func TestSimpleRequestTakes(t *testing.T) {
	for i, raw := range simpleRequestSeeds {
		head, ok := loopHead(raw)
		taken := ok && readSimpleRequest([]byte(head), new(http.Request), nil)
		if want := i < simpleRequestsTaken; taken != want {
			t.Errorf("%q: taken %v, want %v", raw, taken, want)
		}
	}
}

// BenchmarkReadRequest compares readSimpleRequest with http.ReadRequest
// on a request as wrk sends it and on one as a browser does.
//
//	go test -run '^$' -bench ReadRequest -benchmem ./internal/http1/
func BenchmarkReadRequest(b *testing.B) {
	for _, tc := range []struct{ name, raw string }{{"wrk", simpleRequestSeeds[0]}, {"browser", simpleRequestSeeds[1]}} {
		head := []byte(tc.raw)
		b.Run(tc.name+"/net-http", func(b *testing.B) {
			rd := strings.NewReader(tc.raw)
			br := bufio.NewReader(rd)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(tc.raw)
				br.Reset(rd)
				if _, err := http.ReadRequest(br); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/simple", func(b *testing.B) {
			var req http.Request
			h := http.Header{}
			b.ReportAllocs()
			for b.Loop() {
				if !readSimpleRequest(head, &req, h) {
					b.Fatal("not taken")
				}
			}
		})
	}
}
