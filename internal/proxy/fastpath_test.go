package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/http1"
)

// exchangeResult is what a client saw of one exchange, for comparing the
// fast path with the net/http path.
type exchangeResult struct {
	Status  int
	Header  string // sorted "Key: v" lines, Date left out
	Body    string
	Trailer string
}

// pair is one backend behind two services: one takes the fast path, the
// other is forced onto httputil.ReverseProxy and http.Transport.
type pair struct {
	fast, slow *front
}

func startPair(t *testing.T, h http.HandlerFunc) pair {
	t.Helper()
	b := startBackend(t, "b", h)
	fast := newService(t, &config.Service{Servers: servers(b.url())}, nil, Options{})
	slow := newService(t, &config.Service{Servers: servers(b.url())}, nil, Options{})
	if !fast.fast {
		t.Fatal("a plain http:// server must take the fast path")
	}
	slow.fast = false
	return pair{fast: startFront(t, fast), slow: startFront(t, slow)}
}

// roundTrip sends req (built afresh for each front by mk) through both
// fronts and fails when the two answers differ.
func (p pair) compare(t *testing.T, mk func(url string) *http.Request) exchangeResult {
	t.Helper()
	got := p.exchange(t, p.fast, mk)
	want := p.exchange(t, p.slow, mk)
	if got != want {
		t.Errorf("fast path answered\n %+v\nnet/http path answered\n %+v", got, want)
	}
	return got
}

func (p pair) exchange(t *testing.T, f *front, mk func(url string) *http.Request) exchangeResult {
	t.Helper()
	req := mk(f.URL)
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	<-f.stats
	return exchangeResult{Status: resp.StatusCode, Header: headerLines(resp.Header), Body: string(body), Trailer: headerLines(resp.Trailer)}
}

