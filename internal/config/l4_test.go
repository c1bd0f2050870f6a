package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tcpSvc is a valid TCP service "db" for cases about other keys.
const tcpSvc = "tcpServices:\n  db:\n    servers: [{address: \"127.0.0.1:5432\"}]\n"

func TestValidateL4Errors(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir) // cert.pem doubles as a CA bundle
	getenv := env("DIR", dir)
	route := func(body string) string {
		return eps + tcpSvc + "tcpRoutes:\n  r:\n" + body
	}
	tests := []struct {
		name, src, want string
	}{
		// entry points
		{"http3 on plain", "entryPoints:\n  web:\n    address: \":80\"\n    http3: {} # <-\n", "entryPoints.web.http3 needs tls on the same entry point"},
		{"http3 port", "entryPoints:\n  s:\n    address: \":443\"\n    tls: {}\n    http3:\n      advertisedPort: 70000 # <-\n", "advertisedPort 70000 is not a port"},
		{"client auth on plain", "entryPoints:\n  web:\n    address: \":80\"\n    clientAuth: # <-\n      caFiles: [x]\n", "entryPoints.web.clientAuth needs tls"},
		{"client auth without CA", "entryPoints:\n  s:\n    address: \":443\"\n    tls: {}\n    clientAuth: {mode: optional} # <-\n", "entryPoints.s.clientAuth has no caFiles"},
		{"client auth mode", "entryPoints:\n  s:\n    address: \":443\"\n    tls: {}\n    clientAuth:\n      mode: maybe # <-\n      caFiles: [\"${DIR}/cert.pem\"]\n", `clientAuth.mode "maybe" is unknown; use require or optional`},
		{"client auth CA missing", "entryPoints:\n  s:\n    address: \":443\"\n    tls: {}\n    clientAuth:\n      caFiles:\n        - ${DIR}/none.pem # <-\n", "entryPoints.s.clientAuth.caFiles[0]: cannot read " + dir + "/none.pem: no such file"},
		{"client auth CA not PEM", "entryPoints:\n  s:\n    address: \":443\"\n    tls: {}\n    clientAuth:\n      caFiles:\n        - ${DIR}/key.pem # <-\n", "key.pem holds no PEM certificate"},
		{"client auth header", "entryPoints:\n  s:\n    address: \":443\"\n    tls: {}\n    clientAuth:\n      caFiles: [\"${DIR}/cert.pem\"]\n      subjectHeader: \"X Subject\" # <-\n", `subjectHeader "X Subject" is not a header name`},
		{"proxy protocol without peers", "entryPoints:\n  web:\n    address: \":80\"\n    proxyProtocol: {} # <-\n", "entryPoints.web.proxyProtocol has no trustedIPs"},
		{"proxy protocol peer", "entryPoints:\n  web:\n    address: \":80\"\n    proxyProtocol:\n      trustedIPs:\n        - 10.0.0.0/8\n        - lb.example # <-\n", `trustedIPs[1] "lb.example" is not an IP or CIDR`},

		// routes
		{"route client auth", eps + "routes:\n  r:\n    host: a.test\n    service: s\n    clientAuth: {mode: require} # <-\nservices:\n  s: {static: {}}\n", "routes.r.clientAuth has no caFiles"},
		{"route behind a catch-all", eps + tcpSvc + "tcpRoutes:\n  all: {sni: \"*\", service: db, entryPoints: [web]}\nroutes:\n  r:\n    host: a.test\n    service: s\n    entryPoints:\n      - web # <-\nservices:\n  s: {static: {}}\n", `routes.r.entryPoints[0]: the TCP routes of entry point "web" take every connection there`},

		// tcp services
		{"tcp service empty", eps + "tcpServices:\n  db: {} # <-\n", "tcpServices.db has no servers"},
		{"tcp server address", eps + "tcpServices:\n  db:\n    servers:\n      - address: db.example # <-\n", `tcpServices.db.servers[0].address "db.example": not host:port`},
		{"tcp server port 0", eps + "tcpServices:\n  db:\n    servers:\n      - address: \"127.0.0.1:0\" # <-\n", "port 0 cannot be connected to"},
		{"tcp strategy", eps + "tcpServices:\n  db:\n    servers: [{address: \"a:1\"}]\n    strategy: least-requests # <-\n", `strategy "least-requests" is unknown; use one of round-robin, weighted, least-connections, power-of-two-choices`},
		{"tcp proxy version", eps + "tcpServices:\n  db:\n    servers: [{address: \"a:1\"}]\n    proxyProtocol:\n      version: 3 # <-\n", "proxyProtocol.version 3 is unknown; use 1 (text) or 2 (binary)"},

		// tcp routes
		{"tcp route without sni", eps + tcpSvc + "tcpRoutes:\n  r: # <-\n    service: db\n", "tcpRoutes.r has no sni"},
		{"tcp route bad sni", route("    sni: \"db.*.test\" # <-\n    tls: passthrough\n    service: db\n    entryPoints: [websecure]\n"), `tcpRoutes.r.sni "db.*.test" is not a server name`},
		{"tcp route without tls", eps + tcpSvc + "tcpRoutes:\n  r: # <-\n    sni: db.test\n    service: db\n    entryPoints: [websecure]\n", "tcpRoutes.r has no tls; routing by SNI needs tls: passthrough"},
		{"tcp route tls mode", route("    sni: db.test\n    tls: offload # <-\n    service: db\n    entryPoints: [websecure]\n"), `tcpRoutes.r.tls "offload" is unknown`},
		{"tcp route http service", eps + tcpSvc + "services:\n  web: {static: {}}\ntcpRoutes:\n  r:\n    sni: db.test\n    tls: passthrough\n    service: web # <-\n    entryPoints: [websecure]\n", `tcpRoutes.r.service: "web" is an HTTP service; a TCP route needs one under tcpServices`},
		{"tcp route unknown service", route("    sni: db.test\n    tls: passthrough\n    service: dv # <-\n    entryPoints: [websecure]\n"), `tcpRoutes.r.service: no TCP service named "dv" (did you mean "db"?)`},
		{"tcp route without entry points", eps + tcpSvc + "tcpRoutes:\n  r: # <-\n    sni: db.test\n    tls: passthrough\n    service: db\n", "tcpRoutes.r has no entryPoints"},
		{"tcp route unknown entry point", route("    sni: db.test\n    tls: passthrough\n    service: db\n    entryPoints:\n      - websecur # <-\n"), `tcpRoutes.r.entryPoints[0]: no entry point named "websecur" (did you mean "websecure"?)`},
		{"tcp route twice", eps + tcpSvc + "tcpRoutes:\n  a: {sni: db.test, tls: passthrough, service: db, entryPoints: [websecure]}\n  b:\n    sni: DB.test\n    tls: terminate\n    service: db\n    entryPoints:\n      - websecure # <-\n", `tcpRoutes.b.entryPoints[0]: tcpRoutes.a already takes sni "db.test" on entry point "websecure"`},
		{"http-01 behind a catch-all", eps + tcpSvc + "tcpRoutes:\n  all: {sni: \"*\", service: db, entryPoints: [web]}\ncertificates:\n  acme:\n    challenges:\n      http:\n        entryPoint: web # <-\n", `challenges.http.entryPoint: the TCP routes of entry point "web" take every connection there`},
		{"tcp client auth on passthrough", route("    sni: db.test\n    tls: passthrough\n    service: db\n    entryPoints: [websecure]\n    clientAuth: {caFiles: [x]} # <-\n"), "tcpRoutes.r.clientAuth needs tls: terminate"},
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
		})
	}
}

