package http1

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// handler is one handler with many behaviours, chosen by path, so the same
// requests can be sent to net/http's server and to the loop.
func handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s host=%q cl=%d te=%v close=%v body=%q err=%v\n", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.TransferEncoding, r.Close, b, err)
			keys := make([]string, 0, len(r.Header))
			for k := range r.Header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "%s=%q\n", k, r.Header[k])
			}
			fmt.Fprintf(w, "trailer=%v tls=%v remote-ip=%v server=%v local=%v\n", r.Trailer, r.TLS != nil, strings.HasPrefix(r.RemoteAddr, "127.0.0.1:"),
				r.Context().Value(http.ServerContextKey) != nil, r.Context().Value(http.LocalAddrContextKey) != nil)
		case "/small":
			_, _ = io.WriteString(w, "<html>hello</html>")
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(strings.Repeat("0123456789abcdef", 700)))
		case "/cl":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		case "/cl-short":
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "hello")
		case "/cl-long":
			w.Header().Set("Content-Length", "3")
			_, err := io.WriteString(w, "hello")
			w.Header().Set("X-Err", fmt.Sprint(err))
		case "/cl-bad":
			w.Header().Set("Content-Length", "x")
			_, _ = io.WriteString(w, "hello")
		case "/204", "/304", "/100":
			w.Header().Set("Content-Length", "5")
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Transfer-Encoding", "chunked")
			code := map[string]int{"/204": 204, "/304": 304, "/100": 100}[r.URL.Path]
			w.WriteHeader(code)
			_, err := io.WriteString(w, "hello")
			if code == 100 {
				w.WriteHeader(200)
				_, _ = io.WriteString(w, "after 100 "+fmt.Sprint(err))
			}
		case "/103":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("X-Final", "yes")
			_, _ = io.WriteString(w, "final")
		case "/trailer":
			w.Header().Set("Trailer", "X-T, X-U")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-T", "t1")
		case "/trailer-prefix":
			_, _ = io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"X-P", "p1")
		case "/trailer-unflushed":
			_, _ = io.WriteString(w, "body")
			w.Header().Set(http.TrailerPrefix+"X-P", "p1")
		case "/flush":
			_, _ = io.WriteString(w, "one")
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
			_, _ = io.WriteString(w, "two")
		case "/noread":
			_, _ = io.WriteString(w, "did not read")
		case "/closebody":
			_ = r.Body.Close()
			_, _ = io.WriteString(w, "closed the body")
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/te-identity":
			w.Header().Set("Transfer-Encoding", "identity")
			_, _ = io.WriteString(w, "raw")
		case "/te-chunked":
			w.Header().Set("Transfer-Encoding", "chunked")
			_, _ = io.WriteString(w, "pre-chunked")
		case "/both":
			w.Header().Set("Transfer-Encoding", "gzip")
			w.Header().Set("Content-Length", "3")
			_, _ = io.WriteString(w, "abc")
		case "/late-header":
			h := w.Header()
			h.Set("X-Early", "1")
			w.WriteHeader(202)
			h.Set("X-Late", "1")
			_, _ = io.WriteString(w, "late")
		case "/many-headers":
			h := w.Header()
			for i := range 100 {
				h.Set(fmt.Sprintf("X-N-%03d", i), fmt.Sprint(i))
			}
			w.WriteHeader(200)
			for i := range 100 {
				h[fmt.Sprintf("X-N-%03d", i)][0] = "changed in place" // net/http's clone keeps it off the wire
			}
			_, _ = io.WriteString(w, "many")
		case "/twice":
			w.WriteHeader(201)
			w.WriteHeader(500)
		case "/odd-status":
			w.WriteHeader(299)
		case "/newline-header":
			w.Header().Set("X-Multi", "a\r\nb")
			w.Header()["x-raw-lower"] = []string{"v"}
			w.Header()["Empty"] = nil
		case "/panic":
			_, _ = io.WriteString(w, "partial")
			panic("boom")
		case "/abort":
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/ctx":
			err := r.Context().Err()
			fmt.Fprintf(w, "err-during=%v", err)
		default:
			http.NotFound(w, r)
		}
	})
}

var quiet = log.New(io.Discard, "", 0)

