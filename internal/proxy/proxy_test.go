package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy/health"
)

func TestNewServiceErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Service
		want string
	}{
		{"nil config", nil, "has no configuration"},
		{"no servers", &config.Service{}, "has no servers; add servers or a static reply"},
		{"static and servers", &config.Service{Static: &config.Static{}, Servers: servers("http://127.0.0.1:1")}, "has both static and servers"},
		{"bad static status", &config.Service{Static: &config.Static{Status: 99}}, "static status 99 must be between 200 and 599"},
		{"unknown strategy", &config.Service{Servers: servers("http://127.0.0.1:1"), Strategy: "random"}, `unknown strategy "random"`},
		{"negative retries", &config.Service{Servers: servers("http://127.0.0.1:1"), Retries: intp(-1)}, "retries is -1"},
		{"no scheme", &config.Service{Servers: servers("127.0.0.1:1")}, "server 1: url"},
		{"ftp scheme", &config.Service{Servers: servers("http://127.0.0.1:1", "ftp://127.0.0.1:1")}, "server 2: url must be an absolute http:// or https:// URL"},
		{"user info", &config.Service{Servers: servers("http://admin:s3cret@127.0.0.1:1")}, "must not carry a user name or password"},
		{"negative weight", &config.Service{Servers: []config.Server{{URL: "http://127.0.0.1:1", Weight: -2}}}, "has weight -2"},
		{"bad health path", &config.Service{Servers: servers("http://127.0.0.1:1"), HealthCheck: &config.HealthCheck{Path: "healthz"}}, "must be an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := health.NewRegistry()
			svc, err := NewService("app", tt.cfg, reg, Options{})
			if err == nil {
				svc.Close()
				t.Fatalf("NewService error = nil, want one containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `proxy: service "app"`) || !strings.Contains(msg, tt.want) {
				t.Errorf("NewService error = %q, want prefix %q and %q", msg, `proxy: service "app"`, tt.want)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("NewService error %q leaks the URL's password", msg)
			}
			if got := reg.Len(); got != 0 {
				t.Errorf("registry holds %d servers after a failed NewService, want 0", got)
			}
		})
	}
}

func TestStatic(t *testing.T) {
	tests := []struct {
		name       string
		static     config.Static
		method     string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"defaults", config.Static{Body: "hello"}, http.MethodGet, 200, "text/plain; charset=utf-8", "hello"},
		{"custom", config.Static{Status: 404, Body: `{"error":"gone"}`, ContentType: "application/json"}, http.MethodPost, 404, "application/json", `{"error":"gone"}`},
		{"head has no body", config.Static{Body: "hello"}, http.MethodHead, 200, "text/plain; charset=utf-8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var infos []RequestInfo
			svc := newService(t, &config.Service{Static: &tt.static}, nil, Options{Observer: func(i RequestInfo) { infos = append(infos, i) }})
			rec := httptest.NewRecorder()
			svc.ServeHTTP(rec, httptest.NewRequest(tt.method, "/x", nil))
			if rec.Code != tt.wantStatus || rec.Header().Get("Content-Type") != tt.wantType || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %q %q, want %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), tt.wantStatus, tt.wantType, tt.wantBody)
			}
			if got, want := rec.Header().Get("Content-Length"), len(tt.static.Body); got != strconv.Itoa(want) {
				t.Errorf("Content-Length = %q, want %d", got, want)
			}
			want := RequestInfo{Service: "app", Status: tt.wantStatus, Bytes: int64(len(tt.wantBody))}
			if len(infos) != 1 || infos[0] != want {
				t.Errorf("Observer got %+v, want one %+v", infos, want)
			}
			if svc.Servers() != nil {
				t.Errorf("Servers() of a static service = %v, want nil", svc.Servers())
			}
		})
	}
}

