package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/router"
)

// startBare starts an admin with no sources, for tests that need no CA.
func startBare(t *testing.T, opts Options) *Admin {
	t.Helper()
	if opts.Address == "" {
		opts.Address = "127.0.0.1:0"
	}
	a := New(opts)
	if err := a.Start(context.Background(), Sources{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestAuth(t *testing.T) {
	a := startBare(t, Options{Token: testToken})
	for _, e := range a.endpoints() {
		if !e.auth {
			continue
		}
		path := strings.ReplaceAll(e.path, "{name}", "x.example.test")
		if strings.HasPrefix(path, "/debug/pprof/") {
			path += "?seconds=1" // not the CPU profile's default 30
		}
		for _, tc := range []struct {
			name, header string
			want         int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"wrong token", "Bearer wrong-" + testToken, http.StatusUnauthorized},
			{"prefix of the token", "Bearer " + testToken[:5], http.StatusUnauthorized},
			{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
			{"right token", "Bearer " + testToken, 0},
		} {
			t.Run(e.method+" "+e.path+" "+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(e.method, a.URL()+path, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if tc.want == 0 {
					if resp.StatusCode == http.StatusUnauthorized {
						t.Fatalf("status = 401 with the right token")
					}
					return
				}
				if resp.StatusCode != tc.want {
					t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("content type = %q, want application/problem+json", ct)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate header")
				}
				var p Problem
				if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Type != ProblemUnauthorized || p.Detail == "" {
					t.Errorf("problem = %+v (%v), want type %s with a detail", p, err, ProblemUnauthorized)
				}
			})
		}
	}
}

func TestPublicFilesAndErrors(t *testing.T) {
	a := startBare(t, Options{Token: testToken})
	tests := []struct {
		method, path string
		want         int
		ctype        string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/ui/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/api/v1/openapi.json", 200, "application/json"},
		{"GET", "/nothing-here", 404, "text/plain; charset=utf-8"},
		{"GET", "/api/v1/nothing", 404, "application/problem+json"},
		{"DELETE", "/api/v1/certificates", 405, "application/problem+json"},
		{"GET", "/api/v1/certificates/x/renew", 405, "application/problem+json"},
		{"POST", "/", 405, "text/plain; charset=utf-8"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := call(t, a.URL(), tc.method, tc.path, "", "")
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.want, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("content type = %q, want %q", got, tc.ctype)
			}
			if tc.want == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			if tc.path == "/" && tc.method == "GET" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("CSP = %q", resp.Header.Get("Content-Security-Policy"))
			}
		})
	}
	t.Run("no external URLs in the dashboard", func(t *testing.T) {
		for _, f := range []string{"ui/index.html", "ui/app.js", "ui/style.css"} {
			data, err := uiFiles.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
				if bytes.Contains(data, []byte(bad)) {
					t.Errorf("%s contains %q: the dashboard must load nothing from elsewhere", f, bad)
				}
			}
		}
	})
}

func TestTokenGenerated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "storage")
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	file := filepath.Join(dir, "admin.token")
	a := startBare(t, Options{TokenFile: file, Logger: logger})
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < 40 {
		t.Fatalf("token %d characters, want at least 40", len(tok))
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{file, 0o600}, {dir, 0o700}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("%s mode = %v, want %v", filepath.Base(c.path), got, c.want)
		}
	}
	if resp, _ := call(t, a.URL(), "GET", "/api/v1/certificates", tok, ""); resp.StatusCode != 200 {
		t.Errorf("generated token refused: %d", resp.StatusCode)
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the token appears in the log")
	}
	if !strings.Contains(logs.String(), file) {
		t.Errorf("the log does not say where the token is:\n%s", logs.String())
	}
	// A restart keeps the token, so scripts reading the file keep working.
	b := startBare(t, Options{TokenFile: file, Logger: logger})
	if resp, _ := call(t, b.URL(), "GET", "/api/v1/certificates", tok, ""); resp.StatusCode != 200 {
		t.Errorf("token not reused after restart: %d", resp.StatusCode)
	}
	// A non-loopback address never gets a generated token.
	c := New(Options{Address: "0.0.0.0:0", TokenFile: file})
	if err := c.Start(context.Background(), Sources{}); err == nil || !strings.Contains(err.Error(), "admin.token") {
		_ = c.Close()
		t.Errorf("start on 0.0.0.0 without a token: err = %v, want a refusal naming admin.token", err)
	}
}

