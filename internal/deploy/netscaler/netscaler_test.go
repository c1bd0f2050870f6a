package netscaler_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/deploy/netscaler"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/nitrosim"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// The seed 003 flow on a fresh certkey: the challenge policy answers above
// the redirect (Pebble validates through the simulated HTTP vserver), the
// certkey is added, bound, linked and saved, everything temporary is gone,
// and a second run changes nothing.
func TestFirstDeploymentThenIdempotent(t *testing.T) {
	r := newRig(t)
	run := r.runner(t, r.config(t), nil)
	res := deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)

	leaf := r.stored(t)
	if got := r.served(t); got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("SSL vserver serves serial %x, want the stored %x", got.SerialNumber, leaf.SerialNumber)
	}
	if res.Serial != strings.ToUpper(leaf.SerialNumber.Text(16)) {
		t.Errorf("result serial %s, want %X", res.Serial, leaf.SerialNumber)
	}
	ck, ok := r.sim.CertKey("example_cert")
	if !ok || ck.Serial.Cmp(leaf.SerialNumber) != 0 || ck.Link == "" {
		t.Fatalf("certkey: got %+v (exists %v), want the new serial and a CA link", ck, ok)
	}
	if b := r.sim.Responders("testHTTP"); len(b) != 1 || b[0].Policy != "redirect_pol" {
		t.Errorf("HTTP vserver policies after the run: %+v, want only the redirect", b)
	}
	cur := r.sim.Current()
	if len(cur.Actions) != 1 || len(cur.Policies) != 1 {
		t.Errorf("responder objects left: actions %v, policies %v", cur.Actions, cur.Policies)
	}
	saved, saves := r.sim.Saved()
	if saves != 1 || saved.CertKeys["example_cert"] == "" {
		t.Errorf("saves %d, saved certkeys %v: want one save holding example_cert", saves, saved)
	}
	if slices.ContainsFunc(saved.Policies, func(p string) bool { return strings.HasPrefix(p, "zoku_acme_") }) {
		t.Errorf("a challenge policy was saved: %v", saved.Policies)
	}
	if n := r.sim.Sessions(); n != 0 {
		t.Errorf("%d sessions left open; want logout", n)
	}

	// Cleanup order: unbind, then the policy, then the action.
	var order []string
	for _, q := range r.sim.Requests() {
		if strings.HasPrefix(q, "DELETE lbvserver_responderpolicy_binding") || strings.HasPrefix(q, "DELETE responder") {
			order = append(order, strings.Fields(q)[1][:strings.IndexAny(strings.Fields(q)[1]+"/", "/")])
		}
	}
	if want := []string{"lbvserver_responderpolicy_binding", "responderpolicy", "responderaction"}; !slices.Equal(order, want) {
		t.Errorf("cleanup order %v, want %v", order, want)
	}

	before := len(r.sim.Requests())
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.UpToDate)
	if w := writes(r.sim.Requests()[before:]); len(w) != 0 {
		t.Errorf("an idempotent run changed the appliance: %v", w)
	}
	if got := r.served(t); got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("after the second run the SSL vserver serves %x, want %x", got.SerialNumber, leaf.SerialNumber)
	}
}

// The seed's own setup: the SSL pair exists (here a self-signed one) and
// is bound; zoku updates it in place, keeps the binding, and removes the
// files nothing uses any more.
func TestSeedFlowUpdatesExistingPair(t *testing.T) {
	r := newRig(t)
	cert, key := deploytest.SelfSigned(t, domain)
	for name, data := range map[string][]byte{"example.crt": cert, "example.key": key} {
		configure(t, r.sim, "POST", "systemfile", map[string]any{"filename": name, "filelocation": "/nsconfig/ssl/", "filecontent": base64.StdEncoding.EncodeToString(data), "fileencoding": "BASE64"})
	}
	configure(t, r.sim, "POST", "sslcertkey", map[string]any{"certkey": "example_cert", "cert": "example.crt", "key": "example.key"})
	configure(t, r.sim, "PUT", "sslvserver_sslcertkey_binding", map[string]any{"vservername": "testSSL", "certkeyname": "example_cert"})

	run := r.runner(t, r.config(t), nil)
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	if got, want := r.served(t).SerialNumber, r.stored(t).SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("served %x, want %x", got, want)
	}
	reqs := r.sim.Requests()
	if !slices.Contains(reqs, "POST sslcertkey?action=update") || slices.Contains(reqs, "PUT sslvserver_sslcertkey_binding") {
		t.Errorf("want an update in place and no new binding; requests: %v", writes(reqs))
	}
	files := r.sim.Current().Files
	for _, f := range []string{"/nsconfig/ssl/example.crt", "/nsconfig/ssl/example.key"} {
		if slices.Contains(files, f) {
			t.Errorf("%s is unused but still on the appliance", f)
		}
	}
}

