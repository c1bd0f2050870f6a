package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	legodns01 "github.com/go-acme/lego/v5/challenge/dns01"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/challenge/dns01"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
)

func runDeploy(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("deploy", "", `Obtain or renew what is due for each target in --config (NetScaler, HAProxy,
nginx, exec), push it, and verify it is served. A run with nothing due changes
nothing and does not contact the CA, so cron can run it daily:

  0 1 * * * zoku deploy --config /etc/zoku/netscaler.yaml

It exits non-zero with one line per failed target; a target that fails keeps
the certificate it had in service. docs/targets.md documents the targets.`, env)
	var (
		path    string
		target  string
		force   bool
		dryRun  bool
		verbose bool
	)
	fs.StringVar(&path, "config", "zoku.yaml", "configuration file with a targets: section (YAML, or TOML)")
	fs.StringVar(&target, "target", "", "run only the target with this name")
	fs.BoolVar(&force, "force", false, "renew every certificate now, whatever the dates")
	fs.BoolVar(&dryRun, "dry-run", false, "only check each target (credentials, objects) and say what a run would do")
	fs.BoolVar(&verbose, "v", false, "verbose: also show debug lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	if force && dryRun {
		return errors.New("--force and --dry-run do not go together; choose one")
	}
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		return err
	}
	if len(cfg.Targets) == 0 {
		return fmt.Errorf("%s has no targets; add a targets: section (docs/targets.md)", path)
	}
	if _, ok := cfg.Targets[target]; target != "" && !ok {
		names := slices.Sorted(maps.Keys(cfg.Targets))
		return fmt.Errorf("no target named %q in %s; its targets are %s", target, path, strings.Join(names, ", "))
	}
	logger, err := newLogger(env.Stderr, cfg.Log.Format, verbose || cfg.Log.Level == "debug")
	if err != nil {
		return err
	}
	base, closeACME, err := deployACME(ctx, env, cfg, logger)
	if err != nil {
		return err
	}
	defer closeACME()
	run, err := deploy.New(deploy.Options{Config: cfg, ACME: base, Logger: logger, Output: env.Stderr})
	if err != nil {
		return err
	}
	defer run.Close()
	results, err := run.RunOnce(ctx, deploy.RunOptions{Target: target, Force: force, DryRun: dryRun})
	printResults(env.Stdout, results)
	var re *deploy.RunError
	if errors.As(err, &re) {
		return fmt.Errorf("%d of %d targets failed: %s (each has its line above)", len(re.Failed), re.Total, strings.Join(re.Failed, ", "))
	}
	return err
}

// printResults writes one line per target and certificate:
//
//	netscaler www.example.net: renewed and deployed (serial 4DE4...); next renewal 2027-01-22 (ARI window ...)
func printResults(w io.Writer, results []deploy.Result) {
	for _, r := range results {
		line := fmt.Sprintf("%s %s: %s", r.Target, r.Certificate, r.Action)
		switch {
		case r.Serial == "":
		case r.Err != nil, strings.HasPrefix(string(r.Action), "would"):
			line += " (serving serial " + r.Serial + ")"
		default:
			line += " (serial " + r.Serial + ")"
		}
		switch {
		case r.Err != nil:
			line += ": " + oneLine(r.Err.Error())
		case r.Action == deploy.UpToDate && !r.RenewAt.IsZero():
			line += fmt.Sprintf("; next renewal %s (%s)", r.RenewAt.UTC().Format(time.DateOnly), r.Reason)
		case r.Reason != "" && r.Action != deploy.Deployed:
			line += "; " + r.Reason
		}
		fmt.Fprintln(w, line)
	}
}

// deployACME is the ACME account the targets order with, from the
// config's certificates.acme: CA (a directory URL, a lego CA code, or the
// embedded CA), storage, email, EAB, and the DNS provider for targets
// whose challenge is dns. `zoku run` can build its runner from the same.
// The returned func stops what was started (the embedded CA).
func deployACME(ctx context.Context, env Env, cfg *config.Config, logger *slog.Logger) (acmeclient.Config, func(), error) {
	a := cfg.Certificates.ACME
	nothing := func() {}
	acmeclient.SetLegoLogger(logger)
	server, err := resolveServer(a.Server)
	if err != nil {
		return acmeclient.Config{}, nothing, fmt.Errorf("config: certificates.acme.server: %w", err)
	}
	store, err := storage.Open(a.Storage)
	if err != nil {
		return acmeclient.Config{}, nothing, err
	}
	base := acmeclient.Config{Server: server, Store: store, Email: a.Email, AcceptTOS: a.AcceptTOS, Logger: logger}
	if env.IsTerminal() {
		base.AskTOS = promptTOS(env)
	}
	if a.EAB != nil {
		base.EAB = &acmeclient.EAB{KID: a.EAB.KID, HMAC: string(a.EAB.HMAC)}
	}
	if d := a.Challenges.DNS; d != nil {
		p, err := dns01.NewProvider(d.Provider)
		if err != nil {
			return acmeclient.Config{}, nothing, err
		}
		base.Solvers.DNS01 = p
		if d.DisableAuthoritativeCheck {
			base.Solvers.DNSOptions = append(base.Solvers.DNSOptions, legodns01.DisableAuthoritativeNssPropagationRequirement())
		}
		if w := d.PropagationWait.D(); w > 0 {
			base.Solvers.DNSOptions = append(base.Solvers.DNSOptions, legodns01.PropagationWait(w, true))
		}
	}
	if server != serverEmbedded {
		return base, nothing, nil
	}
	// The embedded CA validates HTTP-01 on port 80 of loopback: a demo
	// with a load balancer on this machine.
	ca, err := embedca.Start(ctx, embedca.Options{Logger: logger, Validity: a.Embedded.Validity.D(),
		StateDir: embedca.StateDirIn(store.Root())}) // the root stays across runs
	if err != nil {
		return acmeclient.Config{}, nothing, fmt.Errorf("embedded CA: %w", err)
	}
	base.Server, base.HTTPClient, base.Reregister, base.AcceptTOS = embedca.StableDirectoryURL, ca.HTTPClient(), true, true
	return base, func() { _ = ca.Close() }, nil
}
