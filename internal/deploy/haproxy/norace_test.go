//go:build !race

// Renewal sends ARI "replaces", and Pebble has a data race in its
// replacement bookkeeping; these tests run in the non-race pass.

package haproxy_test

import (
	"testing"

	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/testkit/deploytest"
)

// A renewal is committed in memory: the same HAProxy process serves the
// new serial.
func TestNoRaceRenewalWithoutRestart(t *testing.T) {
	r := startHAProxy(t)
	run := r.runner(t, r.config(t, ""))
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	first := deploytest.ServedSerial(t, r.tlsAddr, domain)
	pid := r.cmd.Process.Pid

	deploytest.MustRun(t, run, deploy.RunOptions{Force: true}, deploy.Renewed)
	second := deploytest.ServedSerial(t, r.tlsAddr, domain)
	if second.Cmp(first) == 0 {
		t.Fatal("HAProxy still serves the first certificate")
	}
	select {
	case <-r.done:
		t.Fatal("HAProxy exited")
	default:
	}
	if r.cmd.Process.Pid != pid {
		t.Error("HAProxy was restarted")
	}
}