// A priority taken between zoku reading the bindings and binding (3041)
// moves the challenge policy to the next free one.
func TestPriorityTakenMeanwhile(t *testing.T) {
	r := newRig(t)
	addPolicy(t, r, "other_pol", 0)
	var bound []int
	raced := false
	r.sim.SetHook(func(method, resource string, obj map[string]any) {
		if method != "PUT" || resource != "lbvserver_responderpolicy_binding" {
			return
		}
		p := fmt.Sprint(obj["priority"])
		var n int
		fmt.Sscan(p, &n)
		bound = append(bound, n)
		if !raced {
			raced = true
			if err := r.sim.Configure("PUT", resource, "", "", map[string]any{"name": "testHTTP", "policyname": "other_pol", "priority": n}); err != nil {
				t.Error(err)
			}
		}
	})
	run := r.runner(t, r.config(t), nil)
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	if len(bound) != 2 || bound[0] != 90 || bound[1] != 89 {
		t.Errorf("bind attempts at priorities %v, want [90 89]", bound)
	}
	if !slices.Contains(r.sim.Responders("testHTTP"), nitrosim.Binding{Policy: "other_pol", Priority: 90}) {
		t.Errorf("the other policy must stay at 90: %v", r.sim.Responders("testHTTP"))
	}
}

// A session that expires mid-deploy (444) is renewed once and the deploy
// goes on.
func TestSessionExpiredMidDeploy(t *testing.T) {
	r := newRig(t)
	expired := false
	r.sim.SetHook(func(method, resource string, _ map[string]any) {
		if resource == "systemfile" && method == "POST" && !expired {
			expired = true
			r.sim.ExpireSessions()
		}
	})
	run := r.runner(t, r.config(t), nil)
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	if n := r.sim.Logins(); n != 2 {
		t.Errorf("%d logins, want 2 (the first, and one after the session expired)", n)
	}
}

// Header authentication and a pinned NSIP fingerprint: no session at all.
func TestHeaderAuthWithPinnedFingerprint(t *testing.T) {
	r := newRig(t)
	run := r.runner(t, r.config(t, "auth: header", "caFile: ", "fingerprint: "+r.sim.Fingerprint()), nil)
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	if n := r.sim.Logins(); n != 0 {
		t.Errorf("%d logins with header authentication, want 0", n)
	}
}

// Failures that stop a run before anything changes, each with a clear
// line: the old certificate (when there is one) stays in service.
func TestFailuresChangeNothing(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, r *rig) []string // returns extra netscaler keys
		want  string
	}{
		{"wrong password", func(t *testing.T, r *rig) []string { return []string{"password: not-the-password"} }, "Invalid username or password"},
		{"wrong fingerprint", func(t *testing.T, r *rig) []string {
			return []string{"caFile: ", "fingerprint: " + strings.Repeat("ab", 32)}
		}, "not the pinned"},
		{"untrusted NSIP", func(t *testing.T, r *rig) []string { return []string{"caFile: "} }, "certificate"},
		{"responder feature off", func(t *testing.T, r *rig) []string { r.sim.SetFeature("responder", false); return nil }, "Responder feature is off"},
		{"appliance down", func(t *testing.T, r *rig) []string { r.sim.StopAPI(); return nil }, "cannot reach"},
		{"redirect policy not bound", func(t *testing.T, r *rig) []string { return []string{"redirectPolicy: missing_pol"} }, `redirect policy "missing_pol" is not bound`},
		{"no free priority", func(t *testing.T, r *rig) []string {
			addPolicy(t, r, "block_a", 1)
			addPolicy(t, r, "block_b", 2)
			return []string{"priority: 2"}
		}, "no free priority"},
		{"self-check reaches the redirect", func(t *testing.T, r *rig) []string {
			addr, err := r.sim.AddVserver("lb", "otherHTTP", "HTTP")
			if err != nil {
				t.Fatal(err)
			}
			configure(t, r.sim, "PUT", "lbvserver_responderpolicy_binding", map[string]any{"name": "otherHTTP", "policyname": "redirect_pol", "priority": 100})
			r.httpAddr = addr // the self-check now asks a vserver that only redirects
			return nil
		}, "redirect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			extra := tc.setup(t, r)
			run := r.runner(t, r.config(t, extra...), nil)
			res, err := deploytest.RunOnce(t, run, deploy.RunOptions{})
			if err == nil || res.Action != deploy.Failed {
				t.Fatalf("got %q, err %v; want a failure", res.Action, err)
			}
			if tc.want != "" && !strings.Contains(res.Err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", res.Err, tc.want)
			}
			if strings.Contains(res.Err.Error(), nsPassword) || strings.Contains(err.Error(), nsPassword) {
				t.Errorf("the password is in the error: %v", res.Err)
			}
			if _, ok := r.sim.CertKey("example_cert"); ok {
				t.Error("a certkey was created by a failed run")
			}
			cur := r.sim.Current()
			if slices.ContainsFunc(cur.Policies, zokuObject) || slices.ContainsFunc(cur.Actions, zokuObject) {
				t.Errorf("challenge objects left behind: %v %v", cur.Policies, cur.Actions)
			}
		})
	}
}

