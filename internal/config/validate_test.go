package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// eps is a valid pair of entry points (6 lines) most cases start from.
const eps = "entryPoints:\n  web:\n    address: \":80\"\n  websecure:\n    address: \":443\"\n    tls: {}\n"

// acmeOK is a valid ACME section for cases about other keys.
const acmeOK = "  acme:\n    server: embedded\n    challenges:\n      http: {entryPoint: web}\n"

// writeKeyPair writes cert.pem, key.pem and other-key.pem (a key that does
// not match) into dir.
func writeKeyPair(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "files.example.test"},
		DNSNames:     []string{"files.example.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", "CERTIFICATE", der)
	for name, k := range map[string]*ecdsa.PrivateKey{"key.pem": key, "other-key.pem": other} {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name, "PRIVATE KEY", b)
	}
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir)
	getenv := env("DIR", dir)

	tests := []struct {
		name, src, want string
	}{
		// entry points
		{"no entry points", "routes: {} # <-\n", "no entry points; add one"},
		{"no address", "entryPoints:\n  web: # <-\n    maxBodyBytes: 1\n", "entryPoints.web has no address"},
		{"address not host:port", "entryPoints:\n  web:\n    address: \"80\" # <-\n", `entryPoints.web.address "80": not host:port`},
		{"port out of range", "entryPoints:\n  web:\n    address: \":70000\" # <-\n", `port "70000" is not a number from 0 to 65535`},
		{"bad host", "entryPoints:\n  web:\n    address: \"bad host:80\" # <-\n", `host "bad host" is not an IP address or a host name`},
		{"redirect to unknown", eps + "  plain:\n    address: \":81\"\n    redirect:\n      entryPoint: websecur # <-\n", `entryPoints.plain.redirect.entryPoint: no entry point named "websecur" (did you mean "websecure"?)`},
		{"redirect without target", eps + "  plain:\n    address: \":81\"\n    redirect: # <-\n", "entryPoints.plain.redirect has no entryPoint"},
		{"redirect to plain", eps + "  plain:\n    address: \":81\"\n    redirect:\n      entryPoint: web # <-\n", `entry point "web" has no tls`},
		{"redirect to itself", "entryPoints:\n  websecure:\n    address: \":443\"\n    tls: {}\n    redirect: {entryPoint: websecure} # <-\n", "redirects websecure to itself"},
		{"redirect scheme", eps + "  plain:\n    address: \":81\"\n    redirect:\n      entryPoint: websecure\n      scheme: ftp # <-\n", `scheme "ftp" is unknown`},
		{"tls version", "entryPoints:\n  s:\n    address: \":443\"\n    tls:\n      minVersion: \"1.4\" # <-\n", `entryPoints.s.tls.minVersion "1.4" is unknown`},
		{"tls min above max", "entryPoints:\n  s:\n    address: \":443\"\n    tls:\n      minVersion: \"1.3\" # <-\n      maxVersion: \"1.2\"\n", `minVersion "1.3" is above maxVersion "1.2"`},
		{"cipher typo", "entryPoints:\n  s:\n    address: \":443\"\n    tls:\n      cipherSuites:\n        - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA257 # <-\n", `cipherSuites[0]: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA257" is unknown (did you mean "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"?)`},
		{"cipher insecure", "entryPoints:\n  s:\n    address: \":443\"\n    tls:\n      cipherSuites: [TLS_AES_128_GCM_SHA256, TLS_RSA_WITH_RC4_128_SHA] # <-\n", `cipherSuites[1]: "TLS_RSA_WITH_RC4_128_SHA" is insecure`},
		{"curve", "entryPoints:\n  s:\n    address: \":443\"\n    tls:\n      curvePreferences:\n        - X25519\n        - P-256 # <-\n", `curvePreferences[1] "P-256" is unknown`},
		{"empty alpn", "entryPoints:\n  s:\n    address: \":443\"\n    tls:\n      alpn: [h2, \"\"] # <-\n", `alpn[1] is empty`},
		{"hsts on plain", "entryPoints:\n  web:\n    address: \":80\"\n    hsts: {} # <-\n", "entryPoints.web.hsts needs tls"},
		{"trusted proxy", "entryPoints:\n  web:\n    address: \":80\"\n    trustedProxies:\n      - 10.0.0.0/8\n      - 10.0.0.300 # <-\n", `trustedProxies[1] "10.0.0.300" is not an IP or CIDR`},
		{"negative max body", "entryPoints:\n  web:\n    address: \":80\"\n    maxBodyBytes: -1 # <-\n", "maxBodyBytes must not be negative"},
		{"first problem in sorted order", "entryPoints:\n  b:\n    address: \"x\"\n  a:\n    address: \"y\" # <-\n", `entryPoints.a.address "y"`},

		// certificates
		{"server missing", eps + "certificates: # <-\n  onHostRule: true\n", "certificates.acme.server is not set"},
		{"server bad url", eps + "certificates:\n  acme:\n    server: https:///directory # <-\n", "is not a directory URL"},
		{"server bad name", eps + "certificates:\n  acme:\n    server: lets encrypt # <-\n", `certificates.acme.server "lets encrypt" is unknown`},
		{"key type", eps + "certificates:\n  acme:\n    keyType: ec521 # <-\n", `keyType "ec521" is unknown; use one of ec256, ec384, rsa2048, rsa3072, rsa4096`},
		{"eab half", eps + "certificates:\n  acme:\n    eab: # <-\n      kid: k\n", "needs both kid and hmac"},
		{"http challenge on tls", eps + "certificates:\n  acme:\n    challenges:\n      http:\n        entryPoint: websecure # <-\n", `entry point "websecure" is the wrong kind; name a plain (non-TLS) one`},
		{"alpn challenge on plain", eps + "certificates:\n  acme:\n    challenges:\n      tlsAlpn:\n        entryPoint: web # <-\n", `entry point "web" is the wrong kind; name one with tls`},
		{"challenge unknown entry point", eps + "certificates:\n  acme:\n    challenges:\n      http:\n        entryPoint: wbe # <-\n", `no entry point named "wbe" (did you mean "web"?)`},
		{"challenge without entry point", eps + "certificates:\n  acme:\n    challenges:\n      http: # <-\n", "challenges.http has no entryPoint"},
		{"dns provider", eps + "certificates:\n  acme:\n    challenges:\n      dns: # <-\n        resolvers: [\"1.1.1.1:53\"]\n", "challenges.dns has no provider"},
		{"dns resolver", eps + "certificates:\n  acme:\n    challenges:\n      dns:\n        provider: rfc2136\n        resolvers: [\"1.1.1.1\"] # <-\n", `resolvers[0] "1.1.1.1" is not host:port`},
		{"no challenge", eps + "certificates:\n  onHostRule: true\n  acme:\n    server: embedded\n    challenges: {} # <-\n", "configures no challenge"},
		{"wildcard needs dns", eps + "certificates:\n" + acmeOK + "  domains:\n    - main: example.test\n      sans:\n        - \"*.example.test\" # <-\n", `certificates.domains[0].sans[0] "*.example.test" is a wildcard, which only DNS-01 can validate`},
		{"bad domain", eps + "certificates:\n" + acmeOK + "  domains:\n    - main: exa_mple..test # <-\n", `certificates.domains[0].main "exa_mple..test" is not a domain name`},
		{"domain without main", eps + "certificates:\n" + acmeOK + "  domains:\n    - sans: [a.test] # <-\n", "certificates.domains[0] has no main name"},
		{"cert file missing", eps + "certificates:\n  files:\n    - certFile: ${DIR}/none.pem # <-\n      keyFile: ${DIR}/key.pem\n", "certificates.files[0] (" + dir + "/none.pem, " + dir + "/key.pem): open " + dir + "/none.pem: no such file"},
		{"cert key mismatch", eps + "certificates:\n  files:\n    - certFile: ${DIR}/cert.pem # <-\n      keyFile: ${DIR}/other-key.pem\n", "private key does not match public key"},
		{"cert file half", eps + "certificates:\n  files:\n    - certFile: ${DIR}/cert.pem # <-\n", "needs both certFile and keyFile"},

		// routes
		{"route host", eps + "routes:\n  r:\n    host: bad_host! # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.host "bad_host!" is not a host name`},
		{"route inner wildcard", eps + "routes:\n  r:\n    host: a.*.test # <-\n    service: s\nservices:\n  s: {static: {}}\n", `routes.r.host "a.*.test" is not a host name`},
		{"route without host", eps + "routes:\n  r: # <-\n    service: s\nservices:\n  s: {static: {}}\n", "routes.r has no host"},
		{"route without service", eps + "routes:\n  r: # <-\n    host: a.test\n", "routes.r has no service"},
		{"route unknown service", eps + "routes:\n  r:\n    host: a.test\n    service: aip # <-\nservices:\n  api: {static: {}}\n", `routes.r.service: no service named "aip" (did you mean "api"?)`},
		{"route path prefix", eps + "routes:\n  r:\n    host: a.test\n    pathPrefix: api # <-\n    service: s\nservices:\n  s: {static: {}}\n", `pathPrefix "api" must start with /`},
		{"route unknown entry point", eps + "routes:\n  r:\n    host: a.test\n    service: s\n    entryPoints:\n      - web\n      - https # <-\nservices:\n  s: {static: {}}\n", `routes.r.entryPoints[1]: no entry point named "https"`},
		{"route nowhere to serve", "entryPoints:\n  a:\n    address: \":80\"\n    tls: {}\n    redirect: {entryPoint: b}\n  b:\n    address: \":81\"\n    tls: {}\n    redirect: {entryPoint: a}\n" + "routes:\n  r: # <-\n    host: a.test\n    service: s\nservices:\n  s: {static: {}}\n", "routes.r is served on no entry point"},
		{"route header name", eps + "routes:\n  r:\n    host: a.test\n    service: s\n    responseHeaders:\n      \"Bad Header\": x # <-\nservices:\n  s: {static: {}}\n", `"Bad Header" is not a header name`},

		// services
		{"service servers and static", eps + "services:\n  s: # <-\n    static: {}\n    servers: [{url: \"http://a\"}]\n", "services.s needs exactly one of servers, static, failover, mirroring or weighted (it has 2)"},
		{"service empty", eps + "services:\n  s: # <-\n    strategy: weighted\n", "services.s needs exactly one of servers, static, failover, mirroring or weighted (it has 0)"},
		{"server relative url", eps + "services:\n  s:\n    servers:\n      - url: /backend # <-\n", `services.s.servers[0].url "/backend" is not an absolute http://, https:// or h2c:// URL`},
		{"server ftp url", eps + "services:\n  s:\n    servers:\n      - url: http://ok\n      - url: ftp://b # <-\n", `servers[1].url "ftp://b"`},
		{"server weight", eps + "services:\n  s:\n    servers:\n      - url: http://a\n        weight: -2 # <-\n", "services.s.servers[0].weight must be 1 or more"},
		{"strategy", eps + "services:\n  s:\n    servers: [{url: \"http://a\"}]\n    strategy: random # <-\n", `strategy "random" is unknown; use one of round-robin, weighted, least-requests, power-of-two-choices`},
		{"health path", eps + "services:\n  s:\n    servers: [{url: \"http://a\"}]\n    healthCheck:\n      path: health # <-\n", `healthCheck.path "health" must start with /`},
		{"health status", eps + "services:\n  s:\n    servers: [{url: \"http://a\"}]\n    healthCheck:\n      expectedStatus: 99 # <-\n", "expectedStatus 99 is not an HTTP status"},
		{"retries", eps + "services:\n  s:\n    servers: [{url: \"http://a\"}]\n    retries: -1 # <-\n", "services.s.retries must not be negative"},
		{"static status", eps + "services:\n  s:\n    static:\n      status: 700 # <-\n", "static.status 700 is not an HTTP status"},

		// logs
		{"log format", eps + "log:\n  format: xml # <-\n", `log.format "xml" is unknown`},
		{"log level", eps + "log:\n  level: verbose # <-\n", `log.level "verbose" is unknown`},
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

func TestValidateTOMLLines(t *testing.T) {
	src := "[entryPoints.web]\naddress = \":80\"\n\n[routes.r]\nhost = \"a.test\"\nservice = \"nope\" # <-\n"
	_, err := Parse("zoku.toml", []byte(src), env())
	want := fmt.Sprintf(`config: zoku.toml:%d:1: routes.r.service: no service named "nope"; there are none`, markedLine(t, src))
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := &Config{EntryPoints: map[string]*EntryPoint{"web": {Address: ":80"}}, Routes: map[string]*Route{"r": {Host: "a.test", Service: "s"}}}
	err := c.Validate()
	want := `config: routes.r.service: no service named "s"; there are none`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestValidCertFiles(t *testing.T) {
	dir := t.TempDir()
	writeKeyPair(t, dir)
	src := eps + "certificates:\n  files:\n    - certFile: ${DIR}/cert.pem\n      keyFile: ${DIR}/key.pem\n"
	c, err := Parse("zoku.yaml", []byte(src), env("DIR", dir))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Certificates.Files[0].KeyFile, filepath.Join(dir, "key.pem"); got != want {
		t.Errorf("keyFile: got %q, want %q", got, want)
	}
}
