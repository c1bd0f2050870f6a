//go:build !race

// Renewal sends ARI "replaces", and Pebble has a data race in its
// replacement bookkeeping that the race detector reports; these tests run
// in the non-race pass (go test -run NoRace).

package netscaler_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/testkit/deploytest"
)

// Renewal updates the certkey in place (action=update, nodomaincheck):
// the binding stays, the old files go, the new serial is served, the
// configuration is saved again.
func TestNoRaceRenewalUpdatesInPlace(t *testing.T) {
	r := newRig(t)
	run := r.runner(t, r.config(t), nil)
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	first, _ := r.sim.CertKey("example_cert")
	before := len(r.sim.Requests())

	deploytest.MustRun(t, run, deploy.RunOptions{Force: true}, deploy.Renewed)
	second, _ := r.sim.CertKey("example_cert")
	if second.Serial.Cmp(first.Serial) == 0 {
		t.Fatal("the certkey still holds the first certificate")
	}
	if got := r.served(t); got.SerialNumber.Cmp(second.Serial) != 0 {
		t.Errorf("served %x, want the renewed %x", got.SerialNumber, second.Serial)
	}
	reqs := writes(r.sim.Requests()[before:])
	if !slices.Contains(reqs, "POST sslcertkey?action=update") || slices.Contains(reqs, "PUT sslvserver_sslcertkey_binding") {
		t.Errorf("renewal requests %v: want an update and no new binding", reqs)
	}
	files := r.sim.Current().Files
	for _, f := range []string{first.Cert, first.Key} {
		if slices.ContainsFunc(files, func(p string) bool { return strings.HasSuffix(p, "/"+f) }) {
			t.Errorf("old file %s is still on the appliance", f)
		}
	}
	if _, saves := r.sim.Saved(); saves != 2 {
		t.Errorf("%d saves, want 2", saves)
	}
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.UpToDate)
}