// pair starts net/http's server and the loop with the same handler, and
// returns their addresses; the test's end stops them.
func pair(t *testing.T, h http.Handler, tlsConf *tls.Config) (stdAddr, loopAddr string, loop *Server) {
	t.Helper()
	stdAddr, loopAddr, loop, stop, err := startPair(h, tlsConf, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return stdAddr, loopAddr, loop
}

// startPair is pair without a test, with a header timeout of its own:
// stop ends both servers.
func startPair(h http.Handler, tlsConf *tls.Config, headerTimeout time.Duration) (stdAddr, loopAddr string, loop *Server, stop func(), err error) {
	std := &http.Server{Handler: h, ErrorLog: quiet, ReadHeaderTimeout: headerTimeout, TLSConfig: tlsConf.Clone()}
	loop = &Server{Handler: h, ErrorLog: quiet, ReadHeaderTimeout: headerTimeout, TLSConfig: tlsConf,
		Fallback: &http.Server{Handler: h, ErrorLog: quiet, ReadHeaderTimeout: headerTimeout}}
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, nil, err
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l1.Close()
		return "", "", nil, nil, err
	}
	done := make(chan struct{}, 2)
	go func() {
		if tlsConf != nil {
			_ = std.ServeTLS(l1, "", "")
		} else {
			_ = std.Serve(l1)
		}
		done <- struct{}{}
	}()
	go func() { _ = loop.Serve(l2); done <- struct{}{} }()
	stop = func() {
		_ = std.Close()
		_ = loop.Close()
		<-done
		<-done
	}
	return l1.Addr().String(), l2.Addr().String(), loop, stop, nil
}

var dateLine = regexp.MustCompile(`Date: [^\r]*\r\n`)

// exchange writes raw on a new connection and returns all the server
// writes until it closes the connection (the last request of each case
// asks it to, or the server closes on its own).
func exchange(t *testing.T, addr string, tc *tls.Config, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tc != nil {
		c = tls.Client(c, tc)
	}
	// A guard against a hang, not a timing assertion.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		_, _ = io.WriteString(c, raw)
		if !strings.Contains(raw, "Connection: close") {
			// Nothing more: let the server see the end.
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}
	}()
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("reading the answer to %q: %v", short(raw), err)
	}
	return dateLine.ReplaceAllString(string(b), "Date: (date)\r\n")
}

