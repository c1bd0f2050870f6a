// Package testenv starts the real parts zoku's tests run against — the
// embedded Pebble CA, one challtestsrv DNS server per test binary, and a
// lego httpreq endpoint backed by it — on loopback. Import it from _test.go
// files only.
package testenv

import (
	"net"
	"testing"

	"github.com/zoku/zoku/internal/embedca"
)

// StartCA starts an embedca.CA for a test and closes it in t.Cleanup. It never
// skips: Pebble runs in-process. Pebble's own log stays off t.Log (it keeps
// logging after the test ends); pass opts.Logger to see it.
func StartCA(t testing.TB, opts embedca.Options) *embedca.CA {
	t.Helper()
	ca, err := embedca.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("testenv: start embedded CA: %v", err)
	}
	t.Cleanup(func() {
		if err := ca.Close(); err != nil {
			t.Errorf("testenv: close embedded CA: %v", err)
		}
	})
	return ca
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (it
// listens on port 0 and closes). Another process may take it before the
// caller binds it; tests accept that small risk.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	return port
}