func headerLines(h http.Header) string {
	var lines []string
	for k, vv := range h {
		if k == "Date" {
			continue
		}
		for _, v := range vv {
			lines = append(lines, k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func get(path string) func(string) *http.Request {
	return func(url string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		return req
	}
}

func TestFastPathMatchesNetHTTP(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	sum := sha256.Sum256(big)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		req     func(url string) *http.Request
		check   func(t *testing.T, got exchangeResult)
	}{
		{
			name: "headers, status and hop-by-hop headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "X-Secret")
				w.Header().Set("X-Secret", "hop")
				w.Header().Set("Keep-Alive", "timeout=5")
				w.Header().Add("X-Multi", "a")
				w.Header().Add("X-Multi", "b")
				w.Header().Set("X-Saw", r.Method+" "+r.RequestURI+" "+r.Host+" "+r.Header.Get("X-Client")+" "+r.Header.Get("X-Drop")+" "+r.Header.Get("Te")+r.UserAgent())
				w.WriteHeader(http.StatusTeapot)
				_, _ = io.WriteString(w, "short and stout")
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, url+"/p/a%2Fb?q=1&r", nil)
				req.Header.Set("X-Client", "kept")
				req.Header.Set("Connection", "X-Drop")
				req.Header.Set("X-Drop", "dropped")
				req.Header.Set("Te", "trailers, deflate")
				req.Header.Set("User-Agent", "agent/1")
				req.Host = "app.example"
				return req
			},
			check: func(t *testing.T, got exchangeResult) {
				if got.Status != http.StatusTeapot || strings.Contains(got.Header, "X-Secret") || !strings.Contains(got.Header, "X-Multi: b") {
					t.Errorf("got %+v", got)
				}
			},
		},
		{
			name: "empty user agent and query forced",
			handler: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%q %q %v", r.RequestURI, r.UserAgent(), r.Header["User-Agent"] != nil)
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, url+"/x?", nil)
				req.Header["User-Agent"] = nil
				return req
			},
		},
		{
			name: "HEAD keeps Content-Length, sends no body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1234")
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodHead, url+"/", nil)
				return req
			},
		},
		{
			name:    "204 and 304 without bodies",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			req:     get("/"),
		},
		{
			name: "not modified",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
			},
			req: get("/"),
		},
		{
			name: "trailers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Checksum")
				_, _ = io.WriteString(w, "body")
				w.Header().Set("X-Checksum", "abc")
				w.Header().Set(http.TrailerPrefix+"X-Late", "unannounced")
			},
			req: get("/"),
			check: func(t *testing.T, got exchangeResult) {
				if !strings.Contains(got.Trailer, "X-Checksum: abc") || !strings.Contains(got.Trailer, "X-Late: unannounced") {
					t.Errorf("trailers = %q", got.Trailer)
				}
			},
		},
		{
			name: "early hints then the answer",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				_, _ = io.WriteString(w, "after hints")
			},
			req: get("/"),
		},
		{
			name: "large response body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(big)
			},
			req: get("/"),
			check: func(t *testing.T, got exchangeResult) {
				if s := sha256.Sum256([]byte(got.Body)); s != sum {
					t.Errorf("body of %d bytes is not the one sent", len(got.Body))
				}
			},
		},
		{
			name: "large request body with a length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				h := sha256.New()
				n, _ := io.Copy(h, r.Body)
				fmt.Fprintf(w, "%d %x %d %q", n, h.Sum(nil), r.ContentLength, r.TransferEncoding)
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPut, url+"/up", bytes.NewReader(big))
				return req
			},
			check: func(t *testing.T, got exchangeResult) {
				if !strings.Contains(got.Body, hex.EncodeToString(sum[:])) {
					t.Errorf("backend saw %q", got.Body)
				}
			},
		},
		{
			name: "large chunked request body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				h := sha256.New()
				n, _ := io.Copy(h, r.Body)
				fmt.Fprintf(w, "%d %x %d %q", n, h.Sum(nil), r.ContentLength, r.TransferEncoding)
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, url+"/up", io.MultiReader(bytes.NewReader(big)))
				return req
			},
			check: func(t *testing.T, got exchangeResult) {
				if !strings.Contains(got.Body, hex.EncodeToString(sum[:])) || !strings.Contains(got.Body, `["chunked"]`) {
					t.Errorf("backend saw %q", got.Body)
				}
			},
		},
		{
			name: "empty POST gets Content-Length 0",
			handler: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "%d %q", r.ContentLength, r.Header.Get("Content-Length"))
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, url+"/", nil)
				return req
			},
		},
		{
			name: "server answers before reading a large body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, url+"/up", bytes.NewReader(big))
				return req
			},
		},
		{
			name: "100-continue falls back to net/http",
			handler: func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s %s", r.Header.Get("Expect"), b)
			},
			req: func(url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPut, url+"/", strings.NewReader("payload"))
				req.Header.Set("Expect", "100-continue")
				return req
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startPair(t, tt.handler)
			got := p.compare(t, tt.req)
			if tt.check != nil {
				tt.check(t, got)
			}
			// Twice: the second exchange runs on a kept-alive connection.
			p.compare(t, tt.req)
		})
	}
}

// TestFastPathStreams checks that a body of unknown length reaches the
// client chunk by chunk, not when the server is done.
func TestFastPathStreams(t *testing.T) {
	next := make(chan struct{})
	p := startPair(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(testWait):
				return
			}
		}
	})
	resp, err := p.fast.Client().Get(p.fast.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("part %d\n", i) {
			t.Fatalf("line %d = %q, %v", i, line, err)
		}
		next <- struct{}{}
	}
}