func TestConfigAdminSection(t *testing.T) {
	base := "entryPoints: {web: {address: \"127.0.0.1:0\"}}\n"
	tests := []struct {
		name, admin, wantAddr, wantErr string
	}{
		{"default", "", "127.0.0.1:9180", ""},
		{"loopback v6", "admin: {address: \"[::1]:9180\"}", "[::1]:9180", ""},
		{"localhost", "admin: {address: \"localhost:9180\"}", "localhost:9180", ""},
		{"public with token", "admin: {address: \"0.0.0.0:9180\", token: s3cret}", "0.0.0.0:9180", ""},
		{"public without token", "admin: {address: \"0.0.0.0:9180\"}", "", "reachable from other machines and admin.token is not set"},
		{"all interfaces without token", "admin: {address: \":9180\"}", "", "admin.token is not set"},
		{"not host:port", "admin: {address: \"9180\"}", "", "admin.address \"9180\": not host:port"},
		{"disabled skips checks", "admin: {address: \"0.0.0.0:9180\", disabled: true}", "0.0.0.0:9180", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("t.yaml", []byte(base+tc.admin), func(string) string { return "" })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "t.yaml:") {
					t.Errorf("err %q does not name the line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Admin.Address != tc.wantAddr {
				t.Errorf("address = %q, want %q", c.Admin.Address, tc.wantAddr)
			}
		})
	}
}

func TestCertState(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	st := func(before, after time.Duration, failures int) certmgr.Status {
		s := certmgr.Status{Failures: failures}
		if after != 0 {
			s.NotBefore, s.NotAfter = now.Add(before), now.Add(after)
		}
		return s
	}
	tests := []struct {
		name string
		s    certmgr.Status
		want string
	}{
		{"fresh 90-day", st(-day, 89*day, 0), StateValid},
		{"90-day with 6 days left", st(-84*day, 6*day, 0), StateExpiring},
		{"expired", st(-91*day, -day, 0), StateExpired},
		{"expired and failing stays expired", st(-91*day, -day, 4), StateExpired},
		{"valid but renewal failing", st(-60*day, 30*day, 2), StateFailing},
		{"6-day cert with 5 days left is fine (traefik#12946)", st(-day, 5*day, 0), StateValid},
		{"6-day cert with 1 day left", st(-5*day, day, 0), StateExpiring},
		{"first order running", st(0, 0, 0), StatePending},
		{"never issued, failing", st(0, 0, 3), StateMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := certState(tc.s, now); got != tc.want {
				t.Fatalf("state = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRouteIndex(t *testing.T) {
	ix := indexRoutes([]router.RouteInfo{
		{Name: "a", Host: "a.example.test"}, {Name: "a-api", Host: "A.example.test"},
		{Name: "b", Host: "b.example.test"}, {Name: "deep", Host: "x.b.example.test"},
		{Name: "apex", Host: "example.test"}, {Name: "wild", Host: "*.example.test"}, {Name: "any"},
	})
	tests := []struct {
		domains []string
		want    []string
	}{
		{[]string{"a.example.test"}, []string{"a", "a-api"}},
		{[]string{"*.example.test"}, []string{"a", "a-api", "b", "wild"}},
		{[]string{"example.test", "*.b.example.test"}, []string{"apex", "deep"}},
		{[]string{"other.test"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.domains, ","), func(t *testing.T) {
			if got := ix.covered(tc.domains); !slices.Equal(got, tc.want) {
				t.Fatalf("covered(%v) = %v, want %v", tc.domains, got, tc.want)
			}
		})
	}
}
