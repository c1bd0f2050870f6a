// Package hook runs a user's deploy command after a certificate was
// obtained or renewed, with the environment variables that lego v5, lego v4,
// certbot and acme.sh give their hooks, so existing scripts keep working.
package hook

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// DefaultTimeout bounds a hook that sets no timeout of its own.
const DefaultTimeout = 2 * time.Minute

// Event describes one obtained or renewed certificate.
type Event struct {
	// Name is the certificate's storage id (e.g. "*.example.com").
	Name string
	// Domains are its names, the first one first.
	Domains []string
	// KeyType is lego's key type name (EC256, RSA2048, ...).
	KeyType string
	// Paths are the certificate's files in the store.
	Paths storage.Paths
	// Lineage is the certbot-style folder with cert.pem, chain.pem,
	// fullchain.pem and privkey.pem (see WriteLineage).
	Lineage string
	// AccountID, AccountEmail and Server describe the ACME account.
	AccountID, AccountEmail, Server string
}

// Environ returns the hook variables for ev:
//   - lego v5: LEGO_HOOK_* (domains comma-separated, CERT_PATH is the bundle);
//   - lego v4: LEGO_CERT_DOMAIN, LEGO_CERT_PATH, LEGO_CERT_KEY_PATH, LEGO_ISSUER_CERT_PATH, LEGO_ACCOUNT_EMAIL;
//   - certbot: RENEWED_LINEAGE (a folder), RENEWED_DOMAINS (space-separated);
//   - acme.sh: CERT_PATH (leaf only), CERT_KEY_PATH, CA_CERT_PATH (chain),
//     CERT_FULLCHAIN_PATH, Le_Domain.
func Environ(ev Event) []string {
	// lego (v4's LEGO_CERT_DOMAIN) and acme.sh (Le_Domain) give the
	// certificate's name, e.g. "*.example.com" for a wildcard, which need
	// not be its first SAN.
	main := ev.Name
	if main == "" && len(ev.Domains) > 0 {
		main = ev.Domains[0]
	}
	env := []string{
		"LEGO_HOOK_ACCOUNT_ID=" + ev.AccountID,
		"LEGO_HOOK_ACCOUNT_EMAIL=" + ev.AccountEmail,
		"LEGO_HOOK_ACCOUNT_SERVER=" + ev.Server,
		"LEGO_HOOK_CERT_NAME=" + ev.Name,
		"LEGO_HOOK_CERT_NAME_SANITIZED=" + storage.SanitizedName(ev.Name),
		"LEGO_HOOK_CERT_KEY_TYPE=" + ev.KeyType,
		"LEGO_HOOK_CERT_DOMAINS=" + strings.Join(ev.Domains, ","),
		"LEGO_HOOK_CERT_PATH=" + ev.Paths.Cert,
		"LEGO_HOOK_CERT_KEY_PATH=" + ev.Paths.Key,
		"LEGO_HOOK_ISSUER_CERT_PATH=" + ev.Paths.Issuer,

		"LEGO_ACCOUNT_EMAIL=" + ev.AccountEmail,
		"LEGO_CERT_DOMAIN=" + main,
		"LEGO_CERT_PATH=" + ev.Paths.Cert,
		"LEGO_CERT_KEY_PATH=" + ev.Paths.Key,
		"LEGO_ISSUER_CERT_PATH=" + ev.Paths.Issuer,

		"RENEWED_LINEAGE=" + ev.Lineage,
		"RENEWED_DOMAINS=" + strings.Join(ev.Domains, " "),

		"Le_Domain=" + main,
	}
	if ev.Lineage != "" {
		env = append(env,
			"CERT_PATH="+filepath.Join(ev.Lineage, "cert.pem"),
			"CERT_KEY_PATH="+filepath.Join(ev.Lineage, "privkey.pem"),
			"CA_CERT_PATH="+filepath.Join(ev.Lineage, "chain.pem"),
			"CERT_FULLCHAIN_PATH="+filepath.Join(ev.Lineage, "fullchain.pem"),
		)
	}
	if ev.Paths.PEM != "" {
		if _, err := os.Stat(ev.Paths.PEM); err == nil {
			env = append(env, "LEGO_HOOK_CERT_PEM_PATH="+ev.Paths.PEM, "LEGO_CERT_PEM_PATH="+ev.Paths.PEM)
		}
	}
	if ev.Paths.PFX != "" {
		if _, err := os.Stat(ev.Paths.PFX); err == nil {
			env = append(env, "LEGO_HOOK_CERT_PFX_PATH="+ev.Paths.PFX, "LEGO_CERT_PFX_PATH="+ev.Paths.PFX)
		}
	}
	return env
}

