package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// wholeBase is a router with one route on the first CA; wholeMore adds a
// deploy target, a second route, on-demand TLS, and moves to another CA.
const wholeBase = `
admin: {disabled: true}
entryPoints:
  web: {address: "127.0.0.1:{{web}}"}
  websecure:
    address: "127.0.0.1:{{tls}}"
    tls: {}
{{extra}}
certificates:
  onHostRule: true
  acme:
    server: "{{server}}"
    acceptTOS: true
    storage: "{{storage}}"
    challenges:
      http: {entryPoint: web}
{{ondemand}}
routes:
  a: {host: a.example.test, service: s}
{{route}}
services:
  s:
    static: {body: "ok\n"}
{{targets}}
`

const wholeMore = `  onDemand:
    allow: ["*.od.example.test"]
`

const wholeTargets = `targets:
  t1:
    type: exec
    certificates: [{main: t.example.test}]
    challenge: {listen: "127.0.0.1:{{tport}}", skipSelfCheck: true}
    exec: {command: "echo deployed >> {{dir}}/t1.log"}
`

// TestReloadIsWholeOrNothing: a reload that adds a target, moves to
// another CA and turns on-demand TLS on is refused whole when the router
// cannot apply it (an entry point on a busy port): no target, no order at
// the new CA, no on-demand certificate. Applied without that entry point,
// all of it takes effect: the new route and the target's certificate come
// from the new CA, the target deploys, on-demand names get certificates.
// A storage change is refused with one line.
func TestReloadIsWholeOrNothing(t *testing.T) {
	web, tlsPort, tport := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	ca1 := testCA(t, embedca.Options{HTTPPort: web})
	ca2 := testenv.StartCA(t, embedca.Options{HTTPPort: web})
	pemFile := filepath.Join(t.TempDir(), "cas.pem")
	must(t, os.WriteFile(pemFile, append(ca1.TLSCertPEM(), ca2.TLSCertPEM()...), 0o644))
	t.Setenv("LEGO_CA_CERTIFICATES", pemFile)
	dir := t.TempDir()
	render := func(server, extra, ondemand, route, targets, storage string) string {
		return strings.NewReplacer("{{web}}", fmt.Sprint(web), "{{tls}}", fmt.Sprint(tlsPort), "{{tport}}", fmt.Sprint(tport),
			"{{server}}", server, "{{storage}}", storage, "{{dir}}", dir,
			"{{extra}}", extra, "{{ondemand}}", ondemand, "{{route}}", route,
			"{{targets}}", strings.ReplaceAll(strings.ReplaceAll(targets, "{{tport}}", fmt.Sprint(tport)), "{{dir}}", dir)).Replace(wholeBase)
	}
	store := filepath.Join(dir, "store")
	r := startRunOn(t, render(ca1.DirectoryURL(), "", "", "", "", store), web, tlsPort, ca1.RootPool())
	r.waitCert(t, "a.example.test")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	route := "  c: {host: c.example.test, service: s}\n"
	extra := fmt.Sprintf("  extra: {address: %q}\n", busy.Addr().String())
	ev := r.reload(t, render(ca2.DirectoryURL(), extra, wholeMore, route, wholeTargets, store))
	if ev.Applied || ev.Err == nil || strings.Contains(ev.Err.Error(), "\n") {
		t.Fatalf("reload with a busy port: %+v, want one refusal line", ev)
	}
	if r.srv.eng.targets != nil && len(r.srv.eng.targets.Status()) != 0 {
		t.Errorf("refused reload left targets: %+v", r.srv.eng.targets.Status())
	}
	if n := len(ca2.Orders()); n != 0 {
		t.Errorf("refused reload ordered %d certificates from the new CA", n)
	}
	if _, err := handshakeTo(tlsPort, "x.od.example.test", ca1); err == nil {
		t.Errorf("refused reload turned on-demand TLS on")
	}

	ev = r.reload(t, render(ca2.DirectoryURL(), "", wholeMore, route, wholeTargets, store))
	if !ev.Applied {
		t.Fatalf("reload refused: %v", ev.Err)
	}
	r.waitCert(t, "c.example.test")
	ordered := func() []string {
		var names []string
		for _, o := range ca2.Orders() {
			names = append(names, strings.Join(o.Identifiers, ","))
		}
		return names
	}
	if !slices.Contains(ordered(), "c.example.test") {
		t.Errorf("the new route was not ordered from the new CA; its orders: %v", ordered())
	}
	if _, err := handshakeTo(tlsPort, "x.od.example.test", ca2); err != nil {
		t.Errorf("on-demand name after the reload: %v", err)
	}
	// The target's certificate comes from the new CA and is deployed.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil && !slices.Contains(ordered(), "t.example.test") {
		select {
		case <-r.events:
		case <-ctx.Done():
		}
	}
	if !slices.Contains(ordered(), "t.example.test") {
		t.Fatalf("the target's certificate was not ordered from the new CA: %v", ordered())
	}

	ev = r.reload(t, render(ca2.DirectoryURL(), "", wholeMore, route, wholeTargets, filepath.Join(dir, "other")))
	if ev.Applied || ev.Err == nil || !strings.Contains(ev.Err.Error(), "certificates.acme.storage cannot change") {
		t.Fatalf("storage change: %+v, want a one-line refusal", ev)
	}
}

// handshakeTo returns the serial served for name on 127.0.0.1:port,
// verified against ca's roots.
func handshakeTo(port int, name string, ca *embedca.CA) (string, error) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: name, RootCAs: ca.RootPool()})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}
