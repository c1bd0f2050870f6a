package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

// laughs is a "billion laughs": each level is a list of nine aliases to
// the level above, so levels+1 lines stand for 9^levels values.
func laughs(levels int, flow bool) string {
	var b strings.Builder
	b.WriteString("entryPoints:\n  web:\n    address: \":80\"\n")
	b.WriteString("x-l0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i <= levels; i++ {
		if flow {
			fmt.Fprintf(&b, "x-l%d: &l%d [*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
			continue
		}
		fmt.Fprintf(&b, "x-l%d: &l%d\n", i, i)
		for k := 0; k < 9; k++ {
			fmt.Fprintf(&b, "  k%d: *l%d\n", k, i-1)
		}
	}
	return b.String()
}

// bombs are documents whose aliases expand far beyond their size. The
// first is the 409-byte file that took a process to 24 GB.
var bombs = []struct {
	name, file, src, want string
}{
	{"billion laughs in lists", "bomb.yaml", laughs(9, true), "aliases expand the document to more than 2000000 values, the limit (*l6 alone stands for more than 2000000 values)"},
	{"billion laughs in tables", "bomb.yml", laughs(9, false), "aliases expand the document to more than 2000000 values"},
	{"bomb under routes", "bomb.yaml", laughs(8, true) + "routes: *l8\n", "aliases expand the document to more than 2000000 values"},
	{"ratio over the limit", "ratio.yaml", laughs(5, true), "over the 10-fold limit"},
}

// TestAliasBombs parses each bomb in a child process whose data segment is
// capped at 1 GiB, so a regression that expands aliases crashes the child,
// not the machine. The child also checks that refusing the bomb allocated
// little: the cap fires before any expansion.
func TestAliasBombs(t *testing.T) {
	for i, bc := range bombs {
		t.Run(bc.name, func(t *testing.T) {
			if len(bc.src) > 2048 {
				t.Fatalf("bomb is %d bytes; it should be small", len(bc.src))
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAliasBombChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("ZOKU_ALIAS_BOMB=%d", i))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child failed (%v); a bomb was expanded or the message changed:\n%s", err, tail(out))
			}
			if !strings.Contains(string(out), "--- PASS: TestAliasBombChild") {
				t.Fatalf("child did not run the bomb:\n%s", tail(out))
			}
		})
	}
}

// TestAliasBombChild is the child of TestAliasBombs.
func TestAliasBombChild(t *testing.T) {
	which := os.Getenv("ZOKU_ALIAS_BOMB")
	if which == "" {
		t.Skip("run by TestAliasBombs in a child process")
	}
	var i int
	fmt.Sscan(which, &i)
	bc := bombs[i]
	limitMemory(t, 1<<30)

	path := filepath.Join(t.TempDir(), bc.file)
	if err := os.WriteFile(path, []byte(bc.src), 0o600); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Load(path, env())
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), bc.want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v, want one line containing %q", err, bc.want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Line == 0 {
		t.Errorf("got %#v, want a *config.Error with a line", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Errorf("refusing a %d-byte bomb allocated %d MiB; the cap must fire before expansion", len(bc.src), grew>>20)
	}
	t.Logf("%s: %v", bc.name, err)
}

// limitMemory caps this process's data segment (which holds the Go heap)
// and sets a soft heap limit below it.
func limitMemory(t *testing.T, bytes uint64) {
	t.Helper()
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: bytes, Max: bytes}); err != nil {
		t.Fatalf("cannot cap memory: %v", err)
	}
	debug.SetMemoryLimit(int64(bytes) / 2)
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

func TestAliasesWithinLimits(t *testing.T) {
	// An anchor reused by many routes, the way aliases are meant to be
	// used, loads (the tree is shared, the Config has a copy per route).
	var b strings.Builder
	b.WriteString("entryPoints:\n  web:\n    address: \":80\"\nx-headers: &h\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\nroutes:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  r%d:\n    host: h%d.example.test\n    service: s\n    responseHeaders: *h\n", i, i)
	}
	b.WriteString("services:\n  s:\n    static: {body: ok}\n")
	c, err := Parse("t.yaml", []byte(b.String()), env())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes["r499"].ResponseHeaders["X-Frame-Options"]; got != "DENY" {
		t.Errorf("aliased header: got %q, want DENY", got)
	}
}

