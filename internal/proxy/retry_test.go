package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
)

// dropper reads the request and closes the connection without answering:
// the request was sent, so only idempotent methods may be retried.
func dropper(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// echo answers "<name>:<body>".
func echo(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, name+":"+string(b))
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name         string
		first        string // "refuse" or "drop"
		only         bool   // no second server
		retries      *int
		method, body string
		wantStatus   int
		wantBody     string
		wantAttempts int
		wantSecond   int64 // hits on the second server
	}{
		{"GET refused is retried", "refuse", false, nil, "GET", "", 200, "b:", 2, 1},
		{"POST refused is retried with its body", "refuse", false, nil, "POST", "payload", 200, "b:payload", 2, 1},
		{"POST sent is not retried", "drop", false, nil, "POST", "payload", 502, "bad gateway: no answer from service app\n", 1, 0},
		{"GET sent is retried", "drop", false, nil, "GET", "", 200, "b:", 2, 1},
		{"PUT with a read body is not retried", "drop", false, nil, "PUT", "payload", 502, "bad gateway: no answer from service app\n", 1, 0},
		{"DELETE without body sent is retried", "drop", false, nil, "DELETE", "", 200, "b:", 2, 1},
		{"retries 0", "refuse", false, intp(0), "GET", "", 502, "bad gateway: no answer from service app\n", 1, 0},
		{"never the same server twice", "refuse", true, intp(3), "GET", "", 502, "bad gateway: no answer from service app\n", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first string
			switch tt.first {
			case "refuse":
				first = refusedURL(t)
			case "drop":
				first = startBackend(t, "a", dropper).url()
			}
			b := startBackend(t, "b", echo("b"))
			srvs := servers(first, b.url())
			if tt.only {
				srvs = srvs[:1]
			}
			// Round-robin starts at the first server.
			f := startFront(t, newService(t, &config.Service{Servers: srvs, Retries: tt.retries}, nil, Options{}))
			code, body := f.do(t, tt.method, "/", tt.body)
			if code != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", code, body, tt.wantStatus, tt.wantBody)
			}
			if st := f.nextStats(t); st.Attempts != tt.wantAttempts {
				t.Errorf("Attempts = %d, want %d", st.Attempts, tt.wantAttempts)
			}
			if got := b.hits.Load(); got != tt.wantSecond {
				t.Errorf("second server hits = %d, want %d", got, tt.wantSecond)
			}
		})
	}
}

func TestTryTimeout(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		only         bool
		wantStatus   int
		wantBody     string
		wantAttempts int
	}{
		{"GET is retried elsewhere", "GET", false, 200, "b:", 2},
		{"POST is not retried", "POST", false, 504, "gateway timeout: service app did not answer in time\n", 1},
		{"no other server", "GET", true, 504, "gateway timeout: service app did not answer in time\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			a := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
				select { // hang until the proxy gives up (or the test ends)
				case <-r.Context().Done():
				case <-release:
				}
			})
			t.Cleanup(func() { close(release) })
			b := startBackend(t, "b", echo("b"))
			srvs := servers(a.url(), b.url())
			if tt.only {
				srvs = srvs[:1]
			}
			f := startFront(t, newService(t, &config.Service{
				Servers:    srvs,
				TryTimeout: config.Duration(100 * time.Millisecond),
				Retries:    intp(2),
			}, nil, Options{}))
			code, body := f.do(t, tt.method, "/", "")
			if code != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", code, body, tt.wantStatus, tt.wantBody)
			}
			if st := f.nextStats(t); st.Attempts != tt.wantAttempts {
				t.Errorf("Attempts = %d, want %d", st.Attempts, tt.wantAttempts)
			}
		})
	}
}

// TestClientGoneIsNotAFailure checks that a client hanging up does not
// count against the server.
func TestClientGoneIsNotAFailure(t *testing.T) {
	entered := make(chan struct{})
	a := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	clk := newClock()
	infos := make(chan RequestInfo, 1)
	svc := newService(t, &config.Service{
		Servers:       servers(a.url()),
		PassiveHealth: &config.PassiveHealth{MaxFailures: 1},
	}, nil, Options{Now: clk.Now, Observer: func(i RequestInfo) { infos <- i }})
	f := startFront(t, svc)

	req, err := http.NewRequest(http.MethodGet, f.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		resp, err := f.Client().Do(req.WithContext(ctx))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(testWait):
		t.Fatal("request did not reach the backend")
	}
	cancel()
	<-done
	select {
	case info := <-infos:
		if info.Status != statusClientClosed || info.Attempts != 1 {
			t.Errorf("RequestInfo = %+v, want status %d after 1 attempt", info, statusClientClosed)
		}
	case <-time.After(testWait):
		t.Fatal("Observer not called")
	}
	if st := svc.Servers()[0]; !st.Up || st.LastError != "" {
		t.Errorf("server status = %+v, want up with no error", st)
	}
}

// TestRetryReplaysBufferedBody: a caller that buffered the body and set
// GetBody makes a PUT retryable even after the body was sent.
func TestRetryReplaysBufferedBody(t *testing.T) {
	a := startBackend(t, "a", dropper)
	b := startBackend(t, "b", echo("b"))
	svc := newService(t, &config.Service{Servers: servers(a.url(), b.url())}, nil, Options{})
	buffering := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		svc.ServeHTTP(w, r)
	})
	f := startFront(t, buffering)
	if code, body := f.do(t, http.MethodPut, "/", "payload"); code != 200 || body != "b:payload" {
		t.Errorf("got %d %q, want 200 %q", code, body, "b:payload")
	}
	if st := f.nextStats(t); st.Attempts != 2 || a.hits.Load() != 1 {
		t.Errorf("Attempts = %d, first server hits = %d; want 2 and 1", st.Attempts, a.hits.Load())
	}
}
