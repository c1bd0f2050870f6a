package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/deploy/internal/order"
	"github.com/zoku/zoku/internal/hook"
)

// hookPair answers HTTP-01 with a certbot-style manual hook pair
// (challenge.exec): commands run through /bin/sh -c in their own process
// group, bounded by a timeout that stops the whole group.
type hookPair struct {
	// PresentCommand and CleanupCommand are shell command lines.
	PresentCommand, CleanupCommand string
	// Timeout bounds each; zero means hook.DefaultTimeout.
	Timeout time.Duration
	// Output receives their standard error; nil discards.
	Output io.Writer

	mu      sync.Mutex
	outputs map[string]string // guarded by mu; present's stdout by token
}

var _ challenge.Provider = (*hookPair)(nil)

// Present runs the present command with CERTBOT_DOMAIN, CERTBOT_IDENTIFIER,
// CERTBOT_VALIDATION (the key authorization), CERTBOT_TOKEN,
// CERTBOT_REMAINING_CHALLENGES and CERTBOT_ALL_DOMAINS.
func (c *hookPair) Present(ctx context.Context, domain, token, keyAuth string) error {
	out, err := c.run(ctx, c.PresentCommand, certbotEnv(ctx, domain, token, keyAuth, ""))
	if err != nil {
		return fmt.Errorf("challenge.exec present hook for %s: %w", domain, err)
	}
	c.mu.Lock()
	if c.outputs == nil {
		c.outputs = map[string]string{}
	}
	c.outputs[token] = out
	c.mu.Unlock()
	return nil
}

// CleanUp runs the cleanup command with the same variables and
// CERTBOT_AUTH_OUTPUT (what present printed).
func (c *hookPair) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	c.mu.Lock()
	out := c.outputs[token]
	delete(c.outputs, token)
	c.mu.Unlock()
	if _, err := c.run(ctx, c.CleanupCommand, certbotEnv(ctx, domain, token, keyAuth, out)); err != nil {
		return fmt.Errorf("challenge.exec cleanup hook for %s: %w", domain, err)
	}
	return nil
}

// certbotEnv builds certbot's manual-hook variables. REMAINING_CHALLENGES
// counts the order's names after this one (lego validates HTTP-01 one
// name after another).
func certbotEnv(ctx context.Context, domain, token, keyAuth, authOutput string) []string {
	all := order.Domains(ctx)
	if len(all) == 0 {
		all = []string{domain}
	}
	remaining := 0
	for i, d := range all {
		if d == domain {
			remaining = len(all) - i - 1
		}
	}
	env := []string{
		"CERTBOT_DOMAIN=" + domain, "CERTBOT_IDENTIFIER=" + domain,
		"CERTBOT_VALIDATION=" + keyAuth, "CERTBOT_TOKEN=" + token,
		"CERTBOT_REMAINING_CHALLENGES=" + strconv.Itoa(remaining),
		"CERTBOT_ALL_DOMAINS=" + strings.Join(all, ","), "CERTBOT_ALL_IDENTIFIERS=" + strings.Join(all, ","),
	}
	if authOutput != "" {
		env = append(env, "CERTBOT_AUTH_OUTPUT="+authOutput)
	}
	return env
}

// run runs command through /bin/sh -c with env added; it returns what the
// command printed on stdout (64 KiB at most). The error names no variable.
func (c *hookPair) run(ctx context.Context, command string, env []string) (string, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = hook.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: 64 << 10}
	cmd.Stderr = c.Output
	if cmd.Stderr == nil {
		cmd.Stderr = io.Discard
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("timed out after %s", timeout)
	}
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		return "", fmt.Errorf("exited with status %d", ee.ExitCode())
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}

// limitWriter keeps the first n bytes and discards the rest.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
