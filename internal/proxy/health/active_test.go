package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// probeServer answers the probe paths used below on loopback.
func probeServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "zoku-health-check" {
			http.Error(w, "bad user agent", http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/base/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "deep=1" {
			http.Error(w, "query lost", http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees hung handlers
	return srv
}

// refusedURL is a loopback URL whose port has no listener.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestCheckNow(t *testing.T) {
	srv := probeServer(t)
	now := time.Unix(5000, 0)
	tests := []struct {
		name    string
		base    string
		cfg     Active
		wantUp  bool
		wantErr string
	}{
		{"2xx is up", srv.URL, Active{Path: "/ok"}, true, ""},
		{"5xx is down", srv.URL, Active{Path: "/fail"}, false, "answered 500, want 2xx or 3xx"},
		{"3xx is up and not followed", srv.URL, Active{Path: "/moved"}, true, ""},
		{"expected status matches", srv.URL, Active{Path: "/empty", ExpectedStatus: 204}, true, ""},
		{"expected status differs", srv.URL, Active{Path: "/ok", ExpectedStatus: 204}, false, "answered 200, want 204"},
		{"path joins the server's base path", srv.URL + "/base/", Active{Path: "/ok?deep=1"}, true, ""},
		{"timeout is down", srv.URL, Active{Path: "/hang", Timeout: 50 * time.Millisecond}, false, "deadline exceeded"},
		{"refused is down", refusedURL(t), Active{Path: "/ok"}, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			s := reg.Acquire(tt.base)
			c, err := NewChecker(tt.cfg, []*Server{s}, CheckerOptions{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.CheckNow(context.Background())
			st := s.Status(now)
			if st.Up != tt.wantUp {
				t.Errorf("Up = %v, want %v (last error %q)", st.Up, tt.wantUp, st.LastError)
			}
			if !strings.Contains(st.LastError, tt.wantErr) || (tt.wantErr == "") != (st.LastError == "") {
				t.Errorf("LastError = %q, want it to contain %q", st.LastError, tt.wantErr)
			}
			if !st.LastCheck.Equal(now) {
				t.Errorf("LastCheck = %v, want %v", st.LastCheck, now)
			}
		})
	}
}

func TestNewCheckerErrors(t *testing.T) {
	tests := []struct {
		name, path, url, want string
	}{
		{"relative path", "healthz", "http://127.0.0.1:1", "must be an absolute path"},
		{"absolute URL path", "http://evil/", "http://127.0.0.1:1", "must be an absolute path"},
		{"bad server URL", "/", "127.0.0.1:1", "must be an absolute http:// or https:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewChecker(Active{Path: tt.path}, []*Server{{url: tt.url}}, CheckerOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "health: ") {
				t.Errorf("NewChecker error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckerLoop(t *testing.T) {
	probed := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case probed <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	s := NewRegistry().Acquire(srv.URL)
	c, err := NewChecker(Active{Interval: time.Hour}, []*Server{s}, CheckerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	c.Start() // no-op
	select {
	case <-probed:
	case <-time.After(10 * time.Second):
		t.Fatal("Start: no probe within 10s, want one at once")
	}
	c.Close() // waits for the loop
	c.Close() // idempotent
	c.Start() // after Close: no-op
}
