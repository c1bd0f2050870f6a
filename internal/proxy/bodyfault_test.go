package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/config"
)

// failingBody gives some bytes, then err.
func failingBody(err error) io.Reader {
	return io.MultiReader(strings.NewReader("part of a body"), errReader{err})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestClientBodyFaultIsNotAFailure checks that a request whose own body
// cannot be read (over the entry point's limit, too slow, malformed) is
// answered for what it is, on both ways to the server, and does not count
// against the server: one such failure would take it out here.
func TestClientBodyFaultIsNotAFailure(t *testing.T) {
	bodies := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{"over maxBodyBytes", &http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge, "request body too large: the limit is 10 bytes\n"},
		{"too slow", os.ErrDeadlineExceeded, http.StatusRequestTimeout, "request timeout: the request body did not arrive in time\n"},
		{"malformed", errors.New("http: malformed chunked encoding"), http.StatusBadRequest, "bad request: the request body is malformed or incomplete\n"},
		{"cut short", io.ErrUnexpectedEOF, http.StatusBadRequest, "bad request: the request body is malformed or incomplete\n"},
	}
	for _, way := range []string{"fast path", "net/http"} {
		for _, tt := range bodies {
			t.Run(way+"/"+tt.name, func(t *testing.T) {
				b := startBackend(t, "b", echo("b"))
				infos := make(chan RequestInfo, 2)
				svc := newService(t, &config.Service{
					Servers:       servers(b.url(), b.url()+"/"),
					PassiveHealth: &config.PassiveHealth{MaxFailures: 1},
				}, nil, Options{Observer: func(i RequestInfo) { infos <- i }})
				svc.fast = way == "fast path"

				req := httptest.NewRequest(http.MethodPost, "http://app.test/", failingBody(tt.err))
				req.ContentLength = -1
				rec := httptest.NewRecorder()
				svc.ServeHTTP(rec, req)
				if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
					t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
				}
				if info := <-infos; info.Attempts != 1 || info.Status != tt.wantStatus {
					t.Errorf("RequestInfo = %+v, want %d after 1 attempt", info, tt.wantStatus)
				}
				for i, st := range svc.Servers() {
					if !st.Up || st.LastError != "" {
						t.Errorf("server %d after the client's fault: %+v, want up with no error", i, st)
					}
				}
				// Both servers still take requests.
				for range 2 {
					rec := httptest.NewRecorder()
					svc.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://app.test/", nil))
					if rec.Code != http.StatusOK {
						t.Errorf("next request: %d %q, want 200", rec.Code, rec.Body.String())
					}
					<-infos
				}
			})
		}
	}
}
