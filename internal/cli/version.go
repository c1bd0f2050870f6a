package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X github.com/zoku/zoku/internal/cli.Version=v1.2.3".
var Version = "dev"

func runVersion(_ context.Context, env Env, args []string) error {
	fs := newFlagSet("version", "", "print zoku's version and the lego version it is built with", env)
	if err := parse(fs, args); err != nil {
		return err
	}
	lego := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/go-acme/lego/v5" {
				lego = d.Version
			}
		}
	}
	fmt.Fprintf(env.Stdout, "zoku %s (lego %s)\n", Version, lego)
	return nil
}
