package middleware

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// endless is a body that never ends: the buffering cap, not the client,
// must stop reading it.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestBuffering(t *testing.T) {
	m := build(t, "  m: {buffering: {maxRequestBodyBytes: 1048576, memRequestBodyBytes: 4096}}\n", Env{})
	var s seen
	var sawLength int64
	next := m.Wrap(terminal(&s, func(w http.ResponseWriter, r *http.Request) {
		sawLength = r.ContentLength
		if r.GetBody == nil {
			t.Error("no GetBody: a retry could not send the body again")
		}
	}))
	t.Run("10 MB with a length: refused unread", func(t *testing.T) {
		body := &endless{}
		req := httptest.NewRequest("POST", "/", io.LimitReader(body, 10<<20))
		req.ContentLength = 10 << 20
		rec := do(next, req)
		if rec.Code != http.StatusRequestEntityTooLarge || body.n != 0 {
			t.Errorf("got %d after reading %d bytes; want 413 after none", rec.Code, body.n)
		}
	})
	t.Run("10 MB chunked: refused after the limit", func(t *testing.T) {
		body := &endless{}
		req := httptest.NewRequest("POST", "/", io.LimitReader(body, 10<<20))
		req.ContentLength = -1
		rec := do(next, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("got %d, want 413", rec.Code)
		}
		if body.n > 2<<20 {
			t.Errorf("read %d bytes of a body over a 1 MiB limit", body.n)
		}
	})
	t.Run("endless body: refused", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/", &endless{})
		req.ContentLength = -1
		if rec := do(next, req); rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("got %d, want 413", rec.Code)
		}
	})
	t.Run("under the limit, beyond memory: spooled and intact", func(t *testing.T) {
		buf := make([]byte, 300<<10)
		_, _ = rand.Read(buf)
		req := httptest.NewRequest("POST", "/", strings.NewReader(string(buf)))
		req.ContentLength = -1
		if rec := do(next, req); rec.Code != 200 {
			t.Fatalf("got %d", rec.Code)
		}
		if got := s.get().body; got != string(buf) || sawLength != int64(len(buf)) || s.get().header.Get("Content-Length") != itoa(len(buf)) {
			t.Errorf("service got %d bytes with length %d, want %d", len(got), sawLength, len(buf))
		}
	})
}