// TestL4DefaultsAndTOML loads the same layer-4 configuration from YAML
// and TOML and checks the defaults filled in.
func TestL4DefaultsAndTOML(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir)
	getenv := env("DIR", dir)
	y := `
entryPoints:
  web: {address: ":80"}
  websecure:
    address: ":443"
    tls: {}
    http3:
    clientAuth: {mode: optional, caFiles: ["${DIR}/cert.pem"]}
    proxyProtocol: {trustedIPs: [10.0.0.0/8]}
  tcp: {address: ":5432"}
routes:
  r: {host: a.test, service: s, clientAuth: {caFiles: ["${DIR}/cert.pem"]}}
services:
  s: {static: {}}
tcpServices:
  db:
    servers: [{address: "10.0.0.5:5432"}, {address: "10.0.0.6:5432", weight: 3}]
    healthCheck:
    proxyProtocol:
tcpRoutes:
  pass: {sni: Db.Test, tls: passthrough, service: db, entryPoints: [websecure]}
  term: {sni: "*.term.test", tls: terminate, service: db, entryPoints: [websecure]}
  all: {sni: "*", service: db, entryPoints: [tcp]}
`
	tm := `
[entryPoints.web]
address = ":80"
[entryPoints.websecure]
address = ":443"
tls = {}
http3 = {}
clientAuth = {mode = "optional", caFiles = ["${DIR}/cert.pem"]}
proxyProtocol = {trustedIPs = ["10.0.0.0/8"]}
[entryPoints.tcp]
address = ":5432"
[routes.r]
host = "a.test"
service = "s"
clientAuth = {caFiles = ["${DIR}/cert.pem"]}
[services.s]
static = {}
[tcpServices.db]
servers = [{address = "10.0.0.5:5432"}, {address = "10.0.0.6:5432", weight = 3}]
healthCheck = {}
proxyProtocol = {}
[tcpRoutes.pass]
sni = "Db.Test"
tls = "passthrough"
service = "db"
entryPoints = ["websecure"]
[tcpRoutes.term]
sni = "*.term.test"
tls = "terminate"
service = "db"
entryPoints = ["websecure"]
[tcpRoutes.all]
sni = "*"
service = "db"
entryPoints = ["tcp"]
`
	cy, err := Parse("zoku.yaml", []byte(y), getenv)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := Parse("zoku.toml", []byte(tm), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stripSource(cy), stripSource(ct)) {
		by, _ := cy.YAML()
		bt, _ := ct.YAML()
		t.Fatalf("YAML and TOML differ:\n--- yaml\n%s\n--- toml\n%s", by, bt)
	}
	ws := cy.EntryPoints["websecure"]
	db := cy.TCPServices["db"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"http3 max age", ws.HTTP3.MaxAge.D(), DefaultHTTP3MaxAge},
		{"client auth header", ws.ClientAuth.SubjectHeader, DefaultClientSubjectHeader},
		{"route client auth mode", cy.Routes["r"].ClientAuth.Mode, ClientAuthRequire},
		{"proxy header timeout", ws.ProxyProtocol.HeaderTimeout.D(), DefaultProxyHeaderTimeout},
		{"tcp strategy", db.Strategy, DefaultTCPStrategy},
		{"tcp weights", []int{db.Servers[0].Weight, db.Servers[1].Weight}, []int{1, 3}},
		{"tcp health", []time.Duration{db.HealthCheck.Interval.D(), db.HealthCheck.Timeout.D()}, []time.Duration{DefaultHealthInterval, DefaultHealthTimeout}},
		{"tcp connect timeout", db.ConnectTimeout.D(), DefaultTCPConnectTimeout},
		{"proxy version", db.ProxyProtocol.Version, 2},
		{"sni lower case", cy.TCPRoutes["pass"].SNI, "db.test"},
		// The catch-all takes every connection on "tcp", so routes
		// without entryPoints are not served there.
		{"route entry points", cy.Routes["r"].EntryPoints, []string{"web", "websecure"}},
		{"claims all", []bool{cy.TCPClaimsAll("tcp"), cy.TCPClaimsAll("websecure")}, []bool{true, false}},
		// Terminated names get certificates; passed-through ones do not.
		{"routed hosts", cy.RoutedHosts(), []string{"*.term.test", "a.test"}},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestDocsL4Examples loads the example of each layer-4 section of
// docs/config.md.
func TestDocsL4Examples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeKeyPair(t, dir)
	for _, section := range []string{"## `tcpRoutes`", "## HTTP/3", "## Client certificates", "## PROXY protocol"} {
		t.Run(section, func(t *testing.T) {
			_, rest, ok := strings.Cut(string(doc), "\n"+section+"\n")
			if !ok {
				t.Fatalf("docs/config.md has no section %s", section)
			}
			rest, _, _ = strings.Cut(rest, "\n## ")
			_, rest, ok = strings.Cut(rest, "```yaml\n")
			body, _, ok2 := strings.Cut(rest, "```")
			if !ok || !ok2 {
				t.Fatalf("section %s has no YAML example", section)
			}
			body = strings.ReplaceAll(body, "/etc/zoku/clients-ca.pem", filepath.Join(dir, "cert.pem"))
			if _, err := Parse("example.yaml", []byte(body), env()); err != nil {
				t.Fatalf("the example of %s: %v", section, err)
			}
		})
	}
}
