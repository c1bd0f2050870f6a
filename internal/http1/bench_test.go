package http1

import (
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkServe is one kept-alive client's request and answer, through
// net/http's server and through the loop: the server's own cost per
// request (client and server in one process, on loopback).
//
//	go test -run '^$' -bench Serve -benchmem ./internal/http1/
func BenchmarkServe(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	})
	for _, name := range []string{"net-http", "loop"} {
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var stop func() error
			if name == "loop" {
				s := &Server{Handler: h, ErrorLog: quiet, Fallback: &http.Server{Handler: h, ErrorLog: quiet}}
				go func() { _ = s.Serve(ln) }()
				stop = s.Close
			} else {
				s := &http.Server{Handler: h, ErrorLog: quiet}
				go func() { _ = s.Serve(ln) }()
				stop = s.Close
			}
			defer func() { _ = stop() }()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET / HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			// The answer's length is fixed (the Date has a fixed width).
			buf := make([]byte, 4096)
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			n, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
