package cli

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// childEnv makes the test binary run zoku's command line instead of the
// tests: the multi-process tests start real processes this way, without
// building the zoku binary.
const childEnv = "ZOKU_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		// As cmd/zoku: SIGINT and SIGTERM shut down cleanly.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Run(ctx, os.Args[1:], StdEnv())
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// zokuProcess returns a command that runs zoku with args in a process of
// its own (the test binary in child mode), inheriting the environment.
func zokuProcess(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	return cmd
}
