package admin

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
)

func TestProfiles(t *testing.T) {
	a := startBare(t, Options{Token: testToken})
	gzipMagic := []byte{0x1f, 0x8b}
	tests := []struct {
		name, path string
		want       int
		body       func([]byte) bool // nil: any
		busy       *atomic.Bool      // set during the request
	}{
		{"CPU profile in pprof's format", "/debug/pprof/profile?seconds=1", 200, func(b []byte) bool { return bytes.HasPrefix(b, gzipMagic) }, nil},
		{"heap in pprof's format", "/debug/pprof/heap", 200, func(b []byte) bool { return bytes.HasPrefix(b, gzipMagic) }, nil},
		{"goroutines as text", "/debug/pprof/goroutine?debug=1", 200, func(b []byte) bool { return bytes.Contains(b, []byte("goroutine profile:")) }, nil},
		{"a delta over a second", "/debug/pprof/allocs?seconds=1", 200, func(b []byte) bool { return bytes.HasPrefix(b, gzipMagic) }, nil},
		{"an unknown profile", "/debug/pprof/cmdline", 404, nil, nil},
		{"no seconds", "/debug/pprof/profile?seconds=0", 400, nil, nil},
		{"too many seconds", "/debug/pprof/trace?seconds=301", 400, nil, nil},
		{"seconds not a number", "/debug/pprof/heap?seconds=1e3", 400, nil, nil},
		{"a huge value", "/debug/pprof/profile?seconds=" + strings.Repeat("9", 100_000), 400, nil, nil},
		{"a second CPU profile", "/debug/pprof/profile?seconds=1", 409, nil, &cpuProfiling},
		{"a second trace", "/debug/pprof/trace?seconds=1", 409, nil, &tracing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.busy != nil {
				tc.busy.Store(true) // as while another request records
				defer tc.busy.Store(false)
			}
			resp, body := call(t, a.URL(), "GET", tc.path, testToken, "")
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d; body %.200s", resp.StatusCode, tc.want, body)
			}
			if tc.body != nil && !tc.body(body) {
				t.Fatalf("body is not what was asked for: %.200q", body)
			}
			if tc.want < 400 {
				return
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("not a problem document: %v; %.200s", err, body)
			}
			if len(p.Detail) > 200 || !strings.Contains(p.Detail, "; ") {
				t.Errorf("detail = %q, want one short line that names the fix", p.Detail)
			}
		})
	}
}
