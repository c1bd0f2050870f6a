package http01

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testToken   = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	testKeyAuth = testToken + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)

// client is shared by the tests; its timeout bounds every request.
var client = &http.Client{Timeout: 10 * time.Second}

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestHandler(t *testing.T) {
	sol := NewSolver()
	if err := sol.Present(context.Background(), "example.test", testToken, testKeyAuth); err != nil {
		t.Fatalf("Present: %v", err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "next")
	})
	withNext := httptest.NewServer(sol.Handler(next))
	defer withNext.Close()
	withoutNext := httptest.NewServer(sol.Handler(nil))
	defer withoutNext.Close()

	tests := []struct {
		name       string
		srv        *httptest.Server
		method     string
		path       string
		wantStatus int
		wantBody   string // checked when non-empty
		wantType   string // checked when non-empty
	}{
		{"get known token", withNext, http.MethodGet, PathPrefix + testToken, http.StatusOK, testKeyAuth, "text/plain"},
		{"head known token", withNext, http.MethodHead, PathPrefix + testToken, http.StatusOK, "", "text/plain"},
		{"unknown token", withNext, http.MethodGet, PathPrefix + "bm90LXByZXNlbnRlZA", http.StatusNotFound, "", ""},
		{"token with dot", withNext, http.MethodGet, PathPrefix + "a.b", http.StatusNotFound, "", ""},
		{"token with padding", withNext, http.MethodGet, PathPrefix + testToken + "=", http.StatusNotFound, "", ""},
		{"token with slash", withNext, http.MethodGet, PathPrefix + testToken + "/x", http.StatusNotFound, "", ""},
		{"empty token", withNext, http.MethodGet, PathPrefix, http.StatusNotFound, "", ""},
		{"post to token", withNext, http.MethodPost, PathPrefix + testToken, http.StatusMethodNotAllowed, "", ""},
		{"other path goes to next", withNext, http.MethodGet, "/index.html", http.StatusTeapot, "next", ""},
		{"prefix without slash goes to next", withNext, http.MethodGet, "/.well-known/acme-challenge", http.StatusTeapot, "next", ""},
		{"nil next is 404", withoutNext, http.MethodGet, "/", http.StatusNotFound, "", ""},
		{"nil next still serves token", withoutNext, http.MethodGet, PathPrefix + testToken, http.StatusOK, testKeyAuth, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := get(t, tt.method, tt.srv.URL+tt.path)
			if status != tt.wantStatus {
				t.Errorf("status: got %d, want %d (body %q)", status, tt.wantStatus, body)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body: got %q, want %q", body, tt.wantBody)
			}
			if tt.wantType != "" && h.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type: got %q, want %q", h.Get("Content-Type"), tt.wantType)
			}
			if tt.method == http.MethodHead && status == http.StatusOK {
				if got, want := h.Get("Content-Length"), fmt.Sprint(len(testKeyAuth)); got != want {
					t.Errorf("HEAD Content-Length: got %q, want %q", got, want)
				}
			}
		})
	}
}

func TestPresentRejects(t *testing.T) {
	tests := []struct {
		name, token, keyAuth, want string
	}{
		{"empty token", "", "x.y", "http-01: token is empty or not in the base64url alphabet; refusing to serve it"},
		{"token outside base64url", "abc+def", "abc+def.thumb", "http-01: token is empty or not in the base64url alphabet; refusing to serve it"},
		{"key authorization of another token", testToken, "other.thumb", "http-01: key authorization is not of the form <token>.<account key thumbprint>"},
		{"key authorization without thumbprint", testToken, testToken + ".", "http-01: key authorization is not of the form <token>.<account key thumbprint>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewSolver().Present(context.Background(), "example.test", tt.token, tt.keyAuth)
			if err == nil {
				t.Fatalf("Present: got nil error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Present error: got %q, want %q", err, tt.want)
			}
		})
	}
}

func TestCleanUp(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		cleanUpKey string
		wantServed bool
	}{
		{"matching key authorization removes", testKeyAuth, false},
		{"stale key authorization keeps the newer one", testToken + ".older-thumbprint", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sol Solver // the zero value must work
			if err := sol.Present(ctx, "example.test", testToken, testKeyAuth); err != nil {
				t.Fatalf("Present: %v", err)
			}
			if err := sol.CleanUp(ctx, "example.test", testToken, tt.cleanUpKey); err != nil {
				t.Fatalf("CleanUp: %v", err)
			}
			if _, got := sol.lookup(context.Background(), testToken); got != tt.wantServed {
				t.Errorf("served after CleanUp: got %v, want %v", got, tt.wantServed)
			}
		})
	}
	if err := NewSolver().CleanUp(ctx, "example.test", "unknown", "unknown.x"); err != nil {
		t.Errorf("CleanUp of an unknown token: got %v, want nil", err)
	}
}

// TestConcurrentPresentCleanUpServe runs Present, CleanUp and real HTTP
// requests at once; run it with -race. Counts are fixed, so it is bounded.
func TestConcurrentPresentCleanUpServe(t *testing.T) {
	const workers, rounds = 4, 25
	sol := NewSolver()
	srv, err := sol.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr().String()
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				token := fmt.Sprintf("tok-%d-%d", w, r)
				keyAuth := token + ".thumb"
				if err := sol.Present(ctx, "example.test", token, keyAuth); err != nil {
					errs <- err
					return
				}
				resp, err := client.Get(base + PathPrefix + token)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if resp.StatusCode != http.StatusOK || string(body) != keyAuth {
					errs <- fmt.Errorf("token %s: got %d %q, want 200 %q", token, resp.StatusCode, body, keyAuth)
					return
				}
				if err := sol.CleanUp(ctx, "example.test", token, keyAuth); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := countTokens(sol); n != 0 {
		t.Errorf("tokens left after CleanUp: got %d, want 0", n)
	}
}

func countTokens(s *Solver) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keyAuths)
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		token string
		want  bool
	}{
		{testToken, true},
		{"AZaz09-_", true},
		{"", false},
		{"a=", false},
		{"a+b", false},
		{"a/b", false},
		{strings.Repeat("é", 2), false},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			if got := validToken(tt.token); got != tt.want {
				t.Errorf("validToken(%q): got %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}