func TestStrategiesThroughProxy(t *testing.T) {
	a, b, c := startBackend(t, "a", nil), startBackend(t, "b", nil), startBackend(t, "c", nil)
	tests := []struct {
		strategy string
		servers  []config.Server
		n        int
		want     map[string]int
	}{
		{"round-robin", servers(a.url(), b.url(), c.url()), 30, map[string]int{"a": 10, "b": 10, "c": 10}},
		{"weighted", []config.Server{{URL: a.url(), Weight: 3}, {URL: b.url(), Weight: 1}, {URL: c.url(), Weight: 2}}, 30, map[string]int{"a": 15, "b": 5, "c": 10}},
		// Sequential requests leave every server idle: ties go round-robin.
		{"least-requests", servers(a.url(), b.url(), c.url()), 30, map[string]int{"a": 10, "b": 10, "c": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.strategy, func(t *testing.T) {
			f := startFront(t, newService(t, &config.Service{Servers: tt.servers, Strategy: tt.strategy}, nil, Options{}))
			got := map[string]int{}
			for range tt.n {
				code, body := f.do(t, http.MethodGet, "/", "")
				if code != 200 {
					t.Fatalf("status = %d, want 200", code)
				}
				got[body]++
				f.nextStats(t)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("spread = %v, want %v", got, tt.want)
					break
				}
			}
		})
	}
}

func TestStatsAndObserver(t *testing.T) {
	a := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "created!")
	})
	var (
		mu    sync.Mutex
		infos []RequestInfo
	)
	svc := newService(t, &config.Service{Servers: servers(a.url())}, nil, Options{Observer: func(i RequestInfo) {
		mu.Lock()
		infos = append(infos, i)
		mu.Unlock()
	}})
	f := startFront(t, svc)
	if code, body := f.do(t, http.MethodPut, "/thing", "x"); code != 201 || body != "created!" {
		t.Fatalf("got %d %q, want 201 %q", code, body, "created!")
	}
	st := f.nextStats(t)
	if st.Server != a.url() || st.Attempts != 1 || st.UpstreamDuration <= 0 {
		t.Errorf("Stats = %+v, want server %s, 1 attempt, a positive upstream duration", st, a.url())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(infos) != 1 {
		t.Fatalf("Observer called %d times, want 1", len(infos))
	}
	got, want := infos[0], RequestInfo{Service: "app", Server: a.url(), Attempts: 1, Status: 201, Bytes: 8, Upstream: st.UpstreamDuration}
	if got != want {
		t.Errorf("RequestInfo = %+v, want %+v", got, want)
	}
}

func TestNoHealthyServer(t *testing.T) {
	a := startBackend(t, "a", nil)
	clk := newClock()
	svc := newService(t, &config.Service{
		Servers:       servers(a.url()),
		PassiveHealth: &config.PassiveHealth{MaxFailures: 1},
	}, nil, Options{Now: clk.Now})
	svc.ups[0].state.RecordFailure(clk.Now(), svc.passive, nil)
	f := startFront(t, svc)
	code, body := f.do(t, http.MethodGet, "/", "")
	if want := "no healthy server for service app\n"; code != 503 || body != want {
		t.Errorf("got %d %q, want 503 %q", code, body, want)
	}
	if st := f.nextStats(t); st.Attempts != 0 || st.Server != "" {
		t.Errorf("Stats = %+v, want no attempt and no server", st)
	}
	if got := a.hits.Load(); got != 0 {
		t.Errorf("backend hits = %d, want 0", got)
	}
}

func TestHTTPSBackend(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tlsConf := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	svc := newService(t, &config.Service{Servers: servers(tlsSrv.URL)}, nil, Options{TLSClientConfig: tlsConf})
	f := startFront(t, svc)
	if code, body := f.do(t, http.MethodGet, "/", ""); code != 200 || body != "HTTP/2.0" {
		t.Errorf("got %d %q, want 200 %q (HTTP/2 to an https backend)", code, body, "HTTP/2.0")
	}
}