func TestAliasCycle(t *testing.T) {
	for _, src := range []string{
		"x-a: &a [1, *a] # <-\n",
		"x-a: &a\n  b: *a # <-\n",
	} {
		_, err := Parse("t.yaml", []byte(src), env())
		want := fmt.Sprintf("config: t.yaml:%d:", markedLine(t, src))
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "alias *a is inside its own anchor") {
			t.Errorf("%q: got %v, want %s... alias *a is inside its own anchor", src, err, want)
		}
	}
}

func TestFileSizeLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: no disk is used, and Load must not read it.
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := "config: " + path + ": the file is 16.0 MiB, over the 16 MiB limit for a configuration"
	if _, err := Load(path, env()); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load: got %v, want %q", err, want)
	}
	data := make([]byte, MaxFileBytes+1)
	if _, err := Parse("big.toml", data, env()); err == nil || !strings.Contains(err.Error(), "over the 16 MiB limit") {
		t.Errorf("Parse: got %v, want the size limit", err)
	}
}

// TestValueLimit checks the cap on values without aliases. (A document
// over it takes seconds and hundreds of MiB to parse, so the checks are
// driven directly.)
func TestValueLimit(t *testing.T) {
	b := yamlBuilder{written: MaxValues + 1}
	err := b.checkSize(MaxValues+1, nil)
	if err == nil || !strings.Contains(err.Error(), "the document holds more than 2000000 values, the limit") {
		t.Errorf("yaml: got %v, want the value limit", err)
	}
	if err := (&yamlBuilder{written: MaxValues}).checkSize(MaxValues, nil); err != nil {
		t.Errorf("yaml at the limit: got %v, want nil", err)
	}
	tb := tomlBuilder{values: MaxValues - 1}
	if _, err := tb.newNode(scalarNode, position{3, 5}); err != nil {
		t.Errorf("toml at the limit: got %v, want nil", err)
	}
	_, err = tb.newNode(scalarNode, position{3, 7})
	if se, ok := err.(*syntaxError); !ok || se.pos != (position{3, 7}) || !strings.Contains(se.reason, "more than 2000000 values, the limit") {
		t.Errorf("toml: got %v, want the value limit at 3:7", err)
	}
}

// routesDoc is a configuration with n routes, in YAML or TOML.
func routesDoc(n int, toml bool) string {
	var b strings.Builder
	if toml {
		b.WriteString("[entryPoints.web]\naddress = \"127.0.0.1:0\"\n")
		for i := range n {
			fmt.Fprintf(&b, "[routes.r%d]\nhost = \"h%d.example.test\"\npathPrefix = \"/p%d\"\nservice = \"s%d\"\n", i, i, i, i%100)
		}
		for i := range 100 {
			fmt.Fprintf(&b, "[services.s%d]\nservers = [{url = \"http://127.0.0.1:%d\"}]\n", i, 8000+i)
		}
		return b.String()
	}
	b.WriteString("entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nroutes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  r%d:\n    host: h%d.example.test\n    pathPrefix: /p%d\n    service: s%d\n", i, i, i, i%100)
	}
	b.WriteString("services:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  s%d:\n    servers:\n      - url: http://127.0.0.1:%d\n", i, 8000+i)
	}
	return b.String()
}

// TestLoadIsLinear checks that loading four times the routes allocates
// about four times the memory (a quadratic loader allocates sixteen
// times). Allocation, unlike time, does not depend on the machine's load;
// BenchmarkLoad100kRoutes measures the time.
func TestLoadIsLinear(t *testing.T) {
	for _, format := range []string{"yaml", "toml"} {
		t.Run(format, func(t *testing.T) {
			alloc := func(n int) uint64 {
				src := []byte(routesDoc(n, format == "toml"))
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				if _, err := Parse("t."+format, src, env()); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&after)
				return after.TotalAlloc - before.TotalAlloc
			}
			small, large := alloc(3000), alloc(12000)
			if ratio := float64(large) / float64(small); ratio > 5.5 {
				t.Errorf("4x the routes allocated %.1fx the memory (%d KiB, then %d KiB); loading is not linear", ratio, small>>10, large>>10)
			}
		})
	}
}
