package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/pelletier/go-toml/v2"
)

// env returns a getenv over a fixed map.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// markedLine returns the 1-based line of src that contains "# <-".
func markedLine(t *testing.T, src string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "# <-") {
			return i + 1
		}
	}
	t.Fatalf("test source has no '# <-' marker:\n%s", src)
	return 0
}

// stripSource strips what legitimately differs between two loads of the
// same configuration (file name, positions).
func stripSource(c *Config) *Config {
	cp := *c
	cp.Source = ""
	cp.tree = nil
	cp.sum, cp.hasSum = [32]byte{}, false
	return &cp
}

func TestParseYAMLAndTOMLGiveEqualConfigs(t *testing.T) {
	getenv := env("EAB_HMAC", "hmac-value")
	var got []*Config
	for _, name := range []string{"testdata/full.yaml", "testdata/full.toml"} {
		c, err := Load(name, getenv)
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		got = append(got, c)
	}
	y, tm := stripSource(got[0]), stripSource(got[1])
	if !reflect.DeepEqual(y, tm) {
		by, _ := y.YAML()
		bt, _ := tm.YAML()
		t.Fatalf("YAML and TOML differ:\n--- yaml\n%s\n--- toml\n%s", by, bt)
	}

	c := got[0]
	ws := c.EntryPoints["websecure"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"read timeout from integer seconds", ws.Timeouts.Read.D(), 30 * time.Second},
		{"write timeout", ws.Timeouts.Write.D(), 90 * time.Second},
		{"hsts maxAge in days", ws.HSTS.MaxAge.D(), 24 * time.Hour},
		{"maxHeaderBytes", ws.MaxHeaderBytes, 65536},
		{"redirect permanent false", *c.EntryPoints["web"].Redirect.Permanent, false},
		{"env secret", string(c.Certificates.ACME.EAB.HMAC), "hmac-value"},
		{"env default", string(c.Certificates.ACME.Challenges.DNS.Env["RFC2136_TSIG_SECRET"]), "fallback"},
		{"second domain", c.Certificates.Domains[1].Main, "*.example.test"},
		{"server weight default", c.Services["api"].Servers[1].Weight, 1},
		{"explicit weight", c.Services["api"].Servers[0].Weight, 3},
		{"retries 0 kept", *c.Services["api"].Retries, 0},
		{"static body", c.Services["hello"].Static.Body, "hi\n"},
		{"route default entry points", c.Routes["wild"].EntryPoints, []string{"websecure"}},
		{"response header", c.Routes["api"].ResponseHeaders["X-Frame-Options"], "DENY"},
		{"embedded validity", c.Certificates.ACME.Embedded.Validity.D(), 2 * time.Minute},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestLibrariesDecodeTheSchema checks that the schema also decodes with
// the YAML and TOML libraries themselves (strict), for code that decodes
// fragments without Load: same keys, durations from strings and integers.
func TestLibrariesDecodeTheSchema(t *testing.T) {
	raw, err := Load("testdata/full.yaml", env("EAB_HMAC", "${EAB_HMAC}"))
	if err != nil {
		t.Fatal(err)
	}
	want := raw.EntryPoints["websecure"]

	yb, _ := os.ReadFile("testdata/full.yaml")
	var yc Config
	if err := yaml.UnmarshalWithOptions(yb, &yc, yaml.Strict()); err != nil {
		t.Fatalf("goccy strict decode: %v", err)
	}
	tb, _ := os.ReadFile("testdata/full.toml")
	var tc Config
	dec := toml.NewDecoder(strings.NewReader(string(tb))).DisallowUnknownFields().EnableUnmarshalerInterface()
	if err := dec.Decode(&tc); err != nil {
		t.Fatalf("go-toml strict decode: %v", err)
	}
	for name, c := range map[string]*Config{"yaml": &yc, "toml": &tc} {
		got := c.EntryPoints["websecure"].Timeouts
		if got.Read != want.Timeouts.Read || got.Write != want.Timeouts.Write || got.ReadHeader != want.Timeouts.ReadHeader {
			t.Errorf("%s: timeouts got %+v, want %+v", name, got, want.Timeouts)
		}
		if got, want := c.Certificates.ACME.EAB.HMAC, raw.Certificates.ACME.EAB.HMAC; got != want {
			t.Errorf("%s: hmac got %q, want %q", name, string(got), string(want))
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		src  string
		env  []string
		want string // substring after "<file>:<line>:"
	}{
		{"unknown key suggests", "t.yaml", "entryPoints:\n  web:\n    adress: \":80\" # <-\n",
			nil, `unknown key "adress" in entryPoints.web (did you mean "address"?)`},
		{"unknown key lists valid keys", "t.yaml", "entryPoints:\n  web:\n    address: \":80\"\nfrobnicate: 1 # <-\n",
			nil, `unknown key "frobnicate" at the top level; valid keys are accessLog, admin, certificates, entryPoints, kubernetes, log, middlewares, routes, services, storage, targets, tcpRoutes, tcpServices`},
		{"traefik capitalisation", "t.yaml", "entryPoints:\n  web:\n    address: \":443\"\n    tls:\n      MinVersion: \"1.2\" # <-\n",
			nil, `unknown key "MinVersion" in entryPoints.web.tls (did you mean "minVersion"?)`},
		{"traefik top-level key", "t.toml", "defaultEntryPoints = [\"https\"] # <-\n[acme]\n",
			nil, `unknown key "defaultEntryPoints" at the top level; routes are served on every entry point`},
		{"unknown key toml", "t.toml", "[entryPoints.web]\naddress = \":80\"\nadress = \":81\" # <-\n",
			nil, `unknown key "adress" in entryPoints.web (did you mean "address"?)`},
		{"unknown table toml", "t.toml", "[entryPoints.web]\naddress = \":80\"\n[entrypoints.x] # <-\n",
			nil, `unknown key "entrypoints" at the top level (did you mean "entryPoints"?)`},
		{"bad duration", "t.yaml", "entryPoints:\n  web:\n    address: \":80\"\n    timeouts:\n      read: soon # <-\n",
			nil, `entryPoints.web.timeouts.read: invalid duration "soon"`},
		{"negative duration", "t.toml", "[entryPoints.web]\naddress = \":80\"\ntimeouts.idle = \"-5s\" # <-\n",
			nil, `entryPoints.web.timeouts.idle: negative duration "-5s"`},
		{"not a number", "t.yaml", "entryPoints:\n  web:\n    address: \":80\"\n    maxHeaderBytes: lots # <-\n",
			nil, `entryPoints.web.maxHeaderBytes: "lots" is not a whole number`},
		{"not a bool", "t.yaml", "entryPoints:\n  web:\n    address: \":80\"\ncertificates:\n  onHostRule: yes # <-\n",
			nil, `certificates.onHostRule: "yes" is not true or false`},
		{"list expected", "t.yaml", "entryPoints:\n  web:\n    address: \":80\"\n    trustedProxies: 10.0.0.0/8 # <-\n",
			nil, `entryPoints.web.trustedProxies must be a list, not a single value`},
		{"table expected", "t.yaml", "entryPoints: web # <-\n",
			nil, `entryPoints must be a table of names, not a single value`},
		{"missing env", "t.yaml", "entryPoints:\n  web:\n    address: ${LISTEN} # <-\n",
			nil, `entryPoints.web.address: environment variable LISTEN is not set; set it or write ${LISTEN:-default}`},
		{"missing env toml", "t.toml", "[entryPoints.web]\n\naddress = \"${LISTEN}\" # <-\n",
			nil, `environment variable LISTEN is not set`},
		{"bad env name", "t.yaml", "entryPoints:\n  web:\n    address: ${1X} # <-\n",
			nil, `${1X} is not a valid variable reference`},
		{"unterminated env", "t.yaml", "entryPoints:\n  web:\n    address: \"${X\" # <-\n",
			nil, `unterminated ${`},
		{"yaml syntax", "t.yaml", "entryPoints:\n  web:\n    address: [1 # <-\n    tls: {}\n",
			nil, `the [ opened here is never closed`},
		{"toml syntax", "t.toml", "[entryPoints.web]\naddress = # <-\n",
			nil, `invalid TOML`},
		{"duplicate key yaml", "t.yaml", "entryPoints:\n  web:\n    address: \":80\"\n    address: \":81\" # <-\n",
			nil, `already defined`},
		{"duplicate key toml", "t.toml", "[entryPoints.web]\naddress = \":80\"\naddress = \":81\" # <-\n",
			nil, `key "address" is given twice`},
		{"duplicate table toml", "t.toml", "[entryPoints.web]\naddress = \":80\"\n[entryPoints.web] # <-\n",
			nil, `table [entryPoints.web] is defined twice`},
		{"two documents", "t.yaml", "entryPoints: {}\n--- # <-\nroutes: {}\n",
			nil, `more than one YAML document`},
		{"merge key", "t.yaml", "base: &b {address: \":80\"}\nentryPoints:\n  web:\n    <<: *b # <-\n",
			nil, `merge keys (<<) are not supported`},
		{"validation after decode", "t.yaml", "entryPoints:\n  web:\n    address: \":80\"\nroutes:\n  r:\n    host: a.test\n    service: nope # <-\n",
			nil, `routes.r.service: no service named "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.src), env(tt.env...))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			prefix := fmt.Sprintf("config: %s:%d:", tt.file, markedLine(t, tt.src))
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("got error\n  %s\nwant one line starting %q containing\n  %s", msg, prefix, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("got %T, want *config.Error", err)
			}
		})
	}
}

func TestParseWholeFileErrors(t *testing.T) {
	tests := []struct {
		name, file, src, want string
	}{
		{"unknown extension", "zoku.json", "{}", `config: zoku.json: unknown file type ".json"; name the file .yaml, .yml or .toml`},
		{"empty file", "zoku.yaml", "", `config: zoku.yaml:1:1: no entry points`},
		{"scalar document", "zoku.yml", "hello\n", `config: zoku.yml:1:1: the file must be a table of keys`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.src), env())
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %v, want prefix %q", err, tt.want)
			}
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), env())
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestExtensionKeysHoldAnchors(t *testing.T) {
	src := "x-listener: &ep\n  address: \":8080\"\nentryPoints:\n  web: *ep\n"
	c, err := Parse("t.yaml", []byte(src), env())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.EntryPoints["web"].Address; got != ":8080" {
		t.Errorf("address: got %q, want :8080", got)
	}
}

func TestEnvExpansion(t *testing.T) {
	getenv := env("HOST", "127.0.0.1", "PORT", "8443", "EMPTY", "")
	tests := []struct {
		value, want string
	}{
		{"${HOST}:${PORT}", "127.0.0.1:8443"},
		{"${HOST}:${MISSING:-9000}", "127.0.0.1:9000"},
		{"${EMPTY:-127.0.0.2}:1", "127.0.0.2:1"},
		{"${MISSING:-}:1", ":1"},
		{"${MISSING:-a:b}", "a:b"},
		{"$${HOST}", "${HOST}"},
		{"cost $5 ${HOST}", "cost $5 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			src := "entryPoints:\n  web:\n    address: \":80\"\nlog:\n  level: info\naccessLog:\n  path: '" + tt.value + "'\n"
			c, err := Parse("t.yaml", []byte(src), getenv)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.AccessLog.Path; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("empty variable without default is an error", func(t *testing.T) {
		src := "entryPoints:\n  web:\n    address: ${EMPTY}\n"
		_, err := Parse("t.yaml", []byte(src), getenv)
		if err == nil || !strings.Contains(err.Error(), "t.yaml:3:14: entryPoints.web.address: environment variable EMPTY is not set") {
			t.Errorf("got %v", err)
		}
	})
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "hmac")
	if err := os.WriteFile(secretPath, []byte("  s3cret-hmac-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := func(hmac string) string {
		return "entryPoints:\n  web:\n    address: \":80\"\ncertificates:\n  acme:\n    eab:\n      kid: k\n      hmac: " + hmac + " # <-\n"
	}
	tests := []struct {
		name, hmac string
		env        []string
		want       string // value, or error substring when wantErr
		wantErr    bool
	}{
		{"file", "file:" + secretPath, nil, "s3cret-hmac-value", false},
		{"file from env folder", "file:${SECRETS}/hmac", []string{"SECRETS", dir}, "s3cret-hmac-value", false},
		{"plain value", "literal-value", nil, "literal-value", false},
		{"missing file", "file:" + filepath.Join(dir, "nope"), nil, "certificates.acme.eab.hmac: cannot read secret file " + filepath.Join(dir, "nope") + ": no such file or directory", true},
		{"empty file", "file:" + empty, nil, "secret file " + empty + " is empty", true},
		{"no file name", "'file:'", nil, "file: names no file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := doc(tt.hmac)
			c, err := Parse("t.yaml", []byte(src), env(tt.env...))
			if tt.wantErr {
				prefix := fmt.Sprintf("config: t.yaml:%d:", markedLine(t, src))
				if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %s... %s", err, prefix, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(c.Certificates.ACME.EAB.HMAC); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSecretsStayOutOfErrors loads files whose secret values are followed
// by mistakes, and checks no message or dump shows the value.
func TestSecretsStayOutOfErrors(t *testing.T) {
	const value = "TOPSECRET-42"
	tests := []struct {
		name, src string
	}{
		{"secret as a list", "certificates:\n  acme:\n    eab:\n      kid: k\n      hmac: [" + value + "]\n"},
		{"secret as a table", "certificates:\n  acme:\n    eab:\n      kid: k\n      hmac: {" + value + ": 1}\n"},
		{"later validation error", "entryPoints:\n  web:\n    address: \":80\"\ncertificates:\n  acme:\n    eab:\n      hmac: " + value + "\n"},
		{"env secret then unknown key", "entryPoints:\n  web:\n    address: \":80\"\ncertificates:\n  acme:\n    challenges:\n      dns:\n        provider: x\n        env:\n          TOKEN: ${TOKEN}\n        bogus: 1\n"},
		{"secret map with bad entry", "certificates:\n  acme:\n    challenges:\n      dns:\n        env:\n          TOKEN: " + value + "\n          OTHER: [1]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.src), env("TOKEN", value))
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if strings.Contains(err.Error(), value) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
	c := &Config{Certificates: Certificates{ACME: ACME{EAB: &EAB{KID: "k", HMAC: value}}}}
	for _, s := range []string{fmt.Sprintf("%v", c.Certificates), fmt.Sprintf("%+v", *c.Certificates.ACME.EAB), fmt.Sprintf("%#v", c.Certificates.ACME.EAB.HMAC)} {
		if strings.Contains(s, value) {
			t.Errorf("formatting shows the secret: %s", s)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"10s", 10 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"30", 30 * time.Second, false},
		{"0", 0, false},
		{"90d", 90 * 24 * time.Hour, false},
		{"-1s", 0, true},
		{"-3", 0, true},
		{"ten", 0, true},
		{"", 0, true},
		{"1.5", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("got error %v, want error %v", err, tt.err)
			}
			if d.D() != tt.want {
				t.Errorf("got %v, want %v", d.D(), tt.want)
			}
		})
	}

	type doc struct {
		T Duration `yaml:"t" toml:"t" json:"t"`
	}
	for _, src := range []string{"t: 30", "t: 30s", "t: \"30s\""} {
		var v doc
		if err := yaml.Unmarshal([]byte(src), &v); err != nil || v.T.D() != 30*time.Second {
			t.Errorf("goccy %q: got %v, %v; want 30s", src, v.T.D(), err)
		}
	}
	for _, src := range []string{"t = 30", "t = \"30s\"", "t = '30s'"} {
		var v doc
		err := toml.NewDecoder(strings.NewReader(src)).EnableUnmarshalerInterface().Decode(&v)
		if err != nil || v.T.D() != 30*time.Second {
			t.Errorf("go-toml %q: got %v, %v; want 30s", src, v.T.D(), err)
		}
	}
	out, err := yaml.Marshal(doc{T: Duration(90 * time.Second)})
	if err != nil || strings.TrimSpace(string(out)) != "t: 1m30s" {
		t.Errorf("goccy marshal: got %q, %v; want t: 1m30s", out, err)
	}
	tout, err := toml.Marshal(doc{T: Duration(90 * time.Second)})
	if err != nil || strings.TrimSpace(string(tout)) != "t = '1m30s'" {
		t.Errorf("go-toml marshal: got %q, %v; want t = '1m30s'", tout, err)
	}
}

func TestRedacted(t *testing.T) {
	c, err := Load("testdata/full.yaml", env("EAB_HMAC", "hmac-value", "TSIG_SECRET", "tsig-value"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if got := string(r.Certificates.ACME.EAB.HMAC); got != "REDACTED" {
		t.Errorf("eab.hmac: got %q, want REDACTED", got)
	}
	for k, v := range r.Certificates.ACME.Challenges.DNS.Env {
		if string(v) != "REDACTED" {
			t.Errorf("dns env %s: got %q, want REDACTED", k, string(v))
		}
	}
	if got := string(c.Certificates.ACME.EAB.HMAC); got != "hmac-value" {
		t.Errorf("original changed: got %q", got)
	}
	// A deep copy: changing the copy leaves the original alone.
	r.EntryPoints["web"].Address = ":1"
	r.Services["api"].Servers[0].URL = "http://changed"
	if c.EntryPoints["web"].Address != ":80" || c.Services["api"].Servers[0].URL != "http://127.0.0.1:9001" {
		t.Errorf("Redacted shares memory with the original")
	}
	out, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hmac-value", "tsig-value"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted YAML shows %q:\n%s", secret, out)
		}
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	for _, name := range []string{"testdata/full.yaml", "testdata/full.toml", "../../examples/quickstart.yaml"} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(name, env("EAB_HMAC", "hmac-value"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.YAML()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse("out.yaml", out, env())
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(stripSource(c), stripSource(back)) {
				t.Errorf("round trip differs:\n%s", out)
			}
		})
	}
}
