package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/lego"

	"github.com/zoku/zoku/internal/hook"
	"github.com/zoku/zoku/internal/legocli"
	"github.com/zoku/zoku/internal/storage"
)

// newFlagSet returns a flag set whose --help prints a usage line, a one
// line description and the flags (spelt --flag), and whose errors are
// returned, not printed and exited on.
func newFlagSet(name, argsUsage, about string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("zoku "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := env.Stdout
		fmt.Fprintf(w, "Usage: zoku %s [flags] %s\n\n%s\n\nFlags:\n", name, argsUsage, about)
		printFlags(w, fs)
	}
	return fs
}

// printFlags writes the flags of fs as --name, with their value type,
// usage and default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + f.Name
		if kind != "" {
			line += " " + kind
		}
		usage = strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
	})
}

// usageError is a command line that cannot run: Run prints it as one line
// on stderr and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parse parses args; -h/--help prints usage (once) and returns
// flag.ErrHelp; an unknown flag or a stray argument returns a usage error
// with a hint, and prints nothing else.
func parse(fs *flag.FlagSet, args []string) error {
	help := fs.Usage
	// The flag package calls Usage on every error; only --help prints it.
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	if errors.Is(err, flag.ErrHelp) {
		help()
		return flag.ErrHelp
	}
	if err != nil {
		return &usageError{msg: fmt.Sprintf("%s; run '%s --help'", err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q; run '%s --help'", fs.Arg(0), fs.Name())}
	}
	return nil
}

// listFlag is a repeatable string flag; a comma also separates values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// accountFlags select the CA, the account and the storage folder.
type accountFlags struct {
	server    string
	email     string
	accountID string
	acceptTOS bool
	path      string
	eab       bool
	kid       string
	hmac      string
	hmacFile  string
	logFormat string
	verbose   bool
}

func (a *accountFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.server, "server", "letsencrypt", "CA directory URL, or one of: letsencrypt, letsencrypt-staging, embedded (in-process test CA), or a lego CA code (zerossl, googletrust, ...)")
	fs.StringVar(&a.server, "s", "letsencrypt", "short for --server")
	fs.StringVar(&a.email, "email", "", "account contact email")
	fs.StringVar(&a.email, "m", "", "short for --email")
	fs.StringVar(&a.accountID, "account-id", "", "account folder name (default: the email)")
	fs.BoolVar(&a.acceptTOS, "accept-tos", false, "accept the CA's terms of service without asking")
	fs.BoolVar(&a.acceptTOS, "a", false, "short for --accept-tos")
	fs.StringVar(&a.path, "path", ".zoku", "storage folder (lego-compatible layout; a lego .lego folder works too)")
	fs.BoolVar(&a.eab, "eab", false, "register with external account binding (needs --kid and an HMAC)")
	fs.StringVar(&a.kid, "kid", "", "EAB key identifier (env LEGO_EAB_KID)")
	fs.StringVar(&a.kid, "eab.kid", "", "same as --kid (lego v5's name)")
	fs.StringVar(&a.hmac, "hmac", "", "EAB HMAC key, base64url; visible to other users in the process list: prefer LEGO_EAB_HMAC or --hmac-file")
	fs.StringVar(&a.hmac, "eab.hmac", "", "same as --hmac (lego v5's name)")
	fs.StringVar(&a.hmacFile, "hmac-file", "", "file holding the EAB HMAC key")
	fs.StringVar(&a.logFormat, "log-format", "text", "progress output: text or json (slog)")
	fs.Func("log.format", "same as --log-format (lego v5's name; its 'colored' is text here)", func(v string) error {
		if v == "colored" {
			v = "text"
		}
		a.logFormat = v
		return nil
	})
	fs.BoolVar(&a.verbose, "v", false, "verbose: also show debug lines")
	fs.Func("log.level", "debug (same as -v) or info; lego's warn and error levels are for 'zoku lego'", func(v string) error {
		switch strings.ToLower(v) {
		case "debug":
			a.verbose = true
		case "info":
			a.verbose = false
		default:
			return fmt.Errorf("--log.level %q: zoku's own commands take debug or info ('zoku lego' takes warn and error too)", v)
		}
		return nil
	})
	fs.Func("env-file", "dotenv file (NAME=value lines) read into the environment first, for DNS provider credentials", func(v string) error {
		return legocli.LoadDotenv(v, os.Setenv)
	})
}

// challengeFlags choose and configure the challenge solvers.
type challengeFlags struct {
	http        bool
	httpPort    string
	tls         bool
	tlsPort     string
	dns         string
	resolvers   listFlag
	disableANS  bool
	dnsWait     time.Duration
	dnsTimeout  time.Duration
	propTimeout time.Duration
	nsPort      int
	requireAll  bool
	persist     bool
	persistIss  string
}

func (c *challengeFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.http, "http", false, "solve HTTP-01 with zoku's own HTTP server")
	fs.StringVar(&c.httpPort, "http.port", ":80", "address for the HTTP-01 server (host:port or port)")
	fs.StringVar(&c.httpPort, "http.address", ":80", "same as --http.port (lego v5's name)")
	fs.Func("http.proxy-header", "accepted for lego compatibility: zoku answers a token whatever the Host header", func(string) error { return nil })
	fs.BoolVar(&c.tls, "tls", false, "solve TLS-ALPN-01 with zoku's own TLS server")
	fs.StringVar(&c.tlsPort, "tls.port", ":443", "address for the TLS-ALPN-01 server (host:port or port)")
	fs.StringVar(&c.tlsPort, "tls.address", ":443", "same as --tls.port (lego v5's name)")
	fs.StringVar(&c.dns, "dns", "", "solve DNS-01 with this lego DNS provider code (credentials from lego's environment variables or VAR_FILE)")
	fs.Var(&c.resolvers, "dns.resolvers", "DNS resolvers (host:port) for the propagation check; repeatable")
	fs.BoolVar(&c.disableANS, "dns.propagation.disable-ans", false, "skip the check against the zone's authoritative name servers")
	fs.DurationVar(&c.dnsWait, "dns.propagation.wait", 0, "wait this long instead of checking propagation")
	c.dnsTimeout = 10 * time.Second
	fs.Var((*secondsOrDuration)(&c.dnsTimeout), "dns.timeout", "timeout of each DNS query: a duration (10s) or, as lego writes it, seconds (10) (default 10s)")
	fs.DurationVar(&c.propTimeout, "dns.propagation.timeout", 0, "give up when the record is not visible after this long (default: the provider's, else 60s)")
	fs.IntVar(&c.nsPort, "dns.propagation.ns-port", 0, "port of the zone's authoritative name servers (default 53; for lab and test servers)")
	fs.BoolVar(&c.requireAll, "dns.propagation.require-all", false, "require every resolver to see the record (default: one is enough)")
	fs.BoolVar(&c.persist, "dns-persist", false, "solve DNS-PERSIST-01: publish one TXT record once (zoku prints it); later orders need no DNS credentials")
	fs.StringVar(&c.persistIss, "dns-persist.issuer", "", "issuer domain name for the DNS-PERSIST-01 record (default: the CA's first CAA identity)")
	fs.StringVar(&c.persistIss, "dns-persist.issuer-domain-name", "", "same as --dns-persist.issuer (lego v5's name)")
}

