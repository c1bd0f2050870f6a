package legocli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// The flag forms urfave/cli accepts, LEGO_* variables under the command
// line, and the refusals, each one line.
func TestParseFlags(t *testing.T) {
	env := map[string]string{"LEGO_EMAIL": "env@example.test", "LEGO_DOMAINS": "a.test,b.test", "LEGO_HTTP": "true"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, v *values)
		err   string
	}{
		{"long, short, =", []string{"--email=x@example.test", "-d", "one.test", "--domains", "two.test,three.test", "-s=staging"}, func(t *testing.T, v *values) {
			if v.String("email") != "x@example.test" || v.String("server") != "staging" {
				t.Errorf("email %q server %q", v.String("email"), v.String("server"))
			}
			if got := strings.Join(v.List("domains"), " "); got != "one.test two.test three.test" {
				t.Errorf("domains %q", got)
			}
		}, ""},
		{"single dash long name", []string{"-email", "y@example.test", "-accept-tos"}, func(t *testing.T, v *values) {
			if v.String("email") != "y@example.test" || !v.Bool("a") {
				t.Errorf("email %q accept-tos %v", v.String("email"), v.Bool("accept-tos"))
			}
		}, ""},
		{"variables fill what the line does not set", nil, func(t *testing.T, v *values) {
			if v.String("email") != "env@example.test" || !v.Bool("http") || len(v.List("domains")) != 2 {
				t.Errorf("email %q http %v domains %v", v.String("email"), v.Bool("http"), v.List("domains"))
			}
			if !v.IsSet("email") || v.IsSet("renew-days") {
				t.Error("IsSet wrong")
			}
			if v.Int("cert.timeout") != 30 || v.String("http.address") != ":80" || v.Duration("deploy-hook-timeout") != 2*time.Minute {
				t.Error("defaults wrong")
			}
		}, ""},
		{"the line beats the variable", []string{"--email", "line@example.test", "--http=false"}, func(t *testing.T, v *values) {
			if v.String("email") != "line@example.test" || v.Bool("http") {
				t.Error("variable won")
			}
		}, ""},
		{"unknown flag", []string{"--frobnicate"}, nil, "flag provided but not defined: -frobnicate"},
		{"missing value", []string{"--email"}, nil, "flag needs an argument: -email"},
		{"bad int", []string{"--renew-days", "soon"}, nil, `invalid value "soon"`},
		{"bad duration", []string{"--deploy-hook-timeout", "5"}, nil, "want a duration"},
		{"bad time", []string{"--not-after", "tomorrow"}, nil, "RFC 3339"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newValues(runFlags(), getenv)
			rest, err := v.parseFlags(tc.args, "lego run")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(rest) != 0 {
				t.Fatalf("err %v rest %v", err, rest)
			}
			tc.check(t, v)
		})
	}
}

// A bad LEGO_* variable is refused like a bad flag.
func TestBadVariable(t *testing.T) {
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "LEGO_RENEW_DAYS" {
			return "thirty"
		}
		return ""
	}}
	code := Run(context.Background(), []string{"run", "-d", "x.test", "--http"}, env, nil)
	if code != 2 || !strings.Contains(errb.String(), "LEGO_RENEW_DAYS") || strings.Count(errb.String(), "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// The help of the root lists lego's commands; every command has --help;
// flags are shown as --flag; unknown commands and flags are one line on
// stderr and exit 2.
func TestHelpAndUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		stdout   []string
		stderr   string
		noStdout bool
	}{
		{[]string{"--help"}, 0, []string{"run", "certificates", "accounts", "archives", "dnshelp", "migrate", "--log.level"}, "", false},
		{nil, 0, []string{"COMMANDS:"}, "", false},
		{[]string{"help", "run"}, 0, []string{"lego run", "--renew-days", "--http.address", "[$LEGO_HTTP_ADDRESS]"}, "", false},
		{[]string{"certificates"}, 0, []string{"revoke", "list"}, "", false},
		{[]string{"accounts", "register", "-h"}, 0, []string{"--eab.kid", "-s"}, "", false},
		{[]string{"frob"}, 2, nil, `unknown command "frob"`, true},
		{[]string{"run", "--frob"}, 2, nil, "flag provided but not defined", true},
		{[]string{"certificates", "list", "extra"}, 2, nil, `unexpected argument "extra"`, true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(context.Background(), tc.args, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, nil)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errb.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			if strings.Count(out.String(), "NAME:") > 1 {
				t.Errorf("help printed twice")
			}
			if tc.stderr != "" && (!strings.Contains(errb.String(), tc.stderr) || strings.Count(errb.String(), "\n") != 1) {
				t.Errorf("stderr %q, want one line with %q", errb.String(), tc.stderr)
			}
			if tc.noStdout && out.Len() > 0 {
				t.Errorf("a usage error printed on stdout: %q", out.String())
			}
		})
	}
}