// A key that does not match the certificate (1538) is refused by the
// appliance; the certkey keeps the old certificate, which stays served,
// and the uploaded files are removed.
func TestKeyMismatchKeepsOldCertificate(t *testing.T) {
	r := newRig(t)
	run := r.runner(t, r.config(t), nil)
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	old := r.served(t)
	filesBefore := r.sim.Current().Files

	b, err := r.store.LoadCertificate(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := deploytest.SelfSigned(t, domain)
	bad := &storage.Bundle{Meta: b.Meta, Certificate: append(other, b.IssuerCertificate...), PrivateKey: b.PrivateKey}
	target, err := netscaler.New(netscaler.Options{
		Name: "ns", URL: r.sim.URL(), Username: nsUser, Password: nsPassword, CAFile: r.caFile,
		HTTPVserver: "testHTTP", SSLVserver: "testSSL", CertKey: "example_cert", Save: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = target.Deploy(context.Background(), bad)
	target.Release(context.Background())
	if err == nil || !strings.Contains(err.Error(), "1538") {
		t.Fatalf("got %v, want errorcode 1538 (key mismatch)", err)
	}
	if got := r.served(t); got.SerialNumber.Cmp(old.SerialNumber) != 0 {
		t.Errorf("after the refused deploy the SSL vserver serves %x, want the old %x", got.SerialNumber, old.SerialNumber)
	}
	if after := r.sim.Current().Files; !slices.Equal(after, filesBefore) {
		t.Errorf("files after the refused deploy %v, want %v", after, filesBefore)
	}
}

// --dry-run logs in and reads, and changes nothing.
func TestDryRunChangesNothing(t *testing.T) {
	r := newRig(t)
	run := r.runner(t, r.config(t), nil)
	res := deploytest.MustRun(t, run, deploy.RunOptions{DryRun: true}, deploy.WouldObtain)
	if res.Reason == "" {
		t.Error("dry run gives no reason")
	}
	if w := writes(r.sim.Requests()); len(w) != 0 {
		t.Errorf("dry run wrote to the appliance: %v", w)
	}
}

// After a deploy, a run that cannot reach or log in to the appliance
// fails with one line and the certificate in service stays.
func TestFailuresAfterDeployKeepOldCertificate(t *testing.T) {
	r := newRig(t)
	deploytest.MustRun(t, r.runner(t, r.config(t), nil), deploy.RunOptions{}, deploy.Obtained)
	old := r.served(t)

	res, err := deploytest.RunOnce(t, r.runner(t, r.config(t, "password: wrong"), nil), deploy.RunOptions{Force: true})
	if err == nil || !strings.Contains(res.Err.Error(), "Invalid username or password") {
		t.Fatalf("wrong password: got %q, %v", res.Action, res.Err)
	}
	if got := r.served(t); got.SerialNumber.Cmp(old.SerialNumber) != 0 {
		t.Errorf("after the failed run the SSL vserver serves %x, want the old %x", got.SerialNumber, old.SerialNumber)
	}

	r.sim.StopAPI()
	res, err = deploytest.RunOnce(t, r.runner(t, r.config(t), nil), deploy.RunOptions{Force: true})
	if err == nil || !strings.Contains(res.Err.Error(), "cannot reach") {
		t.Fatalf("appliance down: got %q, %v", res.Action, res.Err)
	}
	if got := r.served(t); got.SerialNumber.Cmp(old.SerialNumber) != 0 {
		t.Errorf("with the API down the SSL vserver serves %x, want the old %x", got.SerialNumber, old.SerialNumber)
	}
}

// A certificate from another intermediate (Let's Encrypt rotates them)
// breaks the certkey's CA link on update (1587); zoku adds the new
// intermediate and links it, and the vserver serves the new chain.
func TestIssuerChangeRelinks(t *testing.T) {
	r := newRig(t)
	deploytest.MustRun(t, r.runner(t, r.config(t), nil), deploy.RunOptions{}, deploy.Obtained)
	first, _ := r.sim.CertKey("example_cert")

	ca2 := testenv.StartCA(t, embedca.Options{HTTPPort: deploytest.Port(t, r.httpAddr)})
	if err := os.RemoveAll(filepath.Join(r.store.Root(), "certificates")); err != nil {
		t.Fatal(err)
	}
	deploytest.MustRun(t, r.runner(t, r.config(t), ca2), deploy.RunOptions{}, deploy.Obtained)
	second, _ := r.sim.CertKey("example_cert")
	if second.Link == "" || second.Link == first.Link {
		t.Fatalf("CA link after the issuer change: %q (before %q); want a new one", second.Link, first.Link)
	}
	if !slices.Contains(r.sim.Requests(), "POST sslcertkey?action=link") {
		t.Error("no link request after the issuer change")
	}
	chain, err := deploytest.Served(r.sslAddr, domain)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) < 2 || chain[0].CheckSignatureFrom(chain[1]) != nil {
		t.Fatalf("served chain does not verify: %d certificates", len(chain))
	}
	if chain[0].SerialNumber.Cmp(second.Serial) != 0 {
		t.Errorf("served %x, want %x", chain[0].SerialNumber, second.Serial)
	}
}