// short cuts s for a failure message.
func short(s string) string {
	if len(s) > 600 {
		return s[:600] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

const last = "GET /echo HTTP/1.1\r\nHost: last\r\nConnection: close\r\n\r\n"

// TestSameBytesAsNetHTTP sends each request to net/http's server and to
// the loop and compares every byte they write back (the Date aside).
func TestSameBytesAsNetHTTP(t *testing.T) {
	paths := []string{"/echo", "/small", "/big", "/cl", "/cl-short", "/cl-long", "/cl-bad", "/204", "/304", "/100", "/103",
		"/trailer", "/trailer-prefix", "/trailer-unflushed", "/flush", "/noread", "/closebody", "/close", "/te-identity", "/te-chunked", "/both",
		"/late-header", "/many-headers", "/twice", "/odd-status", "/newline-header", "/panic", "/abort", "/ctx", "/missing"}
	// loop: the loop serves every request of the case itself.
	type tcase struct {
		name, raw string
		loop      bool
	}
	var cases []tcase
	for _, p := range paths {
		for _, m := range []string{"GET", "HEAD"} {
			cases = append(cases, tcase{m + " " + p, m + " " + p + " HTTP/1.1\r\nHost: example.test\r\n\r\n" + last, true})
		}
		cases = append(cases, tcase{"POST " + p, "POST " + p + " HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello" + last, true})
	}
	big := strings.Repeat("x", 300<<10)
	cases = append(cases, []tcase{
		{"pipelined", "GET /small HTTP/1.1\r\nHost: a\r\n\r\nGET /cl HTTP/1.1\r\nHost: b\r\n\r\nHEAD /big HTTP/1.1\r\nHost: c\r\n\r\n" + last, true},
		{"header copies on one connection", "GET /late-header HTTP/1.1\r\nHost: a\r\n\r\nGET /many-headers HTTP/1.1\r\nHost: a\r\n\r\n" +
			"GET /late-header HTTP/1.1\r\nHost: a\r\n\r\nGET /trailer HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n" + last, true},
		{"connection close", "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"connection close token", "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n", true},
		{"chunked body with trailer", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n" + last, true},
		{"unread small body", "POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789" + last, true},
		{"unread chunked body", "POST /noread HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + last, true},
		{"unread big body", "POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big + last, true},
		{"closed big body", "POST /closebody HTTP/1.1\r\nHost: a\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big + last, true},
		{"leading CRLF after POST", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\n" + last, true},
		{"absolute form", "GET http://other.test/echo?q=1 HTTP/1.1\r\nHost: a\r\n\r\n" + last, true},
		{"query and escapes", "GET /echo?a=%20b&c HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n" + last, true},
		// What the loop hands to net/http: the answers must still match.
		{"HTTP/1.0", "GET /echo HTTP/1.0\r\nHost: a\r\n\r\n", false},
		{"HTTP/1.0 keep-alive", "GET /cl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + last, false},
		{"expect continue", "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi" + last, false},
		{"expect other", "POST /echo HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\nhi", false},
		{"upgrade", "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + last, false},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n" + last, false},
		{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", false},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false},
		{"HTTP/2.0 request", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", false},
		{"after a good one", "GET /small HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.0\r\n\r\n", false},
		{"long head", "GET /echo HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("y", 6000) + "\r\n\r\n" + last, false},
		{"head too large", "GET /echo HTTP/1.1\r\nHost: a\r\nX-Long: " + strings.Repeat("y", 2<<20) + "\r\n\r\n", false},
		// Request smuggling and malformed heads: refused alike.
		{"CL and TE", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + last, true},
		{"duplicate CL", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nhello" + last, false},
		{"same CL twice", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + last, true},
		{"obs-fold", "GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n" + last, true},
		{"bad chunk size", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + last, true},
		{"chunk size overflow", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + last, true},
		{"CR without LF", "GET /echo HTTP/1.1\r\nHost: a\rX-B: c\r\n\r\n" + last, false},
		{"bare LF", "GET /echo HTTP/1.1\nHost: a\n\n" + last, false},
		{"unknown TE", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" + last, false},
		{"space before colon", "GET /echo HTTP/1.1\r\nHost : a\r\n\r\n" + last, false},
		{"two hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + last, false},
		{"no host", "GET /echo HTTP/1.1\r\n\r\n" + last, false},
		{"bad host", "GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n" + last, false},
		{"bad header value", "GET /echo HTTP/1.1\r\nHost: a\r\nX-C: a\x01b\r\n\r\n" + last, false},
		{"bad header name", "GET /echo HTTP/1.1\r\nHost: a\r\nX(C): a\r\n\r\n" + last, false},
		{"bad request line", "GET /echo\r\nHost: a\r\n\r\n" + last, false},
		{"empty line first", "\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"garbage", "\x16\x03\x01\x00\x05hello\r\n\r\n", false},
		{"half a head", "GET /echo HTTP/1.1\r\nHost: a\r\n", false},
		{"half a body", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", true},
	}...)
	for _, tlsOn := range []bool{false, true} {
		var server, client *tls.Config
		if tlsOn {
			server, client = tlsConfigs(t)
		}
		std, loop, srv := pair(t, handler(), server)
		for _, tc := range cases {
			t.Run(fmt.Sprintf("tls=%v/%s", tlsOn, tc.name), func(t *testing.T) {
				want := exchange(t, std, client, tc.raw)
				over := srv.handedOver.Load()
				got := exchange(t, loop, client, tc.raw)
				if handed := srv.handedOver.Load() > over; handed == tc.loop {
					t.Errorf("handed to net/http: %v, want %v", handed, !tc.loop)
				}
				if got != want {
					i := 0
					for i < len(got) && i < len(want) && got[i] == want[i] {
						i++
					}
					t.Errorf("answers differ from byte %d: net/http answered\n%q\nthe loop answered\n%q", i, short(want[max(0, i-200):]), short(got[max(0, i-200):]))
				}
			})
		}
	}
}

// TestHandsOverH2 checks that a TLS client that negotiates HTTP/2 is
// served by net/http's HTTP/2 server, and HTTP/1.1 by the loop, both with
// the TLS state in the request.
func TestHandsOverH2(t *testing.T) {
	server, client := tlsConfigs(t)
	_, addr, _ := pair(t, handler(), server)
	for _, proto := range []string{"h2", "http/1.1"} {
		tc := client.Clone()
		tc.NextProtos = []string{proto}
		tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: proto == "h2"}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/echo")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := map[string]string{"h2": "HTTP/2.0", "http/1.1": "HTTP/1.1"}[proto]; resp.Proto != want || !strings.Contains(string(b), "tls=true") {
			t.Errorf("%s: proto %s, body %q", proto, resp.Proto, b)
		}
	}
}

// TestClientGoneCancels checks that a long request's context is cancelled
// when its client goes away, with a body read first or none.
func TestClientGoneCancels(t *testing.T) {
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	} {
		started := make(chan struct{})
		cancelled := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			close(started)
			<-r.Context().Done()
			cancelled <- r.Context().Err()
		})
		_, addr, _ := pair(t, h, nil)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, raw)
		<-started
		_ = c.Close()
		select {
		case err := <-cancelled:
			if err != context.Canceled {
				t.Fatalf("context ended with %v", err)
			}
		case <-time.After(30 * time.Second): // a hang guard
			t.Fatalf("%q: the request's context was not cancelled after its client left", raw)
		}
	}
}

// TestContextAfterFunc checks the request context's cancellation contract
// as context.AfterFunc and context.WithCancel use it.
func TestContextAfterFunc(t *testing.T) {
	ctx := newRequestContext(context.Background())
	ran := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(ran) })
	stopped := context.AfterFunc(ctx, func() { t.Error("a stopped function ran") })
	if !stopped() {
		t.Fatal("stop of a pending function reported false")
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	if ctx.Err() != nil || child.Err() != nil {
		t.Fatal("cancelled too early")
	}
	ctx.cancel(context.Canceled)
	<-ran
	<-child.Done()
	<-ctx.Done()
	if stop() {
		t.Error("stop after the function ran reported true")
	}
	if child.Err() != context.Canceled || ctx.Err() != context.Canceled {
		t.Errorf("errors %v, %v", child.Err(), ctx.Err())
	}
}

// hookCount is a CancelHook that counts its calls.
type hookCount struct{ ran chan struct{} }

func (h *hookCount) ContextCancelled() { close(h.ran) }

// TestCancelHooks checks AddCancelHook and RemoveCancelHook as the proxy
// uses them: more hooks than the inline buffer holds, one removed before
// the cancel (it never runs), the others run once, and a hook added after
// the cancel runs at once.
func TestCancelHooks(t *testing.T) {
	ctx := newRequestContext(context.Background())
	hooks := make([]*hookCount, 4)
	for i := range hooks {
		hooks[i] = &hookCount{ran: make(chan struct{})}
		ctx.AddCancelHook(hooks[i])
	}
	if !ctx.RemoveCancelHook(hooks[1]) {
		t.Fatal("removing a waiting hook reported false")
	}
	if ctx.RemoveCancelHook(hooks[1]) {
		t.Fatal("removing it twice reported true")
	}
	ctx.cancel(context.Canceled)
	for i, h := range hooks {
		if i == 1 {
			continue
		}
		<-h.ran // a hang here: hook i did not run
		if ctx.RemoveCancelHook(h) {
			t.Errorf("removing hook %d after it ran reported true", i)
		}
	}
	select {
	case <-hooks[1].ran:
		t.Error("the removed hook ran")
	default:
	}
	late := &hookCount{ran: make(chan struct{})}
	ctx.AddCancelHook(late)
	<-late.ran
}

// TestShutdown checks that Shutdown closes an idle connection, lets a
// request in flight finish with "Connection: close", and that Serve
// returns http.ErrServerClosed.
func TestShutdown(t *testing.T) {
	inside := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inside)
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	s := &Server{Handler: h, ErrorLog: quiet, Fallback: &http.Server{Handler: h, ErrorLog: quiet}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ir := bufio.NewReader(idle)
	_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, err := http.ReadResponse(ir, nil); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, _ = io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inside

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The idle connection is closed by Shutdown: its read ends.
	if _, err := ir.ReadByte(); err == nil {
		t.Fatal("the idle connection got bytes instead of being closed")
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Error("the answer in flight during Shutdown did not say Connection: close")
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v", err)
	}
}

// TestPanicLogged checks that a handler's panic is logged as net/http logs
// it, and that ErrAbortHandler is not.
func TestPanicLogged(t *testing.T) {
	var mu sync.Mutex
	var logged strings.Builder
	lw := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logged.Write(p) })
	s := &Server{Handler: handler(), ErrorLog: log.New(lw, "", 0), Fallback: &http.Server{Handler: handler(), ErrorLog: quiet}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	for _, p := range []string{"/abort", "/panic"} {
		t.Logf("%s: %q", p, exchange(t, ln.Addr().String(), nil, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	// One line for /panic, with the handler's frames in its stack; none
	// for ErrAbortHandler.
	if got := logged.String(); !strings.Contains(got, "http: panic serving 127.0.0.1:") || !strings.Contains(got, "boom") ||
		strings.Count(got, "http: panic serving") != 1 || !strings.Contains(got, ".handler.func") {
		t.Errorf("log: %q", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestHandOverReasons checks that OnHandOver hears why each connection
// went to net/http.
func TestHandOverReasons(t *testing.T) {
	reasons := make(chan string, 16)
	h := handler()
	s := &Server{Handler: h, ErrorLog: quiet, OnHandOver: func(r string) { reasons <- r },
		Fallback: &http.Server{Handler: h, ErrorLog: quiet}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	for _, tc := range []struct{ raw, want string }{
		{"GET /echo HTTP/1.0\r\n\r\n", ReasonVersion},
		{"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", ReasonExpect},
		{"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", ReasonUpgrade},
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", ReasonMethod},
		{"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Long: " + strings.Repeat("y", 5000) + "\r\n\r\n", ReasonLargeHead},
		{"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n", ReasonMalformed},
		{"GET /echo HTTP/1.1\nHost: a\n\n", ReasonMalformed},
	} {
		exchange(t, ln.Addr().String(), nil, tc.raw)
		if got := <-reasons; got != tc.want {
			t.Errorf("%q: handed over for %q, want %q", short(tc.raw), got, tc.want)
		}
	}
	exchange(t, ln.Addr().String(), nil, last)
	select {
	case r := <-reasons:
		t.Errorf("a request the loop takes was handed over (%s)", r)
	default:
	}
}
