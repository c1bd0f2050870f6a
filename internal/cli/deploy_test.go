package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/nitrosim"
)

const seedPassword = "Seed-003-NITRO-pw"

// seedExample is examples/netscaler.yaml with only what exists in
// production and not here swapped for the test's: the CA, the storage
// folder, the NSIP and its fingerprint, the password file, and the two
// commented lines that point the self-check and the TLS check at the
// simulated VIPs. Every swap must hit, so the example cannot drift away
// from what is tested.
func seedExample(t *testing.T, sim *nitrosim.Sim, seed *nitrosim.Seed, ca *embedca.CA) string {
	t.Helper()
	raw, err := os.ReadFile("../../examples/netscaler.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "netscaler.password")
	if err := os.WriteFile(pwFile, []byte(seedPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := string(raw)
	for _, s := range []struct{ from, to string }{
		{"server: letsencrypt ", "server: " + ca.DirectoryURL() + " "},
		{"storage: /var/lib/zoku", "storage: " + filepath.Join(dir, "store")},
		{"url: https://192.168.1.1 ", "url: " + sim.URL() + " "},
		{"file:/etc/zoku/netscaler.password", "file:" + pwFile},
		{`"5C:9A:1E:3B:77:0D:42:A8:61:F2:0B:96:D4:3C:88:E7:19:AA:5F:02:C6:7B:E1:34:9D:50:2E:F8:A3:16:4B:C0"`, sim.Fingerprint()},
		{"# challenge:\n    #   selfCheckAddress: 203.0.113.10:80", "challenge:\n      selfCheckAddress: " + seed.HTTPAddr},
		{"# verify: {address: 203.0.113.10:443}", "verify: {address: \"" + seed.SSLAddr + "\"}"},
	} {
		if strings.Count(y, s.from) != 1 {
			t.Fatalf("examples/netscaler.yaml no longer holds %q exactly once; update this test with it", s.from)
		}
		y = strings.Replace(y, s.from, s.to, 1)
	}
	p := filepath.Join(dir, "netscaler.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// seedAppliance starts the NITRO simulator set up like seed 003's
// appliance, serving a self-signed certificate, and a CA that validates
// HTTP-01 through its HTTP VIP.
func seedAppliance(t *testing.T) (*nitrosim.Sim, *nitrosim.Seed, *embedca.CA) {
	t.Helper()
	sim, err := nitrosim.Start(nitrosim.Options{Username: "nsroot", Password: seedPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	cert, key := deploytest.SelfSigned(t, "www.example.net")
	seed, err := sim.SetUpSeed(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return sim, seed, testCA(t, embedca.Options{HTTPPort: deploytest.Port(t, seed.HTTPAddr)})
}

// The seed 003 flow as the cron line runs it: zoku deploy --config
// examples/netscaler.yaml against the NITRO simulator set up like the
// blog's appliance (HTTP VIP redirecting at 100, SSL pair example_cert).
func TestDeploySeedExample(t *testing.T) {
	sim, seed, ca := seedAppliance(t)
	cfg := seedExample(t, sim, seed, ca)

	dry := mustZoku(t, "deploy", "--config", cfg, "--dry-run")
	if !strings.Contains(dry.stdout, "netscaler www.example.net: would obtain and deploy") {
		t.Errorf("dry run says:\n%s", dry.stdout)
	}
	first := mustZoku(t, "deploy", "--config", cfg)
	if !strings.Contains(first.stdout, "netscaler www.example.net: obtained and deployed (serial ") {
		t.Errorf("first run says:\n%s", first.stdout)
	}
	ck, ok := sim.CertKey("example_cert")
	if !ok || ck.Link == "" {
		t.Fatalf("certkey after the run: %+v", ck)
	}
	served := deploytest.ServedSerial(t, seed.SSLAddr, "www.example.net")
	if served.Cmp(ck.Serial) != 0 {
		t.Errorf("the SSL VIP serves %x, the certkey holds %x", served, ck.Serial)
	}
	if b := sim.Responders("testHTTP"); len(b) != 1 || b[0].Priority != 100 {
		t.Errorf("HTTP VIP policies after the run: %+v; want the redirect alone", b)
	}
	again := mustZoku(t, "deploy", "--config", cfg)
	if !strings.Contains(again.stdout, "netscaler www.example.net: up to date") {
		t.Errorf("second run says:\n%s", again.stdout)
	}
	for _, r := range []result{dry, first, again} {
		if os.Getenv("ZOKU_TEST_LOGS") != "" {
			t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, seedPassword) {
			t.Fatal("the password appears in zoku's output")
		}
	}
}

// Failures exit 1 with a line naming the target, never the password.
func TestDeployFailures(t *testing.T) {
	sim, err := nitrosim.Start(nitrosim.Options{Username: "nsroot", Password: seedPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	seed, err := sim.SetUpSeed(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca := testCA(t, embedca.Options{HTTPPort: deploytest.Port(t, seed.HTTPAddr)})
	cfg := seedExample(t, sim, seed, ca)
	wrong := strings.Replace(readFile(t, cfg), "username: nsroot", "username: admin", 1)
	wrongCfg := filepath.Join(t.TempDir(), "wrong.yaml")
	if err := os.WriteFile(wrongCfg, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown target", []string{"deploy", "--config", cfg, "--target", "nope"}, 1, `no target named "nope" in`},
		{"wrong credentials", []string{"deploy", "--config", wrongCfg}, 1, "zoku deploy: 1 of 1 targets failed: netscaler (each has its line above)"},
		{"force with dry run", []string{"deploy", "--config", cfg, "--force", "--dry-run"}, 1, "do not go together"},
		{"no such file", []string{"deploy", "--config", filepath.Join(t.TempDir(), "none.yaml")}, 1, "cannot read the file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := zoku(t, "", false, tc.args...)
			if os.Getenv("ZOKU_TEST_LOGS") != "" {
				t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			}
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q\nstdout: %s", r.code, r.stderr, tc.code, tc.want, r.stdout)
			}
			if strings.Contains(r.stdout+r.stderr, seedPassword) {
				t.Error("the password appears in zoku's output")
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The same seed 003 flow inside `zoku run`: the runner deploys on its
// own schedule, and the served certificate is the deployed one.
func TestRunDeploysSeedTargets(t *testing.T) {
	sim, seed, ca := seedAppliance(t)
	path := seedExample(t, sim, seed, ca)
	raw := readFile(t, path) + "\nadmin:\n  disabled: true\n"
	must(t, os.WriteFile(path, []byte(raw), 0o600))
	cfg, err := config.Load(path, os.Getenv)
	must(t, err)
	runs := make(chan []deploy.Result, 16)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := startServer(ctx, Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv}, path, cfg, slog.New(slog.DiscardHandler),
		engineOptions{onDeploy: func(_ string, r []deploy.Result) { runs <- r }})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.close() })
	select {
	case results := <-runs:
		if len(results) != 1 || results[0].Err != nil {
			t.Fatalf("first run inside zoku run: %+v", results)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the runner did not deploy within 90 s")
	}
	ck, ok := sim.CertKey("example_cert")
	if !ok {
		t.Fatal("no certkey")
	}
	if served := deploytest.ServedSerial(t, seed.SSLAddr, "www.example.net"); served.Cmp(ck.Serial) != 0 {
		t.Fatalf("the SSL VIP serves %x, the certkey holds %x", served, ck.Serial)
	}
	if st := srv.eng.targets.Status(); len(st) != 1 || st[0].LastError != "" {
		t.Fatalf("target status: %+v", st)
	}
}
