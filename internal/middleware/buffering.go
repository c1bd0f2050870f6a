package middleware

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// buffering reads the whole request body before the service sees it:
// in memory up to memBytes, in a temporary file (removed at once, so
// nothing is left behind) beyond. The service then gets a Content-Length,
// and a try that failed can be made again with the same body. A body over
// maxBytes gets 413 (before any of it is read when its length says so).
type buffering struct {
	maxBytes, memBytes int64
	log                *slog.Logger
}

func newBuffering(c *config.Buffering, log *slog.Logger) *buffering {
	return &buffering{maxBytes: c.MaxRequestBodyBytes, memBytes: c.MemRequestBodyBytes, log: log}
}

var errTooLarge = errors.New("request body too large")

func (m *buffering) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		if r.Body == nil || r.Body == http.NoBody {
			next(w, r, st)
			return
		}
		if r.ContentLength > m.maxBytes {
			tooLarge(w, m.maxBytes)
			return
		}
		body, n, cleanup, err := m.read(clientBody{r.Body})
		if cleanup != nil {
			defer cleanup()
		}
		if err != nil {
			m.fail(w, r, err)
			return
		}
		_ = r.Body.Close()
		r.ContentLength = n
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		delete(r.Header, "Transfer-Encoding")
		r.TransferEncoding = nil
		r.Body = io.NopCloser(io.NewSectionReader(body, 0, n))
		r.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(body, 0, n)), nil
		}
		if n == 0 {
			r.Body, r.GetBody = http.NoBody, nil
		}
		next(w, r, st)
	}
}

// read reads body whole, in memory up to memBytes, then in a temporary
// file; cleanup closes the file.
func (m *buffering) read(body io.Reader) (io.ReaderAt, int64, func(), error) {
	var mem bytes.Buffer
	n, err := io.Copy(&mem, io.LimitReader(body, m.memBytes+1))
	if err != nil {
		return nil, 0, nil, err
	}
	if n <= m.memBytes {
		return bytes.NewReader(mem.Bytes()), n, nil, nil
	}
	if n > m.maxBytes {
		return nil, 0, nil, errTooLarge
	}
	f, err := os.CreateTemp("", "zoku-body-*")
	if err != nil {
		return nil, 0, nil, err
	}
	_ = os.Remove(f.Name()) // the open file stays readable
	cleanup := func() { _ = f.Close() }
	if _, err := f.Write(mem.Bytes()); err != nil {
		return nil, 0, cleanup, err
	}
	rest, err := io.Copy(f, io.LimitReader(body, m.maxBytes-n+1))
	if err != nil {
		return nil, 0, cleanup, err
	}
	if n+rest > m.maxBytes {
		return nil, 0, cleanup, errTooLarge
	}
	return f, n + rest, cleanup, nil
}

// clientBody marks the errors of reading the client's body, to tell them
// from the temporary file's.
type clientBody struct{ r io.Reader }

func (b clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &clientError{err}
	}
	return n, err
}

// clientError is an error reading the client's body.
type clientError struct{ err error }

func (e *clientError) Error() string { return "read request body: " + e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// fail answers a body that could not be buffered: 413 over this limit or
// the entry point's, 408 when the client was too slow, 400 when its body
// was malformed or cut short, and 500 when the temporary file failed
// (logged: the operator must fix it, the client cannot).
func (m *buffering) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *clientError
	var maxErr *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.Is(err, errTooLarge):
		tooLarge(w, m.maxBytes)
	case errors.As(err, &maxErr):
		tooLarge(w, maxErr.Limit)
	case r.Context().Err() != nil:
		// The client went away: nobody to answer.
	case !errors.As(err, &ce):
		m.log.Error("cannot buffer a request body; check the temporary folder (TMPDIR) is writable and has room", "error", err)
		plainError(w, "500 internal server error: the request body could not be buffered", http.StatusInternalServerError)
	case errors.As(err, &ne) && ne.Timeout():
		plainError(w, "408 request timeout: the request body did not arrive in time", http.StatusRequestTimeout)
	default:
		plainError(w, "400 bad request: the request body could not be read", http.StatusBadRequest)
	}
}

func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Connection", "close")
	plainError(w, "413 request body larger than "+strconv.FormatInt(limit, 10)+" bytes", http.StatusRequestEntityTooLarge)
}
