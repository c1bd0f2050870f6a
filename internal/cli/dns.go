package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/zoku/zoku/internal/challenge/dns01"
)

func runDNS(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("dns", "providers [CODE]", "DNS-01 helpers.\n\n  zoku dns providers          list every DNS provider of this build\n  zoku dns providers CODE     the environment variables CODE needs (lego's names; VAR_FILE works too)", env)
	help := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	if errors.Is(err, flag.ErrHelp) {
		help()
		return err
	}
	if err != nil {
		return &usageError{msg: fmt.Sprintf("%s; run 'zoku dns --help'", err)}
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] != "providers" || len(rest) > 2 {
		return errors.New("usage: zoku dns providers [CODE]")
	}
	code := ""
	if len(rest) == 2 {
		code = rest[1]
	}
	return dns01.PrintProviders(env.Stdout, code)
}
