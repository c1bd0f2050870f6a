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
	"time"
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
	// StdoutIsTerminal reports whether Stdout is a terminal (lego's
	// random pause before a renewal is skipped then); nil means no.
	StdoutIsTerminal func() bool
	// Program is the name the binary was called by (argv[0]); "lego"
	// (a link to zoku) makes it answer as lego.
	Program string
	// Sleep waits d or until ctx ends; nil means a real sleep. Tests
	// replace it (lego's random pause before a renewal).
	Sleep func(ctx context.Context, d time.Duration) error
}

// StdEnv returns the Env of the running process.
func StdEnv() Env {
	return Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv:           os.Getenv,
		IsTerminal:       func() bool { return isTerminal(os.Stdin) },
		StdoutIsTerminal: func() bool { return isTerminal(os.Stdout) },
		Program:          os.Args[0],
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
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
	if env.StdoutIsTerminal == nil {
		env.StdoutIsTerminal = func() bool { return false }
	}
	// lego's personality: called as lego, as `zoku lego ...`, or with
	// lego v4's shape (options first, the command last).
	switch {
	case isLego(env.Program):
		return runLego(ctx, args, env)
	case len(args) > 0 && args[0] == "lego":
		return runLego(ctx, args[1:], env)
	case len(args) > 1 && strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help":
		return runLego(ctx, args, env)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "zoku: unknown command %q; run 'zoku --help' for the list\n", args[0])
		return 2
	}
	noteLegoVariables(env, args[0])
	err := cmd.run(ctx, env, args[1:])
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "zoku %s: %s\n", args[0], oneLine(ue.msg))
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
	fmt.Fprintf(w, "  %-8s %s\n", "lego", "lego v5's command line, word for word ('zoku lego --help'; or call zoku as 'lego')")
	fmt.Fprintln(w, "\nRun 'zoku <command> --help' for its flags.")
}

// oneLine folds a multi-line error into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// noteLegoVariables says, once, that lego's variables set in the
// environment are read by `zoku lego` and not by zoku's own commands, so
// that a lego user's LEGO_PATH is never silently ignored.
func noteLegoVariables(env Env, cmd string) {
	switch cmd {
	case "obtain", "renew", "revoke", "list":
	default:
		return
	}
	var set []string
	for _, v := range []string{"LEGO_PATH", "LEGO_SERVER", "LEGO_EMAIL", "LEGO_DOMAINS", "LEGO_DNS"} {
		if env.Getenv(v) != "" {
			set = append(set, v)
		}
	}
	if len(set) > 0 {
		fmt.Fprintf(env.Stderr, "zoku %s: note: %s set: zoku's own commands read flags; 'zoku lego run' (lego's command line) reads lego's variables\n", cmd, strings.Join(set, ", "))
	}
}
