package middleware

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// TestBufferingFaults checks the answer to a body that cannot be buffered:
// the client's faults are told apart from the temporary file's, which is
// logged for the operator.
func TestBufferingFaults(t *testing.T) {
	big := strings.Repeat("x", 8192) // beyond memory: spooled to a file
	tests := []struct {
		name       string
		body       io.Reader
		noTemp     bool // TMPDIR names a folder that does not exist
		wantStatus int
		wantBody   string
		wantLog    string
	}{
		{"over the entry point's limit", io.MultiReader(strings.NewReader("abc"), errReader{&http.MaxBytesError{Limit: 3}}),
			false, 413, "413 request body larger than 3 bytes\n", ""},
		{"too slow", io.MultiReader(strings.NewReader("abc"), errReader{os.ErrDeadlineExceeded}),
			false, 408, "408 request timeout: the request body did not arrive in time\n", ""},
		{"malformed", io.MultiReader(strings.NewReader("abc"), errReader{errors.New("http: malformed chunked encoding")}),
			false, 400, "400 bad request: the request body could not be read\n", ""},
		{"malformed after memory", io.MultiReader(strings.NewReader(big), errReader{io.ErrUnexpectedEOF}),
			false, 400, "400 bad request: the request body could not be read\n", ""},
		{"no temporary folder", strings.NewReader(big),
			true, 500, "500 internal server error: the request body could not be buffered\n", "check the temporary folder (TMPDIR)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noTemp {
				t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
			}
			var logs bytes.Buffer
			m := build(t, "  m: {buffering: {maxRequestBodyBytes: 1048576, memRequestBodyBytes: 4096}}\n",
				Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			var s seen
			req := httptest.NewRequest("POST", "/", tt.body)
			req.ContentLength = -1
			rec := do(m.Wrap(terminal(&s, nil)), req)
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
			if s.get().n != 0 {
				t.Error("the service saw the request")
			}
			if tt.wantLog == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q, want one naming %q", logs.String(), tt.wantLog)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
