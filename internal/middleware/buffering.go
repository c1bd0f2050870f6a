package middleware

import (
	"bytes"
	"errors"
	"io"
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
}

func newBuffering(c *config.Buffering) *buffering {
	return &buffering{maxBytes: c.MaxRequestBodyBytes, memBytes: c.MemRequestBodyBytes}
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
		body, n, cleanup, err := m.read(r.Body)
		if cleanup != nil {
			defer cleanup()
		}
		switch {
		case errors.Is(err, errTooLarge):
			tooLarge(w, m.maxBytes)
			return
		case err != nil:
			if r.Context().Err() == nil {
				plainError(w, "400 bad request: the request body could not be read", http.StatusBadRequest)
			}
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

func tooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Connection", "close")
	plainError(w, "413 request body larger than "+strconv.FormatInt(limit, 10)+" bytes", http.StatusRequestEntityTooLarge)
}
