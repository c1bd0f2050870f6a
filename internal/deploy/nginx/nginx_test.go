package nginx_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/deploy/nginx"
	"github.com/zoku/zoku/internal/testkit/deploytest"
)

// HTTP-01 through the webroot nginx serves; the files are replaced, nginx
// tested and reloaded, and the new certificate is served. A second run
// changes nothing.
func TestFirstDeploymentThenIdempotent(t *testing.T) {
	r := startNginx(t)
	run := r.runner(t, r.config(t, nil))
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)

	b, err := r.store.LoadCertificate(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := b.Leaf()
	if got := deploytest.ServedSerial(t, r.tlsAddr, domain); got.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("nginx serves %x, want %x", got, leaf.SerialNumber)
	}
	if fi, err := os.Stat(r.keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	left, _ := os.ReadDir(r.webroot + "/.well-known/acme-challenge")
	if len(left) != 0 {
		t.Errorf("challenge files left in the webroot: %d", len(left))
	}
	cert, key := r.files(t)
	pid := r.cmd.Process.Pid
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.UpToDate)
	if c2, k2 := r.files(t); !bytes.Equal(c2, cert) || !bytes.Equal(k2, key) {
		t.Error("an idempotent run rewrote the files")
	}
	if r.cmd.Process.Pid != pid {
		t.Error("nginx was restarted")
	}
}

func target(t *testing.T, r *nginxRig, reload []string, timeout time.Duration) *nginx.Target {
	t.Helper()
	if reload == nil {
		reload = append([]string{r.bin}, r.args("-s", "reload")...)
	}
	tg, err := nginx.New(nginx.Options{
		Name: "web", CertFile: r.certFile, KeyFile: r.keyFile,
		TestCommand: append([]string{r.bin}, r.args("-t", "-q")...), ReloadCommand: reload, PIDFile: r.prefix + "/nginx.pid",
		VerifyAddress: r.tlsAddr, VerifyTimeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// Every way a deploy can fail puts the previous files back, and the
// previous certificate stays in service.
func TestFailuresRollBack(t *testing.T) {
	cases := []struct {
		name     string
		mismatch bool
		reload   func(r *nginxRig) []string
		prepare  func(r *nginxRig)
		want     string
	}{
		{name: "key mismatch fails nginx -t", mismatch: true, want: "key values mismatch"},
		{name: "reload that applies nothing is caught", reload: func(*nginxRig) []string { return []string{"true"} }, want: "still take connections"},
		{name: "nginx down", prepare: func(r *nginxRig) { r.stop() }, want: "reload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startNginx(t)
			var reload []string
			if tc.reload != nil {
				reload = tc.reload(r)
			}
			old := deploytest.ServedSerial(t, r.tlsAddr, domain)
			cert, key := r.files(t)
			if tc.prepare != nil {
				tc.prepare(r)
			}
			err := target(t, r, reload, time.Second).Deploy(context.Background(), deploytest.Bundle(t, domain, tc.mismatch))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "previous files are back") {
				t.Fatalf("got %v; want an error saying %q and that the files are back", err, tc.want)
			}
			if c2, k2 := r.files(t); !bytes.Equal(c2, cert) || !bytes.Equal(k2, key) {
				t.Error("the previous files were not restored")
			}
			select {
			case <-r.done:
				return // nginx down: nothing serves
			default:
			}
			if got := deploytest.ServedSerial(t, r.tlsAddr, domain); got.Cmp(old) != 0 {
				t.Errorf("nginx serves %x after the failure, want the old %x", got, old)
			}
		})
	}
}
