package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

const msgEPs = "entryPoints:\n  web:\n    address: \":80\"\n"

// TestSyntaxMessages checks that each problem is named, at its line and
// column, in one short line.
func TestSyntaxMessages(t *testing.T) {
	mib := strings.Repeat("a", 1<<20)
	tests := []struct {
		name, file, src string
		pos             string // "line:col"
		want            string
	}{
		{"truncated in a key", "t.yaml", msgEPs + "routes:\n  a:\n    host: a.test\n    service: s\n  b",
			"8:3", `"b" has no ":" after it and the file ends there; is the file cut short (saved while still being written)?`},
		{"truncated in a key, comment after", "t.yaml", msgEPs + "routes:\n  a:\n    host: a.test\n  serv # half\n\n# end\n",
			"7:3", `"serv" has no ":" after it and the file ends there`},
		{"key without colon mid-file", "t.yaml", msgEPs + "routes:\n  a\n  b:\n    host: b.test\n",
			"5:3", `"a" is neither "key: value" nor a list item; add ":" after the key, or fix the indentation`},
		{"key without colon before a sibling", "t.yaml", msgEPs + "routes:\n  r:\n    host: a.test\n  b\n  c: 1\n",
			"7:3", `"b" is neither "key: value" nor a list item`},
		{"truncated in a quoted value", "t.yaml", msgEPs + "routes:\n  a:\n    host: \"a.te",
			"6:11", `the quote opened here is never closed: the file ends inside it; close it with ", or is the file cut short`},
		{"truncated in a list", "t.yaml", msgEPs + "x-list: [a, b,\n",
			"4:9", `the [ opened here is never closed: the file ends first; add ], or is the file cut short`},
		{"unclosed table mid-file", "t.yaml", "entryPoints: {web: {address: \":80\"}\nroutes: {}\n",
			"1:14", `the { opened here is not closed by } (or a "," is missing between two of its items)`},
		{"unclosed list", "t.yaml", "entryPoints:\n  web:\n    address: [1\n    tls: {}\n",
			"3:14", `the [ opened here is never closed: the file ends first`},
		{"tab indents a key", "t.yaml", "entryPoints:\n  web:\n\taddress: \":80\"\n",
			"3:1", "a tab indents this line; YAML indents with spaces only: replace the tab with spaces"},
		{"tab after spaces", "t.yaml", msgEPs + "routes:\n  r:\n  \t host: a.test\n",
			"6:3", "a tab indents this line"},
		{"tab in a list item", "t.yaml", msgEPs + "x-list:\n\t- a\n",
			"5:1", "a tab indents this line"},
		{"reserved character", "t.yaml", msgEPs + "x-a: @home\n",
			"4:6", `a value cannot start with '@' in YAML; put the value in quotes`},
		{"colon in a value", "t.yaml", msgEPs + "x-a: b: c\n",
			"4:6", `this value holds ": "; put it in quotes`},
		{"key under a value", "t.yaml", "entryPoints: x\n  web: 1\n",
			"2:3", `this key is indented under "entryPoints:", which already has a value; un-indent it, or remove that value`},
		{"key too long", "t.yaml", msgEPs + "routes:\n  " + strings.Repeat("k", 1100) + ":\n    host: a.test\n",
			"5:3", "a key longer than 1024 characters, YAML's limit for a key; shorten it"},
		{"bad indentation", "t.yaml", msgEPs + "routes:\n  r:\n    host: a.test\n   service: s\n",
			"5:3", "a line below this one is indented differently from the keys of its table"},
		{"unknown anchor", "t.yaml", msgEPs + "routes: *nope\n",
			"4:9", "alias *nope refers to no anchor; define &nope before it"},
		{"control character", "t.yaml", msgEPs + "x-a: \"b\x01\"\n",
			"4:8", "control character U+0001 in the file; remove it"},
		{"invalid UTF-8 in YAML", "t.yaml", "entryPoints:\n  web:\n    address: \"é\xff:80\"\n",
			"3:16", "invalid UTF-8 (byte 0xFF); zoku reads UTF-8 text only: save the file as UTF-8"},
		{"Latin-1 in TOML", "t.toml", "[entryPoints.web]\naddress = \":80\" # caf\xe9\n",
			"2:22", "invalid UTF-8 (byte 0xE9)"},
		{"UTF-16", "t.yaml", "\xff\xfee\x00n\x00", "1:1", "the file is UTF-16"},
		{"duplicate key", "t.yaml", msgEPs + "routes:\n  r: {host: a.test, service: s}\n  r: {host: b.test, service: s}\n",
			"6:3", `key "r" is already defined on line 5; keep one`},
		{"truncated TOML string", "t.toml", "[entryPoints.web]\naddress = \"127.0.0",
			"2:18", "invalid TOML: unterminated basic string; the file ends there: is it cut short"},
		{"truncated TOML table", "t.toml", "[entryPoints.web]\naddress = \":80\"\n[routes.r",
			"3:9", "expected ']' to close table name"},
		{"huge value", "t.yaml", msgEPs + "routes:\n  r:\n    host: " + mib + "\n    service: s\nservices: {s: {static: {body: x}}}\n",
			"6:5", `routes.r.host "` + mib[:64] + `…(1 MiB)" is not a host name`},
		{"huge name", "t.toml", "[entryPoints.web]\naddress = \":80\"\n[routes." + mib + "]\nhost = \"a.test\"\nservice = \"nope\"\n",
			"5:1", `routes.` + mib[:57] + `…(1.0 MiB).service: no service named "nope"`},
		{"huge unknown key", "t.toml", mib + " = 1\n[entryPoints.web]\naddress = \":80\"\n",
			"1:1", `unknown key "` + mib[:64] + `…(1 MiB)" at the top level`},
		{"huge line without colon", "t.yaml", msgEPs + "routes:\n  r:\n    host: a.test\n  " + mib + "\n",
			"7:3", `"` + mib[:64] + `…(1 MiB)" has no ":" after it`},
		{"huge variable name", "t.yaml", "entryPoints:\n  web:\n    address: ${" + mib + "}\n",
			"3:14", `environment variable ` + mib[:64] + `…(1 MiB) is not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.src), env())
			if err == nil {
				t.Fatalf("got no error, want %s", tt.want)
			}
			msg := err.Error()
			prefix := fmt.Sprintf("config: %s:%s: ", tt.file, tt.pos)
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) {
				t.Errorf("got\n  %s\nwant it to start %q and contain\n  %s", clip1k(msg), prefix, tt.want)
			}
			if strings.Contains(msg, "\n") || len(msg) > 400 {
				t.Errorf("message is %d bytes or has a line break; want one short line: %s", len(msg), clip1k(msg))
			}
		})
	}
}

func clip1k(s string) string {
	if len(s) > 1000 {
		return s[:1000] + "..."
	}
	return s
}

func TestInternationalNames(t *testing.T) {
	src := msgEPs + `certificates:
  acme:
    server: embedded
    challenges:
      http: {entryPoint: web}
      dns: {provider: rfc2136}
  domains:
    - main: Bücher.Example
      sans: ["*.bücher.example", "www.münchen.example."]
  onDemand:
    allow: ["*.zürich.example"]
routes:
  shop: {host: bücher.example, service: s}
  wild: {host: "*.Bücher.Example", service: s}
services:
  s: {static: {body: x}}
`
	c, err := Parse("t.yaml", []byte(src), env())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"route host", c.Routes["shop"].Host, "xn--bcher-kva.example"},
		{"wildcard route host", c.Routes["wild"].Host, "*.xn--bcher-kva.example"},
		{"domain", c.Certificates.Domains[0].Main, "xn--bcher-kva.example"},
		{"wildcard SAN", c.Certificates.Domains[0].SANs[0], "*.xn--bcher-kva.example"},
		{"SAN with a trailing dot", c.Certificates.Domains[0].SANs[1], "www.xn--mnchen-3ya.example"},
		{"on-demand pattern", c.Certificates.OnDemand.Allow[0], "*.xn--zrich-kva.example"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.what, tc.got, tc.want)
		}
	}

	bad := msgEPs + "routes:\n  r: {host: \"-bücher.example\", service: s}\nservices:\n  s: {static: {body: x}}\n"
	_, err = Parse("t.yaml", []byte(bad), env())
	want := `config: t.yaml:5:7: routes.r.host "-bücher.example" is not a valid internationalised name (IDNA 2008)`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("invalid IDN: got %v, want %s", err, want)
	}
}

// TestEveryTruncation loads every prefix of the full example files, the
// way a watcher may catch a file being written: each must load or fail
// with one short line at a place inside the prefix, and never panic.
func TestEveryTruncation(t *testing.T) {
	for _, name := range []string{"testdata/full.yaml", "testdata/full.toml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(data) {
			prefix := data[:i]
			_, err := Parse(name, prefix, env("EAB_HMAC", "x"))
			if err == nil {
				continue
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%s cut at byte %d: got %T %v, want *config.Error", name, i, err, err)
			}
			msg := err.Error()
			lines := bytes.Count(prefix, []byte("\n")) + 1
			if strings.Contains(msg, "\n") || len(msg) > 400 || ce.Line < 0 || ce.Line > lines {
				t.Errorf("%s cut at byte %d (%d lines): %s", name, i, lines, msg)
			}
		}
	}
}

// FuzzParse feeds Parse arbitrary documents: it must return a Config or
// an *Error of one line, and never panic. (go test -fuzz FuzzParse runs
// it; plain go test runs the seeds.)
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/full.yaml", "testdata/full.toml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(strings.TrimPrefix(name, "testdata/full"), data)
	}
	f.Add(".yaml", []byte(laughs(3, true)))
	f.Add(".yaml", []byte("a: [\n\t- {b: \"c\n"))
	f.Fuzz(func(t *testing.T, ext string, data []byte) {
		if ext != ".yaml" && ext != ".toml" {
			ext = ".yaml"
		}
		_, err := Parse("f"+ext, data, env("EAB_HMAC", "x"))
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("got %T %v, want *config.Error", err, err)
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 1100 {
			t.Fatalf("not one short line: %q", msg)
		}
	})
}
