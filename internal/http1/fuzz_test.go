package http1

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// The servers of FuzzSameAnswers, started once per process (the fuzzer
// calls its function many times) and left to the process's end.
var (
	fuzzOnce          sync.Once
	fuzzStd, fuzzLoop string
	fuzzErr           error
)

// FuzzSameAnswers sends any bytes to net/http's server and to the loop
// and wants the same bytes back (the Date aside). The seeds are heads of
// TestSameBytesAsNetHTTP's kinds; `go test -fuzz FuzzSameAnswers
// ./internal/http1/` looks further.
func FuzzSameAnswers(f *testing.F) {
	for _, seed := range []string{
		"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /big HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: b\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /noread HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
		"GET /trailer HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET http://x/echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /echo HTTP/1.0\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.Contains(raw, "/ctx") || len(raw) > 8<<10 {
			// /ctx tells when the client's end was noticed, which the two
			// servers do at different moments by design.
			return
		}
		// A short header timeout: a head that never ends is answered (or
		// dropped) by both servers when it expires.
		fuzzOnce.Do(func() { fuzzStd, fuzzLoop, _, _, fuzzErr = startPair(handler(), nil, time.Second) })
		if fuzzErr != nil {
			t.Fatal(fuzzErr)
		}
		want := exchange(t, fuzzStd, nil, raw)
		got := exchange(t, fuzzLoop, nil, raw)
		if got != want {
			t.Errorf("for %q\nnet/http answered %q\nthe loop answered %q", short(raw), short(want), short(got))
		}
	})
}
