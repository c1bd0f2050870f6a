// Command zoku is an ACME-native edge router and certificate automation
// tool. See README.md and docs/ for its commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/zoku/zoku/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.StdEnv())
	stop()
	os.Exit(code)
}
