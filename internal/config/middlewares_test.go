package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// bcryptLine is a user "demo" with password "demo" at bcrypt cost 5 (as
// htpasswd -B makes it).
const bcryptLine = "demo:$2y$05$Q3Bpd7vc.wMGfSYnBW.EPuy4P3b6eR5lv9hpz3/3U6Vit31h8nmrW\n"

// rs is a route and a service that middleware cases attach to.
const rs = "routes:\n  r: {host: a.test, service: s}\nservices:\n  s: {static: {}}\n"

func TestMiddlewareErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.htpasswd", bcryptLine)
	md5 := write("md5.htpasswd", "# made with htpasswd -m\nold:$apr1$Fh6iT7bq$ZZsNr6jUP0Ha3KsYLEsgc/\n")
	sha := write("sha.htpasswd", "a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
	plain := write("plain.htpasswd", "a:secret-plain\n")
	getenv := env("GOOD", good, "MD5", md5, "SHA", sha, "PLAIN", plain, "NONE", filepath.Join(dir, "none"))
	tests := []struct{ name, src, want string }{
		{"no kind", eps + rs + "middlewares:\n  m: # <-\n    {}\n", "middlewares.m has no kind; give it one of chain, headers, securityHeaders"},
		{"two kinds", eps + rs + "middlewares:\n  m:\n    compress: {} # <-\n    securityHeaders: {}\n", "middlewares.m has several kinds (securityHeaders, compress)"},
		{"unknown middleware on route", eps + "routes:\n  r:\n    host: a.test\n    service: s\n    middlewares:\n      - sec\n      - compres # <-\nservices:\n  s: {static: {}}\nmiddlewares:\n  sec: {securityHeaders: {}}\n  compress: {compress: {}}\n", `routes.r.middlewares[1]: no middleware named "compres" (did you mean "compress"?)`},
		{"chain unknown", eps + rs + "middlewares:\n  c:\n    chain:\n      - a\n      - nope # <-\n  a: {compress: {}}\n", `middlewares.c.chain[1]: no middleware named "nope"`},
		{"chain cycle", eps + rs + "middlewares:\n  a:\n    chain: [b] # <-\n  b:\n    chain: [a]\n", "middlewares.a.chain reaches itself (a -> b -> a)"},
		{"header name", eps + rs + "middlewares:\n  h:\n    headers:\n      request:\n        set:\n          \"X Bad\": v # <-\n", `middlewares.h.headers.request.set: "X Bad" is not a header name`},
		{"frame options", eps + rs + "middlewares:\n  s:\n    securityHeaders:\n      frameOptions: ALLOW # <-\n", `frameOptions "ALLOW" is unknown; use DENY, SAMEORIGIN`},
		{"redirect regex", eps + rs + "middlewares:\n  r:\n    redirectRegex:\n      regex: \"^(http\" # <-\n      replacement: x\n", `middlewares.r.redirectRegex.regex "^(http" is not a regular expression (Go RE2 syntax): missing closing )`},
		{"redirect scheme", eps + rs + "middlewares:\n  r:\n    redirectScheme:\n      scheme: ftp # <-\n", `redirectScheme.scheme "ftp" is unknown`},
		{"strip prefix", eps + rs + "middlewares:\n  s:\n    stripPrefix:\n      prefixes:\n        - api # <-\n", `stripPrefix.prefixes[0] "api" must start with /`},
		{"basic auth no file", eps + rs + "middlewares:\n  b:\n    basicAuth:\n      usersFile: ${NONE} # <-\n", "basicAuth.usersFile: htpasswd: cannot read"},
		{"basic auth md5", eps + rs + "middlewares:\n  b:\n    basicAuth:\n      usersFile: ${MD5} # <-\n", `md5.htpasswd:2: user "old": has an MD5 ($apr1$) hash, which zoku refuses (too fast to guess); re-create it with htpasswd -B (bcrypt)`},
		{"basic auth sha", eps + rs + "middlewares:\n  b:\n    basicAuth:\n      usersFile: ${SHA} # <-\n", "has a SHA-1 ({SHA}) hash"},
		{"basic auth plain", eps + rs + "middlewares:\n  b:\n    basicAuth:\n      usersFile: ${PLAIN} # <-\n", "not a bcrypt hash (plain text or DES crypt)"},
		{"forward auth address", eps + rs + "middlewares:\n  f:\n    forwardAuth:\n      address: auth.local/check # <-\n", "forwardAuth.address is not an absolute http:// or https:// URL"},
		{"allow list", eps + rs + "middlewares:\n  a:\n    ipAllowList:\n      sourceRange:\n        - 10.0.0.0/8\n        - 10.1.2 # <-\n", `ipAllowList.sourceRange[1] "10.1.2" is not an IP or CIDR`},
		{"rate limit", eps + rs + "middlewares:\n  l:\n    rateLimit:\n      average: 0 # <-\n", "rateLimit.average must be 1 or more"},
		{"in flight", eps + rs + "middlewares:\n  l:\n    inFlightReq:\n      amount: -1 # <-\n", "inFlightReq.amount must be 1 or more"},
		{"compress encoding", eps + rs + "middlewares:\n  c:\n    compress:\n      encodings:\n        - br # <-\n", `compress.encodings[0] "br" is unknown; use zstd or gzip`},
		{"buffering", eps + rs + "middlewares:\n  b:\n    buffering:\n      maxRequestBodyBytes: 0 # <-\n", "buffering.maxRequestBodyBytes must be 1 or more"},
		{"breaker ratio", eps + rs + "middlewares:\n  b:\n    circuitBreaker:\n      errorRatio: 1.5 # <-\n", "circuitBreaker.errorRatio 1.5 is not from 0 to 1"},
		{"breaker nothing", eps + rs + "middlewares:\n  b:\n    circuitBreaker: {} # <-\n", "circuitBreaker trips on nothing"},
		{"breaker ratio text", eps + rs + "middlewares:\n  b:\n    circuitBreaker:\n      errorRatio: half # <-\n", `errorRatio: "half" is not a number`},
		{"errors status", eps + rs + "middlewares:\n  e:\n    errors:\n      service: s\n      status:\n        - 500-399 # <-\n", `errors.status[0]: "500-399" is not a status`},
		{"errors service", eps + rs + "middlewares:\n  e:\n    errors:\n      status: [\"500-599\"]\n      service: pages # <-\n", `errors.service: no service named "pages"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("zoku.yaml", []byte(tt.src), getenv)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			prefix := fmt.Sprintf("config: zoku.yaml:%d:", markedLine(t, tt.src))
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("got error\n  %s\nwant one line starting %q containing\n  %s", msg, prefix, tt.want)
			}
			if strings.Contains(err.Error(), "$2y$") || strings.Contains(err.Error(), "ZZsNr6") || strings.Contains(err.Error(), "secret-plain") {
				t.Errorf("error shows a hash or password: %s", err)
			}
		})
	}
}

func TestMatcherAndServiceKindErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"host and hostRegex", eps + "routes:\n  r:\n    host: a.test\n    hostRegex: \"^a\" # <-\n    service: s\nservices:\n  s: {static: {}}\n", "routes.r has both host and hostRegex; keep one"},
		{"host regex", eps + "routes:\n  r:\n    hostRegex: \"a[\" # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.hostRegex "a[" is not a regular expression`},
		{"path", eps + "routes:\n  r:\n    host: a.test\n    path: x # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.path "x" must start with /`},
		{"path outside prefix", eps + "routes:\n  r:\n    host: a.test\n    pathPrefix: /api\n    path: /x # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.path "/x" is not under pathPrefix "/api"`},
		{"method", eps + "routes:\n  r:\n    host: a.test\n    methods:\n      - GET\n      - \"PO ST\" # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.methods[1] "PO ST" is not an HTTP method`},
		{"header regex", eps + "routes:\n  r:\n    host: a.test\n    headersRegex:\n      User-Agent: \"(curl\" # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.headersRegex.User-Agent "(curl" is not a regular expression`},
		{"client ip", eps + "routes:\n  r:\n    host: a.test\n    clientIPs:\n      - 300.1.1.1 # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.clientIPs[0] "300.1.1.1" is not an IP or CIDR`},
		{"failover unknown", eps + "services:\n  a: {static: {}}\n  f:\n    failover:\n      service: a\n      fallback: b # <-\n", `services.f.failover.fallback: no service named "b"`},
		{"failover self", eps + "services:\n  f:\n    failover:\n      service: f # <-\n      fallback: f\n", "services.f.failover.service names the service itself"},
		{"cycle", eps + "services:\n  a: # <-\n    failover: {service: b, fallback: c}\n  b:\n    weighted: {services: [{service: a}]}\n  c: {static: {}}\n", "services.a reaches itself (a -> b -> a)"},
		{"mirror percent", eps + "services:\n  a: {static: {}}\n  b: {static: {}}\n  m:\n    mirroring:\n      service: a\n      mirrors:\n        - service: b\n          percent: 101 # <-\n", "mirroring.mirrors[0].percent 101 is not from 0 to 100"},
		{"sticky on static", eps + "services:\n  s:\n    static: {}\n    sticky: {} # <-\n", "services.s.sticky needs servers or weighted"},
		{"sticky same site", eps + "services:\n  s:\n    servers: [{url: \"http://a\"}]\n    sticky:\n      cookie:\n        sameSite: none # <-\n", "sameSite none needs secure: true"},
		{"h2c mixed", eps + "services:\n  s:\n    servers: # <-\n      - url: h2c://a:1\n      - url: http://b:1\n", "mixes h2c:// servers with others"},
		{"two kinds", eps + "services:\n  a: {static: {}}\n  s: # <-\n    static: {}\n    failover: {service: a, fallback: a}\n", "services.s needs exactly one of servers, static, failover, mirroring or weighted (it has 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("zoku.yaml", []byte(tt.src), env())
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			prefix := fmt.Sprintf("config: zoku.yaml:%d:", markedLine(t, tt.src))
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("got error\n  %s\nwant one line starting %q containing\n  %s", msg, prefix, tt.want)
			}
		})
	}
}

func TestMiddlewareDefaults(t *testing.T) {
	src := eps + `routes:
  r:
    host: a.test
    service: w
    middlewares: [all]
    methods: [get]
services:
  s: {servers: [{url: "http://a:1"}]}
  w:
    weighted: {services: [{service: s}]}
    sticky: {}
  m:
    mirroring: {service: s, mirrors: [{service: s}]}
middlewares:
  all: {chain: [sec, rl, cmp, cb, ba]}
  sec: {securityHeaders: {}}
  rl: {rateLimit: {average: 10}}
  cmp: {compress: {}}
  cb: {circuitBreaker: {errorRatio: 0.25}}
  ba: {basicAuth: {usersFile: "${FILE}"}}
`
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte(bcryptLine), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("zoku.yaml", []byte(src), env("FILE", file))
	if err != nil {
		t.Fatal(err)
	}
	sec := c.Middlewares["sec"].SecurityHeaders
	rl := c.Middlewares["rl"].RateLimit
	cb := c.Middlewares["cb"].CircuitBreaker
	names, err := c.ExpandMiddlewares(c.Routes["r"].Middlewares)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range []struct {
		name      string
		got, want any
	}{
		{"frame options", *sec.FrameOptions, "DENY"},
		{"nosniff", *sec.ContentTypeNosniff, true},
		{"referrer", *sec.ReferrerPolicy, "strict-origin-when-cross-origin"},
		{"rate burst", rl.Burst, 10},
		{"rate period", rl.Period.D().String(), "1s"},
		{"compress", c.Middlewares["cmp"].Compress.Encodings, []string{"zstd", "gzip"}},
		{"breaker ratio", cb.ErrorRatio, 0.25},
		{"breaker status", cb.ResponseCode, 503},
		{"realm", c.Middlewares["ba"].BasicAuth.Realm, "zoku"},
		{"chain", names, []string{"sec", "rl", "cmp", "cb", "ba"}},
		{"method upper", c.Routes["r"].Methods, []string{"GET"}},
		{"sticky name", c.Services["w"].Sticky.Cookie.Name, StickyCookieName("w")},
		{"mirror percent", *c.Services["m"].Mirroring.Mirrors[0].Percent, 100},
		{"weight", c.Services["w"].Weighted.Services[0].Weight, 1},
		{"kind", c.Services["m"].Kind(), "mirroring"},
	} {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	// The same in TOML loads the same.
	toml := `[entryPoints.web]
address = ":80"
[entryPoints.websecure]
address = ":443"
tls = {}
[routes.r]
host = "a.test"
service = "w"
middlewares = ["all"]
methods = ["get"]
[services.s]
servers = [{url = "http://a:1"}]
[services.w]
weighted = {services = [{service = "s"}]}
sticky = {}
[services.m]
mirroring = {service = "s", mirrors = [{service = "s"}]}
[middlewares]
all = {chain = ["sec", "rl", "cmp", "cb", "ba"]}
sec = {securityHeaders = {}}
rl = {rateLimit = {average = 10}}
cmp = {compress = {}}
cb = {circuitBreaker = {errorRatio = 0.25}}
ba = {basicAuth = {usersFile = "${FILE}"}}
`
	tc, err := Parse("zoku.toml", []byte(toml), env("FILE", file))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stripSource(c), stripSource(tc)) {
		by, _ := c.YAML()
		bt, _ := tc.YAML()
		t.Errorf("YAML and TOML differ:\n%s\n---\n%s", by, bt)
	}
}
