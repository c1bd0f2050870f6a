package middleware

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func decode(t *testing.T, enc string, b []byte) string {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		gr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = gr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		return string(b)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return string(out)
}

func TestCompress(t *testing.T) {
	big := strings.Repeat("zoku compresses text. ", 200) // 4.4 KB
	m := build(t, "  m: {compress: {minSize: 1024}}\n", Env{})
	answer := func(ct, body string, length bool, extra ...string) Next {
		return m.Wrap(terminal(&seen{}, func(w http.ResponseWriter, _ *http.Request) {
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			if length {
				w.Header().Set("Content-Length", itoa(len(body)))
			}
			for i := 0; i+1 < len(extra); i += 2 {
				w.Header().Set(extra[i], extra[i+1])
			}
			// Two writes: the first alone is under minSize.
			_, _ = io.WriteString(w, body[:len(body)/10])
			_, _ = io.WriteString(w, body[len(body)/10:])
		}))
	}
	for _, tc := range []struct {
		name, accept, ct string
		body             string
		length           bool
		extra            []string
		want             string // Content-Encoding
	}{
		{"zstd preferred", "gzip, zstd", "text/html; charset=utf-8", big, true, nil, "zstd"},
		{"gzip when no zstd", "gzip, deflate, br", "application/json", big, false, nil, "gzip"},
		{"q=0 refuses", "zstd;q=0, gzip;q=0.5", "text/plain", big, false, nil, "gzip"},
		{"star", "*", "text/css", big, false, nil, "zstd"},
		{"none accepted", "br", "text/plain", big, false, nil, ""},
		{"small answer", "gzip", "text/plain", "tiny", true, nil, ""},
		{"small answer of unknown length", "gzip", "text/plain", strings.Repeat("x", 900), false, nil, ""},
		{"type not listed", "gzip", "image/png", big, false, nil, ""},
		{"already encoded", "gzip", "text/plain", big, false, []string{"Content-Encoding", "br"}, "br"},
		{"no type: sniffed", "gzip", "", big, false, nil, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(answer(tc.ct, tc.body, tc.length, tc.extra...), get("/", "Accept-Encoding", tc.accept))
			enc := rec.Header().Get("Content-Encoding")
			if enc != tc.want {
				t.Fatalf("Content-Encoding %q, want %q", enc, tc.want)
			}
			if enc == "br" {
				return
			}
			if got := decode(t, enc, rec.Body.Bytes()); got != tc.body {
				t.Fatalf("body differs after decoding (%d bytes, want %d)", len(got), len(tc.body))
			}
			if enc != "" {
				if rec.Header().Get("Content-Length") != "" || rec.Header().Get("Vary") != "Accept-Encoding" {
					t.Errorf("headers %v: want no Content-Length and Vary: Accept-Encoding", rec.Header())
				}
				if rec.Body.Len() >= len(tc.body)/2 {
					t.Errorf("%d bytes encoded from %d", rec.Body.Len(), len(tc.body))
				}
			}
		})
	}
	t.Run("weak etag, HEAD", func(t *testing.T) {
		rec := do(answer("text/plain", big, true, "ETag", `"v1"`), get("/", "Accept-Encoding", "gzip"))
		if rec.Header().Get("ETag") != `W/"v1"` {
			t.Errorf("ETag %q, want W/\"v1\"", rec.Header().Get("ETag"))
		}
		head := get("/", "Accept-Encoding", "gzip")
		head.Method = http.MethodHead
		if rec := do(answer("text/plain", big, true), head); rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("HEAD got Content-Encoding %q", rec.Header().Get("Content-Encoding"))
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestCompressStream: an answer flushed before it reaches minSize (a
// stream, or httputil.ReverseProxy's first flush) is encoded, and each
// flush reaches the client decodable so far.
func TestCompressStream(t *testing.T) {
	m := build(t, "  m: {compress: {encodings: [gzip]}}\n", Env{})
	next := m.Wrap(terminal(&seen{}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		_ = rc.Flush() // headers at once, as ReverseProxy does
		for i := range 3 {
			_, _ = io.WriteString(w, "data: event "+itoa(i)+"\n\n")
			_ = rc.Flush()
		}
	}))
	rec := do(next, get("/", "Accept-Encoding", "gzip"))
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
	if got := decode(t, "gzip", rec.Body.Bytes()); got != "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n" {
		t.Errorf("decoded %q", got)
	}
}
