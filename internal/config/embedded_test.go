package config

import (
	"strings"
	"testing"
)

// embedded.httpPort and tlsPort say where the embedded CA validates; they
// default to the challenge entry points' ports and must not contradict
// them.
func TestEmbeddedPorts(t *testing.T) {
	cases := []struct {
		name, yaml        string
		wantHTTP, wantTLS int
		wantErr           string
		line              int
	}{
		{"defaults", "certificates:\n  acme: {server: embedded}\n", 0, 0, "", 0},
		{"set", "certificates:\n  acme:\n    server: embedded\n    embedded: {httpPort: 8080, tlsPort: 8443}\n", 8080, 8443, "", 0},
		{"from the entry points", "entryPoints:\n  web: {address: \"127.0.0.1:5002\"}\n  tls: {address: \"127.0.0.1:5001\", tls: {}}\ncertificates:\n  acme:\n    server: embedded\n    challenges: {http: {entryPoint: web}, tlsAlpn: {entryPoint: tls}}\n", 5002, 5001, "", 0},
		{"the same as the entry point", "entryPoints:\n  web: {address: \"127.0.0.1:5002\"}\ncertificates:\n  acme:\n    server: embedded\n    challenges: {http: {entryPoint: web}}\n    embedded: {httpPort: 5002}\n", 5002, 0, "", 0},
		{"not a port", "certificates:\n  acme:\n    server: embedded\n    embedded:\n      httpPort: 70000\n", 0, 0, "certificates.acme.embedded.httpPort 70000 is not a port; use 1 to 65535", 5},
		{"negative", "certificates:\n  acme:\n    server: embedded\n    embedded:\n      tlsPort: -1\n", 0, 0, "certificates.acme.embedded.tlsPort -1 is not a port", 5},
		{"another CA", "certificates:\n  acme:\n    server: letsencrypt\n    embedded:\n      httpPort: 8080\n", 0, 0, "applies only to server: embedded", 5},
		{"contradicts the entry point", "entryPoints:\n  web: {address: \"127.0.0.1:5002\"}\ncertificates:\n  acme:\n    server: embedded\n    challenges: {http: {entryPoint: web}}\n    embedded:\n      httpPort: 8080\n", 0, 0,
			"certificates.acme.embedded.httpPort 8080 differs from the port of entry point web (5002), which answers certificates.acme.challenges.http", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.yaml
			if !strings.Contains(y, "entryPoints:") {
				y += "entryPoints:\n  unused: {address: \"127.0.0.1:0\"}\n" // a config needs one
			}
			c, err := Parse("t.yaml", []byte(y), nil)
			if tc.wantErr != "" {
				e, ok := err.(*Error)
				if !ok || !strings.Contains(e.Reason, tc.wantErr) || e.Line != tc.line {
					t.Fatalf("got %v, want line %d saying %q", err, tc.line, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h, s := c.EmbeddedPorts(); h != tc.wantHTTP || s != tc.wantTLS {
				t.Errorf("EmbeddedPorts() = %d, %d; want %d, %d", h, s, tc.wantHTTP, tc.wantTLS)
			}
		})
	}
}
