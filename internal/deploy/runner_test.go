package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// runnerRig runs an exec target whose HTTP-01 answers come from zoku's own
// listener (the CA dials it directly, as it would through a load balancer).
type runnerRig struct {
	dir    string
	listen string
	ca     *embedca.CA
	store  *storage.Store
	logs   *deploytest.Buffer
}

func newRunnerRig(t *testing.T) *runnerRig {
	t.Helper()
	p := testenv.FreePort(t)
	r := &runnerRig{dir: t.TempDir(), listen: fmt.Sprintf("127.0.0.1:%d", p), logs: &deploytest.Buffer{}}
	r.ca = testenv.StartCA(t, embedca.Options{HTTPPort: p})
	var err error
	if r.store, err = storage.Open(filepath.Join(r.dir, "store")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("deploy log:\n%s", r.logs.String())
		}
	})
	return r
}

func (r *runnerRig) config(t *testing.T, names ...string) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "entryPoints:\n  unused: {address: \"127.0.0.1:0\"}\ncertificates:\n  acme: {server: %q, acceptTOS: true}\ntargets:\n", r.ca.DirectoryURL())
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    type: exec\n    certificates: [{main: %s.example.test}]\n    challenge: {listen: %q, selfCheckAddress: %q}\n    exec: {command: \"echo deployed >> %s/%s.log\"}\n",
			n, n, r.listen, r.listen, r.dir, n)
	}
	cfg, err := config.Parse("zoku.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return cfg
}

func (r *runnerRig) runner(t *testing.T, cfg *config.Config, onRun func(string, []deploy.Result)) *deploy.Runner {
	t.Helper()
	return deploytest.Runner(t, cfg, r.ca, r.store, r.logs, func(o *deploy.Options) { o.OnRun = onRun })
}

func (r *runnerRig) deploys(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, name+".log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "deployed")
}

// Run (what `zoku run` does) runs every target when it is due, one at a
// time, and Status reports each; when ctx ends Run returns.
func TestRunDeploysAndReportsStatus(t *testing.T) {
	r := newRunnerRig(t)
	runs := make(chan string, 8)
	run := r.runner(t, r.config(t, "alpha", "beta"), func(name string, _ []deploy.Result) { runs <- name })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	seen := map[string]bool{}
	timeout := time.After(2 * time.Minute)
	for len(seen) < 2 {
		select {
		case n := <-runs:
			seen[n] = true
		case <-timeout:
			t.Fatalf("targets run: %v; want alpha and beta", seen)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	st := run.Status()
	if len(st) != 2 || st[0].Name != "alpha" || st[1].Name != "beta" {
		t.Fatalf("status: %+v", st)
	}
	for _, s := range st {
		b, err := r.store.LoadCertificate(context.Background(), s.Certificates[0])
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := b.Leaf()
		checks := []struct {
			name      string
			got, want any
		}{
			{"type", s.Type, "exec"},
			{"result", s.LastResult, "ok"},
			{"error", s.LastError, ""},
			{"served serial", s.ServedSerial, strings.ToUpper(leaf.SerialNumber.Text(16))},
			{"success recorded", !s.LastSuccess.IsZero() && s.LastSuccess.Equal(s.LastDeploy), true},
			{"next run ahead", s.NextRun.After(s.LastDeploy), true},
			{"deploys", r.deploys(t, s.Name), 1},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s %s: got %v, want %v", s.Name, c.name, c.got, c.want)
			}
		}
	}
}

// Deploy runs one named target now; an unknown name says which exist.
// Apply keeps a target's status across a config reload.
func TestDeployByNameAndApply(t *testing.T) {
	r := newRunnerRig(t)
	run := r.runner(t, r.config(t, "alpha"), nil)
	ctx := context.Background()
	err := run.Deploy(ctx, "nope")
	if !errors.Is(err, deploy.ErrUnknownTarget) || !strings.Contains(err.Error(), "known: alpha") {
		t.Fatalf("unknown target: %v", err)
	}
	if err := run.Deploy(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	before := run.Status()[0]
	if err := run.Deploy(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if n := r.deploys(t, "alpha"); n != 1 {
		t.Errorf("the command ran %d times; a second deploy with nothing due must not run it", n)
	}
	if err := run.Apply(r.config(t, "alpha", "gamma")); err != nil {
		t.Fatal(err)
	}
	st := run.Status()
	if len(st) != 2 || st[0].LastSuccess.Before(before.LastSuccess) || st[0].LastResult != "ok" {
		t.Errorf("after Apply: %+v; alpha must keep its status", st)
	}
	if st[1].Name != "gamma" || st[1].LastResult != "" || !st[1].NextRun.IsZero() {
		t.Errorf("a new target must start unrun and due now: %+v", st[1])
	}
}

// A self-check that does not find the answer stops the order before the
// CA is asked; the run fails with the reason.
func TestSelfCheckFailureStopsTheOrder(t *testing.T) {
	r := newRunnerRig(t)
	other := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := r.config(t, "alpha")
	cfg.Targets["alpha"].Challenge.SelfCheckAddress = other // nothing listens there
	run := r.runner(t, cfg, nil)
	res, err := run.RunOnce(context.Background(), deploy.RunOptions{})
	if err == nil || len(res) != 1 || !strings.Contains(res[0].Err.Error(), "self-check of http://"+other) || !strings.Contains(res[0].Err.Error(), "the CA was not asked to validate") {
		t.Fatalf("got %v / %v", res, err)
	}
	if strings.Contains(res[0].Err.Error(), "acme-challenge/") && !strings.Contains(res[0].Err.Error(), "acme-challenge/<token>") {
		t.Error("the token appears in the error")
	}
	st := run.Status()[0]
	if st.LastResult != "failed" || st.Failures != 1 || !st.NextRun.After(st.LastDeploy) {
		t.Errorf("status after the failure: %+v; want failed, one failure, a retry scheduled", st)
	}
}