// rawBackend answers every request on a connection with the bytes of
// answer, as they are, and then closes the connection if closeAfter.
func rawBackend(t *testing.T, answer string, closeAfter bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testWait))
				br := bufio.NewReader(c)
				for range 100 {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestFastPathRefusesBadAnswers feeds malformed and ambiguous server
// answers to both paths: the client must see the same thing from each.
func TestFastPathRefusesBadAnswers(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(512 << 20))
	tests := []struct {
		name, answer string
		want         string // when the fast path differs on purpose
	}{
		{"Content-Length with Transfer-Encoding", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", ""},
		{"duplicate Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello", ""},
		// A body of unknown length has its headers flushed first; ReverseProxy
		// does that from a timer, so whether its client sees them before
		// the abort is a race: the fast path's answer is the one wanted.
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
			`200 "" read error: true`},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok", ""},
		{"CR without LF", "HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 2\r\n\r\nok", ""},
		{"bad status line", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", ""},
		// ReverseProxy refuses the switch after it has counted the
		// answer, so the client gets an empty 200; the fast path says
		// 502, which is what happened.
		{"unsolicited switch", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
			`502 "bad gateway: no answer from service app\n" read error: false`},
		{"HTTP/1.0 close-delimited", "HTTP/1.0 200 OK\r\n\r\nuntil close", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawBackend(t, tt.answer, true)
			fast := newService(t, &config.Service{Servers: servers(url), Retries: intp(0)}, nil, Options{})
			slow := newService(t, &config.Service{Servers: servers(url), Retries: intp(0)}, nil, Options{})
			slow.fast = false
			p := pair{fast: startFront(t, fast), slow: startFront(t, slow)}
			got := p.exchangeLoose(t, p.fast)
			want := p.exchangeLoose(t, p.slow)
			if tt.want != "" {
				want = tt.want
			}
			if got != want {
				t.Errorf("fast path: %s\nnet/http path: %s", got, want)
			}
		})
	}
}

// exchangeLoose is exchange for answers that may break mid-body: it
// reports the status, the body and whether reading it failed.
func (p pair) exchangeLoose(t *testing.T, f *front) string {
	t.Helper()
	// An answer broken mid-body aborts the front's handler, which then
	// reports no Stats: none are awaited here.
	resp, err := f.Client().Get(f.URL)
	if err != nil {
		return "request failed"
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %q read error: %v", resp.StatusCode, body, err != nil)
}

// TestFastPathStaleConnection: a server that closes each kept-alive
// connection after one answer makes the next request find a dead one;
// it is sent again on a fresh connection, and the server is not blamed.
func TestFastPathStaleConnection(t *testing.T) {
	url := rawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true)
	svc := newService(t, &config.Service{Servers: servers(url), Retries: intp(0), PassiveHealth: &config.PassiveHealth{MaxFailures: 1}}, nil, Options{})
	f := startFront(t, svc)
	for i := range 5 {
		if code, body := f.do(t, http.MethodGet, "/", ""); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		if st := f.nextStats(t); st.Attempts != 1 {
			t.Fatalf("request %d: Attempts = %d, want 1", i, st.Attempts)
		}
	}
	if st := svc.Servers()[0]; !st.Up || st.LastError != "" {
		t.Errorf("server status = %+v, want up with no error", st)
	}
}

// TestSmugglingRefusedAsBefore sends ambiguous requests to a front
// serving the fast path and to one forced onto the net/http path: both
// must answer alike, and the fast path's backend must see no request the
// other's did not. (Where the client's body breaks off, the net/http path
// may already have sent the request head, so its backend may count a
// request that the fast path never sent.)
func TestSmugglingRefusedAsBefore(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(512 << 20))
	tests := []struct{ name, req string }{
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"duplicate Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n"},
		{"CR without LF", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rX-B: 2\r\n\r\n"},
		{"unknown Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n"},
		{"bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n"},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var answers [2]string
			var hits [2]int64
			for i, fast := range []bool{true, false} {
				b := startBackend(t, "b", echo("b"))
				svc := newService(t, &config.Service{Servers: servers(b.url())}, nil, Options{})
				svc.fast = fast
				f := startFront(t, svc)
				answers[i] = rawAnswers(t, f.Listener.Addr().String(), tt.req)
				hits[i] = b.hits.Load()
			}
			if answers[0] != answers[1] || hits[0] > hits[1] {
				t.Errorf("fast path: %q, %d at the backend\nnet/http path: %q, %d at the backend", answers[0], hits[0], answers[1], hits[1])
			}
		})
	}
}