// Run runs command through /bin/sh -c (as certbot does, so pipes and
// quoting work) with the process environment plus Environ(ev), bounded by
// timeout (zero means DefaultTimeout). The command's output goes to
// stdout/stderr. A non-zero exit or a timeout is an error that names the
// hook, never its environment.
func Run(ctx context.Context, command string, ev Event, timeout time.Duration, stdout, stderr io.Writer) error {
	return RunAs(ctx, "deploy hook for "+ev.Name, command, ev, timeout, stdout, stderr)
}

// RunAs is Run for a hook that what names in errors ("pre hook for
// a.example").
func RunAs(ctx context.Context, what, command string, ev Event, timeout time.Duration, stdout, stderr io.Writer) error {
	return start(ctx, []string{"/bin/sh", "-c", command}, Environ(ev), timeout, stdout, stderr, what)
}

// Fields splits a hook command the way lego does: at white space, with no
// quoting and no shell, the first word being the program.
func Fields(command string) []string { return strings.Fields(command) }

// Exec runs a hook command the way lego does: split by Fields and started
// directly (no shell: no pipes, quotes or variables in the command), with
// the process environment plus env, bounded by timeout (zero means
// DefaultTimeout). what names the hook in errors ("pre hook"). An empty
// command does nothing.
func Exec(ctx context.Context, command string, env []string, timeout time.Duration, stdout, stderr io.Writer, what string) error {
	argv := Fields(command)
	if len(argv) == 0 {
		return nil
	}
	return start(ctx, argv, env, timeout, stdout, stderr, what)
}

// start runs argv in a process group of its own, so a timeout stops what
// it started too.
func start(ctx context.Context, argv, env []string, timeout time.Duration, stdout, stderr io.Writer, what string) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("hook: %s timed out after %s", what, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("hook: %s exited with status %d", what, ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("hook: %s: %w", what, err)
	}
	return nil
}

// WriteLineage writes the certbot/acme.sh view of b into
// <root>/live/<sanitized name>/: cert.pem (leaf), chain.pem (issuers),
// fullchain.pem (leaf + issuers) and privkey.pem (0600), each atomically.
// It returns the folder.
func WriteLineage(root string, b *storage.Bundle) (string, error) {
	dir := filepath.Join(root, "live", storage.SanitizedName(b.Meta.ID))
	leaf, chain := splitLeaf(b.Certificate)
	if len(chain) == 0 {
		chain = b.IssuerCertificate
	}
	files := []struct {
		name string
		data []byte
	}{
		{"cert.pem", leaf}, {"chain.pem", chain}, {"fullchain.pem", b.Certificate}, {"privkey.pem", b.PrivateKey},
	}
	for _, f := range files {
		if len(f.data) == 0 {
			continue
		}
		if err := storage.WriteFile(filepath.Join(dir, f.name), f.data); err != nil {
			return "", fmt.Errorf("hook: write %s: %w", f.name, err)
		}
	}
	return dir, nil
}

// splitLeaf returns the first PEM block of a bundle and the rest.
func splitLeaf(bundle []byte) (leaf, rest []byte) {
	blk, tail := pem.Decode(bundle)
	if blk == nil {
		return nil, nil
	}
	return pem.EncodeToMemory(blk), bytes.TrimLeft(tail, "\r\n")
}
