package legocli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// command is one command of lego's tree.
type command struct {
	name    string
	aliases []string
	usage   string
	flags   []*flagDef
	subs    []*command
	action  func(ctx context.Context, inv *invocation) error
}

// invocation is one parsed command line: the command, its flags and the
// world around it.
type invocation struct {
	cmd   *command
	name  string // "lego certificates list"
	flags *values
	env   Env
	open  Opener
}

// tree returns lego v5.6's command tree.
func tree() *command {
	return &command{
		name:  "lego",
		usage: "ACME client (zoku's lego personality: lego v5's command line on zoku's certificate engine)",
		flags: rootFlags(),
		subs: []*command{
			{name: "run", usage: "obtain a certificate, or renew it when it is due", flags: runFlags(), action: runRun},
			{name: "certificates", usage: "manage certificates", subs: []*command{
				{name: "revoke", usage: "revoke certificates and archive their files", flags: revokeFlags(), action: runRevoke},
				{name: "list", usage: "list the stored certificates", flags: listFlags(), action: runCertificatesList},
			}},
			{name: "accounts", usage: "manage ACME accounts", subs: []*command{
				{name: "register", usage: "register an account at the CA", flags: registerFlags(), action: runRegister},
				{name: "recover", usage: "recover an account from its private key", flags: recoverFlags(), action: runRecover},
				{name: "keyrollover", usage: "replace an account's private key", flags: keyRolloverFlags(), action: runKeyRollover},
				{name: "list", usage: "list the stored accounts", flags: listFlags(), action: runAccountsList},
			}},
			{name: "archives", usage: "manage archived certificates and accounts", subs: []*command{
				{name: "list", usage: "list the archives", flags: archivesFlags(), action: runArchivesList},
				{name: "restore", usage: "restore an archive", flags: archivesFlags(), action: runArchivesRestore},
			}},
			{name: "dnshelp", usage: "DNS providers and the variables they need (--dns)", flags: dnshelpFlags(), action: runDNSHelp},
			{name: "migrate", usage: "rewrite a lego v4 folder in lego v5's layout", flags: migrateFlags(), action: runMigrate},
		},
	}
}

func (c *command) sub(name string) *command {
	for _, s := range c.subs {
		if s.name == name || contains(s.aliases, name) {
			return s
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// dispatch parses args against the tree and runs the command they name.
func dispatch(ctx context.Context, args []string, env Env, open Opener) error {
	root := tree()
	cmd, path := root, "lego"
	var inherited []*flagDef
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-v") {
		fmt.Fprintf(env.Stdout, "lego version %s\n", env.Version)
		return nil
	}
	for {
		defs := concat(inherited, cmd.flags)
		vals := newValues(defs, env.Getenv)
		rest, err := vals.parseFlags(args, path)
		if errors.Is(err, errHelp) {
			printHelp(env.Stdout, cmd, path, inherited)
			return errHelp
		}
		if err != nil {
			return err
		}
		args = rest
		if len(cmd.subs) == 0 {
			if len(args) > 0 {
				return usagef("%s: unexpected argument %q; run '%s --help'", path, args[0], path)
			}
			if err := vals.checkEnv(defs); err != nil {
				return err
			}
			inv := &invocation{cmd: cmd, name: path, flags: vals, env: env, open: open}
			return cmd.action(ctx, inv)
		}
		if len(args) == 0 {
			printHelp(env.Stdout, cmd, path, inherited)
			return errHelp
		}
		word := args[0]
		if word == "help" || word == "h" {
			target, tpath := cmd, path
			for _, w := range args[1:] {
				s := target.sub(w)
				if s == nil {
					return usagef("%s: no help topic for %q", path, w)
				}
				target, tpath = s, tpath+" "+w
			}
			printHelp(env.Stdout, target, tpath, inherited)
			return errHelp
		}
		next := cmd.sub(word)
		if next == nil {
			return usagef("%s: unknown command %q; run '%s --help' for the list", path, word, path)
		}
		// Persistent flags of this level, with their values, go down.
		for _, d := range cmd.flags {
			if !d.local {
				inherited = append(inherited, d)
			}
		}
		// What the parent level was given of them is given again below.
		cmd, path, args = next, path+" "+word, append(carriedArgs(vals.given, inherited), args[1:]...)
	}
}

// carriedArgs turns the persistent flags given at a parent level into
// arguments for the child level.
func carriedArgs(given map[string][]string, inherited []*flagDef) []string {
	var out []string
	for _, d := range inherited {
		for _, v := range given[d.name] {
			out = append(out, "--"+d.name+"="+v)
		}
	}
	return out
}

// printHelp writes a command's help: usage, commands, flags as --flag.
func printHelp(w io.Writer, c *command, path string, inherited []*flagDef) {
	fmt.Fprintf(w, "NAME:\n   %s - %s\n\nUSAGE:\n", path, c.usage)
	if len(c.subs) > 0 {
		fmt.Fprintf(w, "   %s [options] <command> [command options]\n\nCOMMANDS:\n", path)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range c.subs {
			fmt.Fprintf(tw, "   %s\t%s\n", s.name, s.usage)
		}
		fmt.Fprintf(tw, "   help, h\tshow the commands, or the help of one\n")
		_ = tw.Flush()
	} else {
		fmt.Fprintf(w, "   %s [options]\n", path)
	}
	defs := c.flags
	if len(defs) > 0 || len(inherited) > 0 {
		fmt.Fprintln(w, "\nOPTIONS:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, d := range concat(defs, inherited) {
			if d.hidden {
				continue
			}
			fmt.Fprintf(tw, "   %s\t%s\n", flagSpelling(d), flagText(d))
		}
		fmt.Fprintf(tw, "   --help, -h\tshow help\n")
		_ = tw.Flush()
	}
	if path == "lego" {
		fmt.Fprintln(w, "\nzoku answers as lego v5 when called as 'lego' (a link to zoku) or as 'zoku lego'; see docs/lego.md.")
	}
}

func flagSpelling(d *flagDef) string {
	names := []string{"--" + d.name}
	for _, a := range d.aliases {
		names = append(names, "-"+a)
	}
	s := strings.Join(names, ", ")
	switch d.kind {
	case kString, kList:
		s += " value"
	case kInt, kUint:
		s += " n"
	case kDuration:
		s += " duration"
	case kTime:
		s += " time"
	}
	return s
}

func flagText(d *flagDef) string {
	t := d.usage
	if d.def != "" && d.kind != kBool {
		t += fmt.Sprintf(" (default: %s)", d.def)
	}
	if d.env != "" {
		t += " [$" + d.env + "]"
	}
	return t
}

// commandPaths lists every command of the tree ("run", "certificates
// list", ...), sorted: the parity test compares them with lego's.
func commandPaths() []string {
	var out []string
	var walk func(c *command, prefix string)
	walk = func(c *command, prefix string) {
		for _, s := range c.subs {
			p := strings.TrimSpace(prefix + " " + s.name)
			out = append(out, p)
			walk(s, p)
		}
	}
	walk(tree(), "")
	sort.Strings(out)
	return out
}
