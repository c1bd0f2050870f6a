package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestExamplesLoad(t *testing.T) {
	t.Run("quickstart", func(t *testing.T) {
		c, err := Load("../../examples/quickstart.yaml", env())
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"server", c.Certificates.ACME.Server, "embedded"},
			{"acceptTOS", c.Certificates.ACME.AcceptTOS, true},
			{"storage", c.Certificates.ACME.Storage, "./.zoku"},
			{"onHostRule", c.Certificates.OnHostRule, true},
			{"web address", c.EntryPoints["web"].Address, "127.0.0.1:8080"},
			{"websecure address", c.EntryPoints["websecure"].Address, "127.0.0.1:8443"},
			{"hsts on", c.EntryPoints["websecure"].HSTS != nil, true},
			{"http3 on", c.EntryPoints["websecure"].HTTP3 != nil, true},
			{"http-01 on web", c.Certificates.ACME.Challenges.HTTP.EntryPoint, "web"},
			{"tls-alpn-01 on websecure", c.Certificates.ACME.Challenges.TLSALPN.EntryPoint, "websecure"},
			{"route", []string{c.Routes["demo"].Host, c.Routes["demo"].Service}, []string{"demo.localhost", "demo"}},
			{"securityHeaders on", c.Routes["demo"].Middlewares, []string{"secure"}},
			{"securityHeaders", c.Middlewares["secure"].Kind(), "securityHeaders"},
			{"body", c.Services["demo"].Static.Body, "Hello from zoku\n"},
			{"hosts", c.RoutedHosts(), []string{"demo.localhost"}},
		}
		for _, ck := range checks {
			if !reflect.DeepEqual(ck.got, ck.want) {
				t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
			}
		}
		if s, p, code := c.RedirectTarget(c.EntryPoints["web"]); s != "https" || p != 8443 || code != 308 {
			t.Errorf("redirect: got %s %d %d, want https 8443 308", s, p, code)
		}
	})

	t.Run("middlewares", func(t *testing.T) {
		t.Chdir("../..") // it names its htpasswd file from the repository root
		c, err := Load("examples/middlewares.yaml", env())
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, m := range c.Middlewares {
			kinds[m.Kind()] = true
		}
		for _, k := range []string{"chain", "securityHeaders", "compress", "rateLimit", "stripPrefix", "buffering", "basicAuth", "forwardAuth", "ipAllowList", "circuitBreaker", "errors", "redirectRegex"} {
			if !kinds[k] {
				t.Errorf("examples/middlewares.yaml shows no %s middleware", k)
			}
		}
		svcKinds := map[string]bool{}
		for _, s := range c.Services {
			svcKinds[s.Kind()] = true
		}
		for _, k := range []string{"static", "servers", "failover", "mirroring", "weighted"} {
			if !svcKinds[k] {
				t.Errorf("examples/middlewares.yaml shows no %s service", k)
			}
		}
		if c.Certificates.ACME.Server != "embedded" {
			t.Errorf("server %q, want embedded", c.Certificates.ACME.Server)
		}
	})

	t.Run("traefik seed", func(t *testing.T) {
		getenv := env("IIJ_DPF_API_TOKEN", "dummy-token", "IIJ_DPF_DPM_SERVICE_CODE", "dummy-code")
		c, err := Load("../../examples/traefik-seed.yaml", getenv)
		if err != nil {
			t.Fatal(err)
		}
		dns := c.Certificates.ACME.Challenges.DNS
		checks := []struct {
			name      string
			got, want any
		}{
			{"http address", c.EntryPoints["http"].Address, ":80"},
			{"https address", c.EntryPoints["https"].Address, ":443"},
			{"redirect", c.EntryPoints["http"].Redirect.EntryPoint, "https"},
			{"min version", c.EntryPoints["https"].TLS.MinVersion, "1.2"},
			{"email set", c.Certificates.ACME.Email != "", true},
			{"storage", c.Certificates.ACME.Storage, "/traefik/acme/account"},
			{"http challenge", c.Certificates.ACME.Challenges.HTTP.EntryPoint, "http"},
			{"dns provider", dns.Provider, "iijdpf"},
			{"dns token", string(dns.Env["IIJ_DPF_API_TOKEN"]), "dummy-token"},
			{"dns service code", string(dns.Env["IIJ_DPF_DPM_SERVICE_CODE"]), "dummy-code"},
			{"domains", c.Certificates.Domains, []DomainSet{{Main: "*.ike.iij.jp"}}},
			{"onHostRule", c.Certificates.OnHostRule, true},
			{"routes served on https only", c.Routes["www"].EntryPoints, []string{"https"}},
		}
		for _, ck := range checks {
			if !reflect.DeepEqual(ck.got, ck.want) {
				t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
			}
		}
	})

	t.Run("traefik seed without credentials", func(t *testing.T) {
		_, err := Load("../../examples/traefik-seed.yaml", env())
		if err == nil || !strings.Contains(err.Error(), "environment variable IIJ_DPF_API_TOKEN is not set") ||
			!strings.HasPrefix(err.Error(), "config: ../../examples/traefik-seed.yaml:") {
			t.Errorf("got %v, want the missing IIJ_DPF_API_TOKEN with its line", err)
		}
	})
}

// TestDocsExamples loads the YAML and TOML examples of docs/config.md and
// checks they describe the same configuration.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(lang string) string {
		_, rest, ok := strings.Cut(string(doc), "## A complete example")
		if !ok {
			t.Fatal("docs/config.md has no complete example section")
		}
		_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
		body, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Fatalf("docs/config.md has no %s example", lang)
		}
		return body
	}
	getenv := env("CLOUDFLARE_DNS_API_TOKEN", "dummy")
	y, err := Parse("example.yaml", []byte(block("yaml")), getenv)
	if err != nil {
		t.Fatalf("YAML example: %v", err)
	}
	tm, err := Parse("example.toml", []byte(block("toml")), getenv)
	if err != nil {
		t.Fatalf("TOML example: %v", err)
	}
	if !reflect.DeepEqual(stripSource(y), stripSource(tm)) {
		by, _ := y.YAML()
		bt, _ := tm.YAML()
		t.Errorf("docs examples differ:\n--- yaml\n%s\n--- toml\n%s", by, bt)
	}
}
