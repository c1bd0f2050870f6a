package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zoku/zoku/internal/config"
)

// client sends one request with the given cookies and returns the body
// and the response's cookies.
func cookieGet(t *testing.T, url string, cookies ...*http.Cookie) (string, []*http.Cookie) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.Cookies()
}

func TestStickyCookie(t *testing.T) {
	a, b, c := startBackend(t, "a", nil), startBackend(t, "b", nil), startBackend(t, "c", nil)
	retries := 2
	svc := newService(t, &config.Service{
		Servers: servers(a.url(), b.url(), c.url()), Retries: &retries,
		Sticky: &config.Sticky{Cookie: config.StickyCookie{Name: "lb", Secure: true, HTTPOnly: true, SameSite: "strict", Path: "/"}},
	}, nil, Options{})
	f := startFront(t, svc)
	first, cookies := cookieGet(t, f.URL)
	if len(cookies) != 1 || cookies[0].Name != "lb" || !cookies[0].Secure || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies %v, want one lb cookie, Secure, HttpOnly, SameSite=Strict", cookies)
	}
	if strings.Contains(cookies[0].Value, "127.0.0.1") || len(cookies[0].Value) != 16 {
		t.Errorf("cookie value %q should be a 16-digit hash, not an address", cookies[0].Value)
	}
	for i := range 6 {
		got, again := cookieGet(t, f.URL, cookies[0])
		if got != first || len(again) != 0 {
			t.Fatalf("request %d with the cookie went to %s (new cookies %v), want %s and no new cookie", i, got, again, first)
		}
	}
	// The server goes away: the request is retried elsewhere and the
	// cookie moves with it.
	map[string]*backend{"a": a, "b": b, "c": c}[first].kill()
	moved, newCookies := cookieGet(t, f.URL, cookies[0])
	if moved == first || len(newCookies) != 1 || newCookies[0].Value == cookies[0].Value {
		t.Fatalf("after %s went away: answered by %q with cookies %v", first, moved, newCookies)
	}
	for range 3 {
		if got, _ := cookieGet(t, f.URL, newCookies[0]); got != moved {
			t.Fatalf("went to %s, want %s (the new cookie's)", got, moved)
		}
	}
}

func TestFailover(t *testing.T) {
	clk := newClock()
	prim := startBackend(t, "primary", nil)
	fb := startBackend(t, "fallback", nil)
	zero := 0
	primary := newService(t, &config.Service{Servers: servers(prim.url()), Retries: &zero,
		PassiveHealth: &config.PassiveHealth{MaxFailures: 1, Window: config.Duration(time.Minute), Cooldown: config.Duration(time.Minute)}},
		nil, Options{Now: clk.Now})
	fallback := newService(t, &config.Service{Servers: servers(fb.url())}, nil, Options{})
	f := startFront(t, NewFailover("fo", primary, fallback))
	if _, body := f.do(t, "GET", "/", ""); body != "primary" {
		t.Fatalf("got %q, want primary", body)
	}
	prim.kill()
	if code, _ := f.do(t, "GET", "/", ""); code != http.StatusBadGateway {
		t.Fatalf("primary down, first request: %d, want 502 (passive health learns from it)", code)
	}
	for range 3 {
		if _, body := f.do(t, "GET", "/", ""); body != "fallback" {
			t.Fatalf("got %q, want fallback", body)
		}
	}
	prim.restart(t)
	clk.Advance(2 * time.Minute) // the cooldown ends
	if _, body := f.do(t, "GET", "/", ""); body != "primary" {
		t.Fatalf("after the cooldown: got %q, want primary", body)
	}
}

// stubChild is a child service with a fixed name and availability.
type stubChild struct {
	name string
	up   bool
}

func (s *stubChild) ServeWithStats(w http.ResponseWriter, _ *http.Request, _ *Stats) {
	_, _ = io.WriteString(w, s.name)
}
func (s *stubChild) Available() bool { return s.up }

func TestWeighted(t *testing.T) {
	a, b := &stubChild{"a", true}, &stubChild{"b", true}
	w := NewWeighted("w", []WeightedChild{{Name: "a", Child: a, Weight: 3}, {Name: "b", Child: b, Weight: 1}}, nil)
	var seq strings.Builder
	for range 8 {
		rec := httptest.NewRecorder()
		w.ServeWithStats(rec, httptest.NewRequest("GET", "/", nil), nil)
		seq.WriteString(rec.Body.String())
	}
	if got := seq.String(); strings.Count(got, "a") != 6 || strings.Contains(got, "bb") || strings.Contains(got, "aaaa") {
		t.Errorf("sequence %q, want 6 a and 2 b, interleaved", got)
	}
	a.up = false
	for range 3 {
		rec := httptest.NewRecorder()
		w.ServeWithStats(rec, httptest.NewRequest("GET", "/", nil), nil)
		if rec.Body.String() != "b" {
			t.Fatalf("a down: got %q, want b", rec.Body.String())
		}
	}
	b.up = false
	rec := httptest.NewRecorder()
	w.ServeWithStats(rec, httptest.NewRequest("GET", "/", nil), nil)
	if rec.Code != http.StatusServiceUnavailable || w.Available() {
		t.Errorf("all down: %d, available %v; want 503, false", rec.Code, w.Available())
	}
}

