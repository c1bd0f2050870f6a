package netscaler_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/nitrosim"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

const (
	nsUser     = "nsroot"
	nsPassword = "S3cret-NITRO-pa55"
	domain     = "www.example.test"
)

// rig is the seed 003 setup: an HTTP vserver whose only policy redirects
// to HTTPS at priority 100, an SSL vserver, and Pebble validating HTTP-01
// against the HTTP vserver.
type rig struct {
	sim               *nitrosim.Sim
	ca                *embedca.CA
	store             *storage.Store
	httpAddr, sslAddr string
	caFile            string
	logs              *deploytest.Buffer
	yaml              string // the targets.ns section, without its netscaler keys
}

func newRig(t *testing.T) *rig {
	t.Helper()
	sim, err := nitrosim.Start(nitrosim.Options{Username: nsUser, Password: nsPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	r := &rig{sim: sim, logs: &deploytest.Buffer{}}
	if r.httpAddr, err = sim.AddVserver("lb", "testHTTP", "HTTP"); err != nil {
		t.Fatal(err)
	}
	if r.sslAddr, err = sim.AddVserver("lb", "testSSL", "SSL"); err != nil {
		t.Fatal(err)
	}
	configure(t, sim, "POST", "responderaction", map[string]any{"name": "redirect_https", "type": "redirect",
		"target": `"https://" + HTTP.REQ.HOSTNAME.HTTP_URL_SAFE + HTTP.REQ.URL.PATH_AND_QUERY.HTTP_URL_SAFE`})
	configure(t, sim, "POST", "responderpolicy", map[string]any{"name": "redirect_pol", "rule": "HTTP.REQ.IS_VALID", "action": "redirect_https"})
	configure(t, sim, "PUT", "lbvserver_responderpolicy_binding", map[string]any{"name": "testHTTP", "policyname": "redirect_pol", "priority": 100})
	r.ca = testenv.StartCA(t, embedca.Options{HTTPPort: deploytest.Port(t, r.httpAddr)})
	if r.store, err = storage.Open(filepath.Join(t.TempDir(), "store")); err != nil {
		t.Fatal(err)
	}
	r.caFile = filepath.Join(t.TempDir(), "nsip-ca.pem")
	if err := os.WriteFile(r.caFile, sim.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("ZOKU_TEST_LOGS") != "" {
			t.Logf("deploy log:\n%s", r.logs.String())
		}
		if strings.Contains(r.logs.String(), nsPassword) {
			t.Errorf("the NITRO password appears in the log:\n%s", r.logs.String())
		}
	})
	return r
}

func configure(t *testing.T, sim *nitrosim.Sim, method, resource string, obj map[string]any) {
	t.Helper()
	if err := sim.Configure(method, resource, "", "", obj); err != nil {
		t.Fatal(err)
	}
}

// config renders the seed's target; extra lines go under netscaler:.
func (r *rig) config(t *testing.T, extra ...string) *config.Config {
	t.Helper()
	ns := map[string]string{
		"url": r.sim.URL(), "username": nsUser, "password": "${NS_PASSWORD}", "caFile": r.caFile,
		"httpVserver": "testHTTP", "sslVserver": "testSSL", "certKey": "example_cert", "redirectPolicy": "redirect_pol",
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(e, ": ")
		if v == "" {
			delete(ns, k)
			continue
		}
		ns[k] = v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "entryPoints:\n  unused: {address: \"127.0.0.1:0\"}\ncertificates:\n  acme:\n    server: %s\n    acceptTOS: true\n", r.ca.DirectoryURL())
	fmt.Fprintf(&b, "targets:\n  ns:\n    type: netscaler\n    certificates: [{main: %s}]\n    challenge: {selfCheckAddress: \"%s\"}\n    verify: {address: \"%s\", timeout: 5s}\n    netscaler:\n", domain, r.httpAddr, r.sslAddr)
	for _, k := range []string{"url", "username", "password", "auth", "caFile", "fingerprint", "insecure", "httpVserver", "sslVserver", "certKey", "redirectPolicy", "priority", "sni"} {
		if v, ok := ns[k]; ok {
			fmt.Fprintf(&b, "      %s: %q\n", k, v)
		}
	}
	b.WriteString(r.yaml)
	cfg, err := config.Parse("zoku.yaml", []byte(b.String()), func(k string) string {
		if k == "NS_PASSWORD" {
			return nsPassword
		}
		return ""
	})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	return cfg
}

// runner builds a Runner for cfg against the rig's CA (or ca when set).
func (r *rig) runner(t *testing.T, cfg *config.Config, ca *embedca.CA) *deploy.Runner {
	if ca == nil {
		ca = r.ca
	}
	return deploytest.Runner(t, cfg, ca, r.store, r.logs)
}

// served is the leaf the SSL vserver presents for the domain.
func (r *rig) served(t *testing.T) *x509.Certificate {
	t.Helper()
	chain, err := deploytest.Served(r.sslAddr, domain)
	if err != nil {
		t.Fatalf("SSL vserver: %v", err)
	}
	return chain[0]
}

// stored is the leaf in the store.
func (r *rig) stored(t *testing.T) *x509.Certificate {
	t.Helper()
	b, err := r.store.LoadCertificate(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := b.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// writes are the requests that change something (not GET, login, logout).
func writes(reqs []string) []string {
	var out []string
	for _, q := range reqs {
		if strings.HasPrefix(q, "GET ") || q == "POST login" || q == "POST logout" {
			continue
		}
		out = append(out, q)
	}
	return out
}

// addPolicy creates a responder policy that matches nothing; a priority
// above zero binds it on testHTTP.
func addPolicy(t *testing.T, r *rig, name string, priority int) {
	t.Helper()
	configure(t, r.sim, "POST", "responderaction", map[string]any{"name": name + "_act", "type": "noop"})
	configure(t, r.sim, "POST", "responderpolicy", map[string]any{"name": name, "rule": "false", "action": name + "_act"})
	if priority > 0 {
		configure(t, r.sim, "PUT", "lbvserver_responderpolicy_binding", map[string]any{"name": "testHTTP", "policyname": name, "priority": priority})
	}
}

func zokuObject(name string) bool { return strings.HasPrefix(name, "zoku_acme_") }
