// Package testenv starts the real parts zoku's tests run against — the
// embedded Pebble CA, one challtestsrv DNS server per test binary, and a
// lego httpreq endpoint backed by it — on loopback. Import it from _test.go
// files only.
package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/acmeclient"
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
		if t.Failed() {
			// A CA that stopped answering shows where it waits.
			t.Logf("testenv: the embedded CA's goroutines when the test failed:\n%s", caStacks())
		}
		if err := ca.Close(); err != nil {
			t.Errorf("testenv: close embedded CA: %v", err)
		}
	})
	return ca
}

// caStacks returns the stacks of the goroutines running Pebble or the
// embedded CA around it: alike stacks (arguments aside) counted once, the
// rarest first (a goroutine holding what the others wait for is usually
// alone), at most 64 KiB.
func caStacks() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	count, head := map[string]int{}, map[string]string{}
	var order []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "letsencrypt/pebble") && !strings.Contains(g, "internal/embedca") {
			continue
		}
		// The first line names the goroutine and how long it has
		// waited; the calls, without their arguments, tell which
		// goroutines are alike.
		first, stack, _ := strings.Cut(g, "\n")
		stack = stackArgs.ReplaceAllString(stack, "(...)$1")
		if count[stack] == 0 {
			order = append(order, stack)
			head[stack] = first
		}
		count[stack]++
	}
	sort.SliceStable(order, func(i, j int) bool { return count[order[i]] < count[order[j]] })
	var b strings.Builder
	for _, k := range order {
		fmt.Fprintf(&b, "%d like %s\n%s\n\n", count[k], head[k], k)
		if b.Len() > 64<<10 {
			b.WriteString("(cut at 64 KiB)\n")
			break
		}
	}
	return b.String()
}

// stackArgs matches the argument list of a call in a goroutine's stack.
var stackArgs = regexp.MustCompile(`\([^()\n]*\)(\n|$)`)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (it
// binds a random port below the ephemeral range and closes it). Another
// process may still take it before the caller binds it; picking outside
// the range that listen(":0") uses makes that rare.
func FreePort(t testing.TB) int {
	t.Helper()
	// The port is picked at random below the kernel's ephemeral range
	// (32768 and up on Linux), where listen(":0") and outgoing connections
	// of other test binaries running in parallel take theirs, so the
	// window between this check and the caller's bind is not shared with
	// them.
	for range 200 {
		port := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		if err := ln.Close(); err != nil {
			t.Fatalf("testenv: find a free port: %v", err)
		}
		return port
	}
	t.Fatal("testenv: no free port found in 20000-31999 after 200 tries")
	return 0
}

// Client returns an ACME client with a new, registered account at ca that
// answers challenges with solvers.
func Client(t testing.TB, ctx context.Context, ca *embedca.CA, solvers acmeclient.Solvers) *acmeclient.Client {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := acmeclient.New(ctx, acmeclient.Config{Server: ca.DirectoryURL(), HTTPClient: ca.HTTPClient(), Solvers: solvers}, &acmeclient.Account{Key: key})
	if err != nil {
		t.Fatalf("testenv: ACME client: %v", err)
	}
	if _, err := c.Register(ctx, acmeclient.RegisterOptions{AcceptTOS: true}); err != nil {
		t.Fatalf("testenv: register: %v", err)
	}
	return c
}
