// Package cli is zoku's command line: one file per command, flag names
// following lego's where the concept is the same, so that a lego command
// line translates word for word. Run is the only entry point; main is a
// one-line call to it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Env is what a command may touch of the outside world. Tests build their
// own; StdEnv is the process's.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads an environment variable.
	Getenv func(string) string
	// IsTerminal reports whether Stdin is an interactive terminal (for the
	// terms-of-service prompt).
	IsTerminal func() bool
}

// StdEnv returns the Env of the running process.
func StdEnv() Env {
	return Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv,
		IsTerminal: func() bool {
			fi, err := os.Stdin.Stat()
			return err == nil && fi.Mode()&os.ModeCharDevice != 0
		},
	}
}

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

var commands = map[string]command{
	"run":     {"run the edge router with automatic HTTPS (--config FILE)", runRun},
	"obtain":  {"obtain a certificate from an ACME CA", runObtain},
	"renew":   {"renew the certificates that are due", runRenew},
	"revoke":  {"revoke a certificate and archive it", runRevoke},
	"list":    {"list stored certificates", runList},
	"version": {"print the version", runVersion},
	"dns":     {"DNS-01 helpers: 'zoku dns providers [CODE]'", runDNS},
	"deploy":  {"obtain, renew and push certificates to the load balancers in --config (cron)", runDeploy},
	"trust":   {"add the embedded CA's root to the system trust store (--uninstall removes it)", runTrust},
	"dev":     {"tools for trying zoku on this machine: 'zoku dev nitro-sim' (a simulated NetScaler)", runDev},
	"storage": {"copy a storage (folder, etcd; encrypting or decrypting keys), list its keys, make a key", runStorage}, // storagecmd.go
}

// errUsage marks a usage error that has already been explained; it exits 2.
var errUsage = errors.New("usage")

// Run executes the command line args (without the program name) and
// returns the process exit code: 0 on success, 1 on failure, 2 on a usage
// error. Failures are printed as one line on env.Stderr.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.IsTerminal == nil {
		env.IsTerminal = func() bool { return false }
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	args = legoStyle(args)
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "zoku: unknown command %q; run 'zoku --help' for the list\n", args[0])
		return 2
	}
	err := cmd.run(ctx, env, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(env.Stderr, "zoku %s: %s\n", args[0], oneLine(err.Error()))
		return 1
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "zoku: ACME certificates, an edge router with automatic HTTPS, and deploys to load balancers.")
	fmt.Fprintln(w, "\nUsage: zoku <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'zoku <command> --help' for its flags.")
}

// oneLine folds a multi-line error into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// legoStyle accepts lego's own command-line shape, flags first and the
// command last (seed 000: `lego --dns iij --domains '*.example' --email ...
// run`), and turns it into zoku's: lego's `run` (obtain) becomes `obtain`,
// `renew` and `revoke` stay. Anything else is returned unchanged.
func legoStyle(args []string) []string {
	if len(args) < 2 || !strings.HasPrefix(args[0], "-") {
		return args
	}
	last := args[len(args)-1]
	verb := map[string]string{"run": "obtain", "renew": "renew", "revoke": "revoke", "list": "list"}[last]
	if verb == "" {
		return args
	}
	return append([]string{verb}, args[:len(args)-1]...)
}