// rawAnswers writes req and then a last request asking to close on a new
// connection to addr, and returns the status lines and bodies of every
// answer.
func rawAnswers(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testWait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testWait))
	if _, err := io.WriteString(c, req+"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	var out []string
	br := bufio.NewReader(c)
	for range 10 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		body, err := io.ReadAll(resp.Body)
		out = append(out, fmt.Sprintf("%s %q %v", resp.Status, body, err != nil))
	}
	return strings.Join(out, " | ")
}

func TestIsEventStream(t *testing.T) {
	for _, ct := range []string{"", "text/plain", "text/event-streams", "text/event", "text/event-stream-x", "text/event-stream; charset=utf-8", "Text/Event-Stream", " text/event-stream ", "text/event-stream;;", "text/event-stream junk"} {
		base, _, err := mime.ParseMediaType(ct)
		want := err == nil && base == "text/event-stream"
		if got := isEventStream([]string{ct}); got != want {
			t.Errorf("isEventStream(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestFastPathHTTP10WithoutHost: a request without a Host header reaches
// the server with the server's own host name, on both paths.
func TestFastPathHTTP10WithoutHost(t *testing.T) {
	var answers [2]string
	for i, fast := range []bool{true, false} {
		b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "host=%s xfh=%s", r.Host, r.Header.Get("X-Forwarded-Host"))
		})
		svc := newService(t, &config.Service{Servers: servers(b.url())}, nil, Options{})
		svc.fast = fast
		f := startFront(t, svc)
		answers[i] = strings.ReplaceAll(rawAnswers(t, f.Listener.Addr().String(), "GET /x HTTP/1.0\r\n\r\n"), b.addr, "SERVER")
	}
	if answers[0] != answers[1] || !strings.Contains(answers[0], "host=SERVER ") {
		t.Errorf("fast path: %q\nnet/http path: %q", answers[0], answers[1])
	}
}

// TestFastPathUnknownLengthWithoutBody: a request claiming a body of
// unknown length but carrying none reaches the server as an empty body
// (Content-Length: 0 on the fast path, an empty chunked body on the
// net/http path), not as a chunked body that never ends.
func TestFastPathUnknownLengthWithoutBody(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	for _, fast := range []bool{true, false} {
		svc := newService(t, &config.Service{Servers: servers(b.url()), TryTimeout: config.Duration(testWait)}, nil, Options{})
		svc.fast = fast
		req := httptest.NewRequest(http.MethodPost, "http://app.example/", nil)
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.String() != "0 <nil>" {
			t.Errorf("fast %v: %d %q, want 200 %q", fast, rec.Code, rec.Body.String(), "0 <nil>")
		}
	}
}

// TestClientGoneCutsUpstreamBehindLoop checks, behind zoku's HTTP/1.1
// server loop, that a client leaving while the server thinks cuts the
// connection to the server, and that the fast path took the loop's
// allocation-free cancel hook (not context.AfterFunc) to do it.
func TestClientGoneCutsUpstreamBehindLoop(t *testing.T) {
	entered := make(chan struct{})
	cut := make(chan struct{})
	a := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done(): // net/http's server saw the connection close
			close(cut)
		case <-time.After(testWait):
		}
	})
	svc := newService(t, &config.Service{Servers: servers(a.url())}, nil, Options{})
	hooked := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := r.Context().(cancelHooks)
		hooked <- ok
		svc.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http1.Server{Handler: h, Fallback: &http.Server{Handler: h}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if !<-hooked {
		t.Error("the loop's request context does not take cancel hooks: the fast path falls back to context.AfterFunc")
	}
	select {
	case <-entered:
	case <-time.After(testWait):
		t.Fatal("request did not reach the server")
	}
	_ = c.Close()
	select {
	case <-cut:
	case <-time.After(testWait):
		t.Fatal("the connection to the server was not cut after the client left")
	}
}