// lego v4's shape, translated word for word into v5's.
func TestFromV4(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  string
	}{
		{"--dns iij --domains *.example.com --email you@example.com run",
			"run --domains=*.example.com --email=you@example.com --dns=iij", ""},
		{"-d a.test -m me@x.test --http --http.port :8080 --pfx.pass p -c req.csr run --run-hook ./h.sh --run-hook-timeout 1m",
			"run --domains=a.test --email=me@x.test --csr=req.csr --http --http.address=:8080 --pfx.password=p --deploy-hook=./h.sh --deploy-hook-timeout=1m", ""},
		{"--email me@x.test -d a.test --dns exec renew --days 45 --renew-hook ./h.sh --no-random-sleep",
			"run --" + renewOnlyFlag + " --domains=a.test --email=me@x.test --dns=exec --renew-days=45 --no-random-sleep --deploy-hook=./h.sh", ""},
		{"--email me@x.test -d a.test --tls renew", "run --" + renewOnlyFlag + " --domains=a.test --email=me@x.test --tls --renew-days=30", ""},
		{"--email me@x.test -d a.test --tls renew --dynamic", "run --" + renewOnlyFlag + " --domains=a.test --email=me@x.test --tls", ""},
		{"--email me@x.test -d a.test --path /p --dns.propagation-rns --disable-cn revoke --reason 4 -k",
			"certificates revoke --cert.name=a.test --email=me@x.test --path=/p --keep --reason=4", ""},
		{"--path /p list", "certificates list --path=/p", ""},
		{"--path /p list --accounts", "accounts list --path=/p", ""},
		{"--email me@x.test", "", "command is missing"},
		{"--email me@x.test obtain", "", `unknown command "obtain"`},
		{"--bogus run", "", "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			args := strings.Fields(tc.in)
			if !isV4(args) {
				t.Fatalf("not recognised as lego v4's shape")
			}
			got, err := fromV4(args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, " "); g != normalizeBools(tc.want) {
				t.Errorf("\n got %s\nwant %s", g, normalizeBools(tc.want))
			}
		})
	}
	for _, v5 := range []string{"run -d a.test --http", "--log.level debug run -d a.test", "--config x.yml", "certificates list", "--help", "dnshelp -c exec"} {
		if isV4(strings.Fields(v5)) {
			t.Errorf("%q taken for lego v4's shape", v5)
		}
	}
}

// normalizeBools writes a bool flag of the expected line as --name=true,
// the form fromV4 emits.
func normalizeBools(s string) string {
	bools := map[string]bool{"--http": true, "--tls": true, "--keep": true, "--no-random-sleep": true, "--" + renewOnlyFlag: false}
	var out []string
	for _, w := range strings.Fields(s) {
		if emit, ok := bools[w]; ok && emit {
			w += "=true"
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// --env-file sets each variable of a dotenv file; a bad line is named by
// its number, never by its value.
func TestLoadDotenv(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.env"
	writeFile(t, good, "# credentials\nexport A_TOKEN=abc\nB_SECRET=\"quoted value\"\nC='single'\nD=plain # comment\n\n")
	got := map[string]string{}
	set := func(k, v string) error { got[k] = v; return nil }
	if err := LoadDotenv(good, set); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A_TOKEN": "abc", "B_SECRET": "quoted value", "C": "single", "D": "plain"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	bad := dir + "/bad.env"
	writeFile(t, bad, "OK=1\nthis line has s3cret but no equals\n")
	err := LoadDotenv(bad, set)
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
	if err := LoadDotenv(dir+"/missing.env", set); err == nil {
		t.Fatal("a missing file is not an error")
	}
}

// A flag whose behaviour differs in zoku is accepted with a note on
// stderr; one zoku cannot offer is refused with its reason.
func TestNotesAndRefusals(t *testing.T) {
	var out, errb bytes.Buffer
	inv := &invocation{env: Env{Stdout: &out, Stderr: &errb}.withDefaults()}
	inv.flags = newValues(runFlags(), func(string) string { return "" })
	if _, err := inv.flags.parseFlags([]string{"--no-bundle", "--enable-cn=false"}, "lego run"); err != nil {
		t.Fatal(err)
	}
	if err := inv.refuseUnavailable(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "note: --no-bundle") || strings.Contains(errb.String(), "enable-cn") {
		t.Errorf("notes: %q", errb.String())
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
