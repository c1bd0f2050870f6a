// Command zoku is an ACME-native edge router and certificate automation
// tool. See README.md and docs/ for its commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/zoku/zoku/internal/cli"
	// Every lego DNS provider that builds here; only the binary links them.
	_ "github.com/zoku/zoku/internal/challenge/dns01/catalogue"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.StdEnv())
	stop()
	os.Exit(code)
}
