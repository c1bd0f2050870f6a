package middleware

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
)

// errorPages replaces an answer whose status is listed by a page from
// another service: GET query (with {status} replaced) on that service,
// with the client's headers. The client gets the page's headers and body
// with the original status; the original answer's headers and body are
// dropped. Upgrades pass untouched.
type errorPages struct {
	ranges [][2]int
	query  string
	svc    Next
}

func newErrorPages(c *config.ErrorPages, env Env) (*errorPages, error) {
	m := &errorPages{query: c.Query}
	for _, s := range c.Status {
		lo, hi, err := config.ParseStatusRange(s)
		if err != nil {
			return nil, err
		}
		m.ranges = append(m.ranges, [2]int{lo, hi})
	}
	if env.Service != nil {
		m.svc = env.Service(c.Service)
	}
	if m.svc == nil {
		return nil, errors.New("service " + strconv.Quote(c.Service) + " is missing")
	}
	return m, nil
}

func (m *errorPages) listed(code int) bool {
	for _, r := range m.ranges {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

func (m *errorPages) Wrap(next Next) Next {
	return func(w http.ResponseWriter, r *http.Request, st *proxy.Stats) {
		if r.Header["Upgrade"] != nil {
			next(w, r, st)
			return
		}
		ew := errorWriters.Get().(*errorWriter)
		ew.rw, ew.m = w, m
		if ew.h == nil {
			ew.h = http.Header{}
		}
		next(ew, r, st)
		caught := ew.caught
		clear(ew.h)
		ew.rw, ew.m, ew.status, ew.caught = nil, nil, 0, 0
		errorWriters.Put(ew)
		if caught != 0 {
			m.page(w, r, caught)
		}
	}
}

// page answers with the error page for status.
func (m *errorPages) page(w http.ResponseWriter, r *http.Request, status int) {
	pr := r.Clone(r.Context())
	pr.Method, pr.Body, pr.ContentLength, pr.GetBody = http.MethodGet, http.NoBody, 0, nil
	pr.TransferEncoding = nil
	delete(pr.Header, "Content-Length")
	delete(pr.Header, "Content-Type")
	q := strings.ReplaceAll(m.query, "{status}", strconv.Itoa(status))
	path, rawQuery, _ := strings.Cut(q, "?")
	pr.URL.Path, pr.URL.RawPath, pr.URL.RawQuery = path, "", rawQuery
	pr.RequestURI = ""
	var st proxy.Stats
	m.svc(&fixedStatus{ResponseWriter: w, status: status}, pr, &st)
}

var errorWriters = sync.Pool{New: func() any { return new(errorWriter) }}

// errorWriter holds the service's headers apart until its status is
// known: a listed status is caught (headers and body dropped), any other
// goes out with its headers.
type errorWriter struct {
	rw     http.ResponseWriter
	m      *errorPages
	h      http.Header
	status int
	caught int
}

func (w *errorWriter) Header() http.Header { return w.h }

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *errorWriter) Unwrap() http.ResponseWriter { return w.rw }

func (w *errorWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	dst := w.rw.Header()
	if code < 200 {
		// An informational answer passes with its own headers only.
		for k, vv := range w.h {
			dst[k] = append(dst[k], vv...)
		}
		w.rw.WriteHeader(code)
		for k := range w.h {
			delete(dst, k)
		}
		return
	}
	w.status = code
	if w.m.listed(code) {
		w.caught = code
		return
	}
	for k, vv := range w.h {
		dst[k] = append(dst[k], vv...)
	}
	w.rw.WriteHeader(code)
}

func (w *errorWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.caught != 0 {
		return len(p), nil
	}
	return w.rw.Write(p)
}

// Flush sends the answer so far, unless it was caught.
func (w *errorWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.caught == 0 {
		_ = http.NewResponseController(w.rw).Flush()
	}
}

// fixedStatus writes an error page with the status of the answer it
// replaces.
type fixedStatus struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *fixedStatus) WriteHeader(code int) {
	if code < 200 || w.wrote {
		return
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(w.status)
}

func (w *fixedStatus) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *fixedStatus) Unwrap() http.ResponseWriter { return w.ResponseWriter }
