package config_test

// The target tests load configs the way zoku does, with the target types
// it ships registered; those packages import config, so these tests live
// outside it.

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/config"
	_ "github.com/zoku/zoku/internal/deploy/builtin"
	"github.com/zoku/zoku/internal/deploy/exec"
	"github.com/zoku/zoku/internal/deploy/haproxy"
	"github.com/zoku/zoku/internal/deploy/netscaler"
	"github.com/zoku/zoku/internal/deploy/nginx"
)

// getenv returns a lookup of the variables kv (name, value, ...).
func getenv(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// targetsBase is a valid config with one entry point and a CA; cases add
// a targets: section.
const targetsBase = "entryPoints:\n  web: {address: \":80\"}\ncertificates:\n  acme:\n    server: letsencrypt\n"

func TestTargetDefaults(t *testing.T) {
	y := targetsBase + `targets:
  ns:
    type: NetScaler
    certificates: [{main: WWW.Example.NET}]
    netscaler: {url: "https://192.0.2.10", username: nsroot, password: "${NS_PW}", insecure: true, httpVserver: h, sslVserver: s}
  hap:
    type: haproxy
    certificates: [{main: a.example.net}]
    challenge: {listen: "127.0.0.1:8888"}
  web:
    type: nginx
    certificates: [{main: b.example.net}]
    challenge: {webroot: /var/www/acme}
  box:
    type: exec
    certificates: [{main: c.example.net}]
    challenge: {exec: {present: "p", cleanup: "c"}}
    exec: {command: "push"}
`
	c, err := config.Parse("t.yaml", []byte(y), getenv("NS_PW", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	ns, hap, web, box := c.Targets["ns"], c.Targets["hap"], c.Targets["web"], c.Targets["box"]
	nsS, hapS := ns.Settings.(*netscaler.Settings), hap.Settings.(*haproxy.Settings)
	webS, boxS := web.Settings.(*nginx.Settings), box.Settings.(*exec.Settings)
	checks := []struct {
		name      string
		got, want any
	}{
		{"type lower-cased", ns.Type, "netscaler"},
		{"names normalised", ns.Certificates[0].Main, "www.example.net"},
		{"netscaler answers with the responder", ns.Challenge.Responder, true},
		{"session auth", nsS.Auth, "session"},
		{"lb vserver", nsS.HTTPVserverType, "lb"},
		{"priority 90", nsS.Priority, 90},
		{"save", *nsS.Save, true},
		{"certkey from the name", nsS.CertKey, "www.example.net"},
		{"timeout", nsS.Timeout.D().String(), "1m0s"},
		{"haproxy socket", hapS.Socket, haproxy.DefaultSocket},
		{"haproxy crt-list is the dir", hapS.CrtList, haproxy.DefaultCrtDir},
		{"haproxy lock", hapS.LockFile, haproxy.DefaultCrtDir + "/.zoku.lock"},
		{"nginx files", []string{webS.CertFile, webS.KeyFile}, []string{nginx.DefaultCertFile, nginx.DefaultKeyFile}},
		{"nginx commands", [][]string{webS.TestCommand, webS.ReloadCommand}, [][]string{{"nginx", "-t", "-q"}, {"nginx", "-s", "reload"}}},
		{"nginx verifies", web.Verify.Address, nginx.DefaultVerify},
		{"nginx pid file", webS.PIDFile, nginx.DefaultPIDFile},
		{"exec timeout", boxS.Timeout.D(), config.DefaultExecTimeout},
		{"hook timeout", box.Challenge.Exec.Timeout.D(), config.DefaultExecTimeout},
		{"password redacted", string(c.Redacted().Targets["ns"].Settings.(*netscaler.Settings).Password), "REDACTED"},
		{"password kept", string(nsS.Password), "pw"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestTargetErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := func(extra string) string {
		return "    netscaler: {url: \"https://192.0.2.10\", username: u, password: p, httpVserver: h, sslVserver: s" + extra + "}\n"
	}
	target := func(typ, body string) string {
		return targetsBase + "targets:\n  t1:\n    type: " + typ + "\n    certificates: [{main: www.example.net}]\n" + body
	}
	cases := []struct {
		name, yaml, want string
		line             int
	}{
		{"unknown type", target("netscalar", ""), `targets.t1.type "netscalar" is unknown; use one of exec, haproxy, netscaler, nginx (did you mean "netscaler"?)`, 8},
		{"no type", targetsBase + "targets:\n  t1:\n    certificates: [{main: a.example.net}]\n", "targets.t1 has no type", 7},
		{"bad name", targetsBase + "targets:\n  \"my target\":\n    type: exec\n", `target name "my target" may hold only`, 7},
		{"no certificates", targetsBase + "targets:\n  t1:\n    type: exec\n    exec: {command: x}\n    challenge: {listen: \":80\"}\n", "targets.t1 has no certificates", 7},
		{"no server", "entryPoints:\n  web: {address: \":80\"}\ntargets:\n  t1:\n    type: exec\n", "certificates.acme.server is not set but targets need certificates", 0},
		{"other type's section", target("haproxy", "    challenge: {listen: \":8888\"}\n"+ns("")), "targets.t1.netscaler is set but the type is haproxy", 11},
		{"no challenge", target("haproxy", ""), "targets.t1.challenge says nothing about HTTP-01", 7},
		{"two challenges", target("haproxy", "    challenge: {listen: \":8888\", webroot: /w}\n"), "sets listen and webroot; choose exactly one", 10},
		{"responder off netscaler", target("nginx", "    challenge: {responder: true}\n"), "challenge.responder is for netscaler targets", 10},
		{"bad listen", target("haproxy", "    challenge: {listen: \"nope\"}\n"), `challenge.listen "nope"`, 10},
		{"hooks need both", target("exec", "    challenge: {exec: {present: p}}\n    exec: {command: c}\n"), "needs both present and cleanup", 10},
		{"dns needs a provider", target("exec", "    challenge: {dns: true}\n    exec: {command: c}\n"), "needs certificates.acme.challenges.dns", 10},
		{"wildcard needs dns", targetsBase + "targets:\n  t1:\n    type: exec\n    certificates: [{main: \"*.example.net\"}]\n    challenge: {listen: \":8888\"}\n    exec: {command: c}\n", "is a wildcard, which only DNS-01 can validate", 9},
		{"exec without command", target("exec", "    challenge: {listen: \":8888\"}\n"), "has no exec.command", 7},
		{"also in certificates.domains", strings.Replace(target("exec", "    challenge: {listen: \":8888\"}\n    exec: {command: c}\n"), "server: letsencrypt\n", "server: letsencrypt\n    challenges: {http: {entryPoint: web}}\n  domains: [{main: www.example.net}]\n", 1), "is also in certificates.domains", 11},
		{"netscaler http url", target("netscaler", "    netscaler: {url: \"http://192.0.2.10\", username: u, password: p, httpVserver: h, sslVserver: s}\n"), "sends the password in clear", 10},
		{"netscaler no password", target("netscaler", "    netscaler: {url: \"https://192.0.2.10\", username: u, httpVserver: h, sslVserver: s}\n"), "needs username and password", 10},
		{"netscaler no http vserver", target("netscaler", "    netscaler: {url: \"https://192.0.2.10\", username: u, password: p, sslVserver: s}\n"), "has no httpVserver", 10},
		{"netscaler bad fingerprint", target("netscaler", ns(", fingerprint: abc")), "is not a SHA-256 fingerprint", 10},
		{"netscaler insecure and pinned", target("netscaler", ns(", insecure: true, fingerprint: "+strings.Repeat("ab", 32))), "insecure turns verification off", 10},
		{"netscaler caFile not PEM", target("netscaler", ns(", caFile: "+notPEM)), "holds no PEM certificate", 10},
		{"netscaler long certkey", target("netscaler", ns(", certKey: "+strings.Repeat("k", 32))), "longer than 31 characters", 10},
		{"netscaler priority", target("netscaler", ns(", priority: 1")), "priority 1 is out of range", 10},
		{"netscaler two certificates", strings.Replace(target("netscaler", ns("")), "[{main: www.example.net}]", "[{main: a.example.net}, {main: b.example.net}]", 1), "a netscaler target updates one certkey", 9},
		{"haproxy relative dir", target("haproxy", "    challenge: {listen: \":8888\"}\n    haproxy: {crtDir: certs}\n"), "must be an absolute path", 11},
		{"nginx two certs one file", strings.Replace(target("nginx", "    challenge: {webroot: /w}\n    nginx: {certFile: /a.pem, keyFile: /a.key}\n"), "[{main: www.example.net}]", "[{main: a.example.net}, {main: b.example.net}]", 1), "put {name} in certFile and keyFile", 11},
		{"verify address", target("haproxy", "    challenge: {listen: \":8888\"}\n    verify: {address: nowhere}\n"), "verify.address \"nowhere\" is not host:port", 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("t.yaml", []byte(tc.yaml), nil)
			e, ok := err.(*config.Error)
			if !ok {
				t.Fatalf("got %v, want a *config.Error saying %q", err, tc.want)
			}
			if !strings.Contains(e.Reason, tc.want) {
				t.Errorf("got %q, want it to say %q", e.Reason, tc.want)
			}
			if tc.line != 0 && e.Line != tc.line {
				t.Errorf("line %d, want %d (%s)", e.Line, tc.line, e.Reason)
			}
			if strings.Contains(err.Error(), "password: p") {
				t.Error("the error quotes the password")
			}
		})
	}
}

// The examples are deploy-only configs (no entry points).
func TestTargetExamplesLoad(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file, target, typ string
	}{
		{"netscaler.yaml", "netscaler", "netscaler"},
		{"haproxy.yaml", "haproxy", "haproxy"},
		{"nginx.yaml", "nginx", "nginx"},
		{"exec.yaml", "appliance", "exec"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile("../../examples/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			y := strings.ReplaceAll(string(raw), "file:/etc/zoku/netscaler.password", "file:"+pw)
			c, err := config.Parse(tc.file, []byte(y), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tg := c.Targets[tc.target]; tg == nil || tg.Type != tc.typ {
				t.Fatalf("target %s: got %+v, want type %s", tc.target, tg, tc.typ)
			}
		})
	}
}