func TestWeightedSticky(t *testing.T) {
	a, b := &stubChild{"a", true}, &stubChild{"b", true}
	w := NewWeighted("w", []WeightedChild{{Name: "a", Child: a}, {Name: "b", Child: b}}, &config.Sticky{Cookie: config.StickyCookie{Name: "s", Path: "/"}})
	rec := httptest.NewRecorder()
	w.ServeWithStats(rec, httptest.NewRequest("GET", "/", nil), nil)
	cookie := (&http.Response{Header: rec.Header()}).Cookies()
	if len(cookie) != 1 {
		t.Fatalf("cookies %v", cookie)
	}
	first := rec.Body.String()
	for range 5 {
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(cookie[0])
		rec := httptest.NewRecorder()
		w.ServeWithStats(rec, req, nil)
		if rec.Body.String() != first {
			t.Fatalf("went to %s, want %s", rec.Body.String(), first)
		}
	}
}

func TestMirroring(t *testing.T) {
	type copyOf struct{ path, body string }
	copies := make(chan copyOf, 100)
	release := make(chan struct{})
	mirrorB := startBackend(t, "mirror", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		copies <- copyOf{r.URL.Path, string(b)}
		<-release // the client must not wait for this
	})
	mainB := startBackend(t, "main", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "main got "+itoa(len(b)))
	})
	mainSvc := newService(t, &config.Service{Servers: servers(mainB.url())}, nil, Options{})
	mirrorSvc := newService(t, &config.Service{Servers: servers(mirrorB.url())}, nil, Options{})
	m := NewMirroring("m", mainSvc, []MirrorChild{{Child: mirrorSvc, Percent: 50}}, 1024, 10, nil)
	f := startFront(t, m)
	for i := range 10 {
		if code, body := f.do(t, "POST", "/r"+itoa(i+1), "payload-"+itoa(i+1)); code != 200 || body != "main got "+itoa(len("payload-"+itoa(i+1))) {
			t.Fatalf("request %d: %d %q", i+1, code, body)
		}
	}
	got := map[string]string{}
	for range 5 {
		select {
		case c := <-copies:
			got[c.path] = c.body
		case <-time.After(testWait):
			t.Fatalf("mirror got %d copies, want 5", len(got))
		}
	}
	for _, n := range []string{"2", "4", "6", "8", "10"} {
		if got["/r"+n] != "payload-"+n {
			t.Errorf("mirror copies %v: want /r%s with its body", got, n)
		}
	}
	// A body over maxBodyBytes reaches the main service whole and is not
	// mirrored.
	big := strings.Repeat("x", 5000)
	if _, body := f.do(t, "POST", "/big", big); body != "main got 5000" {
		t.Errorf("big body: main answered %q", body)
	}
	close(release)
}

func TestMirrorShare(t *testing.T) {
	for _, pct := range []uint64{0, 1, 10, 33, 50, 100} {
		mr := &mirror{percent: pct}
		n := 0
		for range 1000 {
			if mr.chosen() {
				n++
			}
		}
		if n != int(pct*10) {
			t.Errorf("%d%%: %d of 1000 chosen, want %d", pct, n, pct*10)
		}
	}
}

// TestGRPCToHTTPSBackend: gRPC over HTTP/2 from the client to the proxy
// and from the proxy to an https:// gRPC server (HTTP/2 by ALPN).
func TestGRPCToHTTPSBackend(t *testing.T) {
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	back := httptest.NewUnstartedServer(gs)
	back.EnableHTTP2 = true
	back.StartTLS()
	t.Cleanup(back.Close)
	svc := newService(t, &config.Service{Servers: servers(back.URL)}, nil, Options{TLSClientConfig: &tls.Config{RootCAs: back.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}})
	front := httptest.NewUnstartedServer(svc)
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	conn, err := grpc.NewClient(strings.TrimPrefix(front.URL, "https://"),
		grpc.WithTransportCredentials(credentials.NewTLS(front.Client().Transport.(*http.Transport).TLSClientConfig)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "app"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v %v", resp, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