// secondsOrDuration is a duration flag that also takes lego's plain
// seconds ("10").
type secondsOrDuration time.Duration

func (d *secondsOrDuration) String() string { return time.Duration(*d).String() }

func (d *secondsOrDuration) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		*d = secondsOrDuration(time.Duration(n) * time.Second)
		return nil
	}
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration (10s) or seconds (10)")
	}
	*d = secondsOrDuration(x)
	return nil
}

// outputFlags are lego's extra files and hooks around an order, shared by
// `zoku obtain` and `zoku renew`.
type outputFlags struct {
	pem, pfx                bool
	pfxPassword, pfxFormat  string
	preHook, postHook       string
	preTimeout, postTimeout time.Duration
}

func (o *outputFlags) register(fs *flag.FlagSet, env Env) {
	fs.BoolVar(&o.pem, "pem", false, "also write <name>.pem (certificate then key); an existing .pem is always kept in step")
	fs.BoolVar(&o.pfx, "pfx", false, "also write <name>.pfx (PKCS#12); an existing .pfx is always kept in step")
	fs.StringVar(&o.pfxPassword, "pfx.password", firstSet(env.Getenv("LEGO_PFX_PASSWORD"), storage.DefaultPFXPassword), "password of the .pfx (default: LEGO_PFX_PASSWORD, else lego's 'changeit'); argv is visible to every user: prefer the variable")
	fs.StringVar(&o.pfxFormat, "pfx.format", env.Getenv("LEGO_PFX_FORMAT"), "encryption of the .pfx: RC2 (default for a new file), DES, SHA256, PBMAC1; an existing .pfx keeps its own")
	fs.StringVar(&o.preHook, "pre-hook", "", "shell command run before ordering, with the certificate's name and domains in lego's variables")
	fs.DurationVar(&o.preTimeout, "pre-hook-timeout", hook.DefaultTimeout, "time limit of the pre-hook")
	fs.StringVar(&o.postHook, "post-hook", "", "shell command run after ordering, whether it worked or not")
	fs.DurationVar(&o.postTimeout, "post-hook-timeout", hook.DefaultTimeout, "time limit of the post-hook")
}

// apply sets the store's .pfx options: --pfx writes one for every
// certificate; an existing .pfx is refreshed with this password.
func (o *outputFlags) apply(st *storage.Store) {
	st.SetPFX(storage.PFXOptions{Password: o.pfxPassword, Format: o.pfxFormat}, o.pfx)
}

func (c *challengeFlags) any() bool { return c.http || c.tls || c.dns != "" || c.persist }

// parseKeyType maps lego's key type names (ec256, rsa2048, ...).
func parseKeyType(s string) (certcrypto.KeyType, error) {
	switch strings.ToLower(s) {
	case "ec256", "p256":
		return certcrypto.EC256, nil
	case "ec384", "p384":
		return certcrypto.EC384, nil
	case "rsa2048":
		return certcrypto.RSA2048, nil
	case "rsa3072":
		return certcrypto.RSA3072, nil
	case "rsa4096":
		return certcrypto.RSA4096, nil
	}
	return "", fmt.Errorf("unknown --key-type %q; use one of ec256, ec384, rsa2048, rsa3072, rsa4096", s)
}

// serverEmbedded is the --server value that starts the in-process CA.
const serverEmbedded = "embedded"

// resolveServer turns a --server value into a directory URL.
func resolveServer(s string) (string, error) {
	switch strings.ToLower(s) {
	case serverEmbedded:
		return serverEmbedded, nil
	case "letsencrypt", "le", "":
		return lego.DirectoryURLLetsEncrypt, nil
	case "letsencrypt-staging", "le-staging", "staging":
		return lego.DirectoryURLLetsEncryptStaging, nil
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return "", fmt.Errorf("invalid --server %q; give the CA's directory URL (https://...) or letsencrypt, letsencrypt-staging, embedded", s)
		}
		return s, nil
	}
	if u, err := lego.GetDirectoryURL(s); err == nil {
		return u, nil
	}
	return "", fmt.Errorf("unknown --server %q; give the CA's directory URL (https://...) or letsencrypt, letsencrypt-staging, embedded", s)
}
