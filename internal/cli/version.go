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
	fmt.Fprintln(env.Stdout, versionString())
	return nil
}

// versionString is "zoku <version> (lego <version>)".
func versionString() string {
	lego := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/go-acme/lego/v5" {
				lego = d.Version
			}
		}
	}
	return fmt.Sprintf("zoku %s (lego %s)", Version, lego)
}
