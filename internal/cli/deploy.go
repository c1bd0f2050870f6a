package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
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
	logger, err := newLevelLogger(env.Stderr, cfg.Log.Format, logLevel(cfg.Log.Level, verbose))
	if err != nil {
		return err
	}
	eng, err := startEngine(ctx, env, cfg, logger, engineOptions{oneShot: true, output: env.Stderr})
	if err != nil {
		return err
	}
	defer eng.close()
	results, err := eng.targets.RunOnce(ctx, deploy.RunOptions{Target: target, Force: force, DryRun: dryRun})
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
