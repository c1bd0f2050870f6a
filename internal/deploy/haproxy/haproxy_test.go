package haproxy_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/deploy/haproxy"
	"github.com/zoku/zoku/internal/testkit/deploytest"
)

// HTTP-01 goes through HAProxy's plain frontend to zoku's listener; the
// new certificate is written to disk, added with new/set/commit and add
// ssl crt-list, and served by SNI without a reload. A second run changes
// nothing.
func TestFirstDeploymentThenIdempotent(t *testing.T) {
	r := startHAProxy(t)
	run := r.runner(t, r.config(t, ""))
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)

	b, err := r.store.LoadCertificate(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := b.Leaf()
	if got := deploytest.ServedSerial(t, r.tlsAddr, domain); got.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("HAProxy serves %x for %s, want %x", got, domain, leaf.SerialNumber)
	}
	if got := deploytest.ServedSerial(t, r.tlsAddr, "other.invalid"); got.Cmp(leaf.SerialNumber) == 0 {
		t.Error("the new certificate replaced the default one")
	}
	fi, err := os.Stat(r.pemPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("PEM on disk: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	disk, _ := os.ReadFile(r.pemPath())
	if !bytes.Contains(disk, []byte("PRIVATE KEY")) || bytes.Contains(disk, []byte("\n\n")) {
		t.Error("the PEM on disk must hold chain and key with no blank line")
	}
	if tx := r.transactions(t); len(tx) != 0 {
		t.Errorf("open transactions left: %v", tx)
	}

	pid := r.cmd.Process.Pid
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.UpToDate)
	if again, _ := os.ReadFile(r.pemPath()); !bytes.Equal(again, disk) {
		t.Error("an idempotent run rewrote the PEM")
	}
	if r.cmd.Process.Pid != pid {
		t.Error("HAProxy was restarted")
	}
}

// HAProxy 2.6's transaction bug: an open transaction of another
// certificate is aborted before ours, so our PEM cannot land in it.
func TestForeignTransactionIsAborted(t *testing.T) {
	r := startHAProxy(t)
	deploytest.MustRun(t, r.runner(t, r.config(t, "")), deploy.RunOptions{}, deploy.Obtained)
	defPEM, err := os.ReadFile(r.dir + "/default.pem")
	if err != nil {
		t.Fatal(err)
	}
	reply := r.admin(t, "set ssl cert "+r.dir+"/default.pem <<\n"+strings.TrimSpace(string(defPEM))+"\n")
	if !strings.Contains(reply, "Transaction created") {
		t.Fatalf("could not open a foreign transaction: %q", reply)
	}
	next := deploytest.Bundle(t, domain, false)
	target := newTarget(t, r)
	if err := target.Deploy(context.Background(), next); err != nil {
		t.Fatalf("deploy with a foreign transaction open: %v", err)
	}
	want := deploytest.Leaf(t, next.Certificate)
	if got := deploytest.ServedSerial(t, r.tlsAddr, domain); got.Cmp(want.SerialNumber) != 0 {
		t.Errorf("serves %x, want %x", got, want.SerialNumber)
	}
	if tx := r.transactions(t); len(tx) != 0 {
		t.Errorf("open transactions left: %v", tx)
	}
}

func newTarget(t *testing.T, r *haproxyRig) *haproxy.Target {
	t.Helper()
	target, err := haproxy.New(haproxy.Options{Name: "lb", Socket: r.socket, CrtDir: r.crtDir, VerifyAddress: r.tlsAddr})
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// A key that does not match is refused at commit; the old certificate
// stays in memory and on disk.
func TestKeyMismatchKeepsOldCertificate(t *testing.T) {
	r := startHAProxy(t)
	deploytest.MustRun(t, r.runner(t, r.config(t, "")), deploy.RunOptions{}, deploy.Obtained)
	old := deploytest.ServedSerial(t, r.tlsAddr, domain)
	disk, _ := os.ReadFile(r.pemPath())

	err := newTarget(t, r).Deploy(context.Background(), deploytest.Bundle(t, domain, true))
	if err == nil || !strings.Contains(err.Error(), "inconsistencies between private key and certificate") {
		t.Fatalf("got %v, want HAProxy's key mismatch", err)
	}
	if got := deploytest.ServedSerial(t, r.tlsAddr, domain); got.Cmp(old) != 0 {
		t.Errorf("after the refused deploy HAProxy serves %x, want the old %x", got, old)
	}
	if again, _ := os.ReadFile(r.pemPath()); !bytes.Equal(again, disk) {
		t.Error("the PEM on disk was not restored")
	}
	if tx := r.transactions(t); len(tx) != 0 {
		t.Errorf("open transactions left: %v", tx)
	}
}

// Failures with one clear line: HAProxy down, a crt-list HAProxy never
// loaded. Nothing is left on disk.
func TestFailures(t *testing.T) {
	t.Run("haproxy down", func(t *testing.T) {
		r := startHAProxy(t)
		deploytest.MustRun(t, r.runner(t, r.config(t, "")), deploy.RunOptions{}, deploy.Obtained)
		disk, _ := os.ReadFile(r.pemPath())
		r.stop()
		res, err := deploytest.RunOnce(t, r.runner(t, r.config(t, "")), deploy.RunOptions{Force: true})
		if err == nil || !strings.Contains(res.Err.Error(), "cannot reach the admin socket") {
			t.Fatalf("got %q: %v", res.Action, res.Err)
		}
		if again, _ := os.ReadFile(r.pemPath()); !bytes.Equal(again, disk) {
			t.Error("the PEM on disk changed")
		}
	})
	t.Run("crt-list not loaded", func(t *testing.T) {
		r := startHAProxy(t)
		res, err := deploytest.RunOnce(t, r.runner(t, r.config(t, "      crtList: /nowhere/certs\n")), deploy.RunOptions{})
		if err == nil || !strings.Contains(res.Err.Error(), "is not a crt-list HAProxy loaded") {
			t.Fatalf("got %q: %v", res.Action, res.Err)
		}
		if _, err := os.Stat(r.pemPath()); !os.IsNotExist(err) {
			t.Errorf("a PEM was left on disk: %v", err)
		}
	})
}
