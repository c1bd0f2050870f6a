// Package legocli is zoku's lego personality: lego v5.6's command line,
// word for word (commands, flags, short aliases, LEGO_* variables,
// defaults), and lego v4's shape as older cron lines write it, on zoku's
// certificate engine. `lego run` obtains a certificate, or renews it only
// when it is due (ARI first, else --renew-days or the lifetime rule),
// after lego's random pause; files are lego's layout, .pem and .pfx kept
// in step; hooks get lego's variables and are run the way lego runs them.
//
// The package orders nothing itself: every order goes through the
// certificate manager's issuing path (certmgr.Manager.OrderNow) of a
// Session that the caller opens (package cli builds the same session its
// own commands use). Files follow one command each, like lego's own
// cmd_<verb>.go split.
package legocli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
)

// Env is what an invocation may touch of the outside world. Nil fields get
// the process's own (or, for Sleep, a real sleep).
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads a variable (LEGO_*, DNS provider credentials).
	Getenv func(string) string
	// Setenv sets a variable (--env-file); DNS providers read the
	// process environment.
	Setenv func(key, value string) error
	// StdoutIsTerminal reports whether stdout is a terminal: lego skips
	// its random pause before a renewal then.
	StdoutIsTerminal func() bool
	// StdinIsTerminal reports whether questions can be asked on stdin.
	StdinIsTerminal func() bool
	// Sleep waits d or until ctx ends (the random pause, ARI waits).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, n) (the random pause, the point in an
	// ARI window).
	Rand func(n int64) int64
	// Now is the clock.
	Now func() time.Time
	// Getwd returns the working folder (./.lego is relative to it).
	Getwd func() (string, error)
	// Version is printed by --version ("zoku v1.2.3 (lego v5.6.0)").
	Version string
	// Prog names the program in error lines: "lego" (the default) when
	// called through a link, "zoku lego" otherwise.
	Prog string
}

// Opener opens sessions on zoku's certificate engine.
type Opener interface {
	Open(ctx context.Context, o SessionOptions) (Session, error)
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(ctx context.Context, o SessionOptions) (Session, error)

// Open calls f.
func (f OpenerFunc) Open(ctx context.Context, o SessionOptions) (Session, error) { return f(ctx, o) }

// Session is one command's connection to the certificate engine: the
// store, the CA account (an issuer) and the issuing path.
type Session interface {
	Store() *storage.Store
	Issuer() Issuer
	// OrderNow runs the certificate manager's one issuing path.
	OrderNow(ctx context.Context, o certmgr.Order) (certmgr.Result, error)
	Logger() *slog.Logger
	Close()
}

// Issuer is the CA account of a session (*certmgr.ACMEIssuer).
type Issuer interface {
	Server() string
	AccountID() string
	Email() string
	Config() certmgr.ACMEIssuerConfig
	// Client loads the account, or registers it, and returns the client.
	Client(ctx context.Context) (*acmeclient.Client, error)
	RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*acmeclient.RenewalInfo, error)
	Revoke(ctx context.Context, name string, certPEM []byte, reason *uint) error
}

var _ Issuer = (*certmgr.ACMEIssuer)(nil)

// SessionOptions are lego's settings a session is opened with.
type SessionOptions struct {
	// Path is the storage folder.
	Path string
	// Server is a directory URL or CA code.
	Server            string
	Email, AccountID  string
	AcceptTOS         bool
	AccountKeyType    string
	EAB               *acmeclient.EAB
	UserAgent         string
	HTTPTimeout       time.Duration
	TLSSkipVerify     bool
	CertTimeout       time.Duration
	OverallRequests   int
	LogLevel, LogFmt  string
	Challenges        bool // solvers are needed (run)
	HTTP              bool
	HTTPAddress       string
	HTTPWebroot       string
	TLS               bool
	TLSAddress        string
	DNS               string
	DNSResolvers      []string
	DNSTimeout        time.Duration
	DNSDisableANS     bool
	DNSDisableRNS     bool
	DNSWait           time.Duration
	DNSPersist        bool
	DNSPersistIssuer  string
	DNSPersistResolve []string
	// PFX keeps an existing .pfx in step with these options.
	PFX storage.PFXOptions
}

// Run executes lego's command line args (without the program name) and
// returns the exit code: 0 on success, 1 on failure, 2 on a usage error.
// Failures are one line on env.Stderr.
func Run(ctx context.Context, args []string, env Env, open Opener) int {
	env = env.withDefaults()
	if isV4(args) {
		var err error
		if args, err = fromV4(args); err != nil {
			return report(env, err)
		}
	}
	return report(env, dispatch(ctx, args, env, open))
}

func report(env Env, err error) int {
	var ue *usageError
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	msg := oneLine(err.Error())
	if rest, ok := strings.CutPrefix(msg, "lego"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, ":")) {
		msg = env.Prog + rest
	} else {
		msg = env.Prog + ": " + msg
	}
	fmt.Fprintln(env.Stderr, msg)
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// oneLine folds a multi-line error into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = os.Stdin
	}
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Setenv == nil {
		e.Setenv = os.Setenv
	}
	if e.StdoutIsTerminal == nil {
		e.StdoutIsTerminal = func() bool { return false }
	}
	if e.StdinIsTerminal == nil {
		e.StdinIsTerminal = func() bool { return false }
	}
	if e.Sleep == nil {
		e.Sleep = sleep
	}
	if e.Rand == nil {
		e.Rand = randInt64N
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Getwd == nil {
		e.Getwd = os.Getwd
	}
	if e.Prog == "" {
		e.Prog = "lego"
	}
	return e
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
