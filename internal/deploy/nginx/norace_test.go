//go:build !race

// Renewal sends ARI "replaces", and Pebble has a data race in its
// replacement bookkeeping; these tests run in the non-race pass.

package nginx_test

import (
	"testing"

	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/testkit/deploytest"
)

// A renewal reloads nginx (same master process) and is verified served.
func TestNoRaceRenewalWithVerifiedReload(t *testing.T) {
	r := startNginx(t)
	run := r.runner(t, r.config(t, nil))
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	first := deploytest.ServedSerial(t, r.tlsAddr, domain)
	pid := r.cmd.Process.Pid
	deploytest.MustRun(t, run, deploy.RunOptions{Force: true}, deploy.Renewed)
	if second := deploytest.ServedSerial(t, r.tlsAddr, domain); second.Cmp(first) == 0 {
		t.Fatal("nginx still serves the first certificate")
	}
	if r.cmd.Process.Pid != pid {
		t.Error("nginx was restarted instead of reloaded")
	}
}
