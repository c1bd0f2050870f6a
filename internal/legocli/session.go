package legocli

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/storage"
)

func randInt64N(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

// unavailable are lego flags whose feature zoku cannot offer: using one is
// an error that says so (never a silent difference).
var unavailable = map[string]string{
	"config":              "lego's configuration-file mode is not part of zoku's lego personality; keep the command line, or move to 'zoku deploy --config' (docs/lego.md)",
	"http.memcached-host": "zoku has no memcached HTTP-01 writer; use --http (zoku listens), --http.webroot, or 'zoku run', which answers from shared storage on every node",
	"http.s3-bucket":      "the S3 SDK is not part of this build; use --http, --http.webroot or DNS-01",
}

// refuseUnavailable fails when a flag of a feature zoku lacks is set, and
// prints the note of every set flag whose behaviour differs.
func (inv *invocation) refuseUnavailable() error {
	names := make([]string, 0, len(inv.flags.defs))
	for n, d := range inv.flags.defs {
		if n == d.name {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		d := inv.flags.defs[n]
		if !inv.flags.IsSet(n) || (d.kind == kBool && !inv.flags.Bool(n)) {
			continue
		}
		if why, ok := unavailable[n]; ok {
			return fmt.Errorf("--%s is not supported: %s", n, why)
		}
		if d.note != "" && inv.givenHere(n) {
			fmt.Fprintf(inv.env.Stderr, "lego: note: --%s: %s\n", n, d.note)
		}
	}
	return nil
}

// givenHere reports whether the flag was set (not just defaulted).
func (inv *invocation) givenHere(name string) bool {
	vals, set := inv.flags.raw(name)
	return set && len(vals) > 0
}

// path is the storage folder: --path, LEGO_PATH, else ./.lego.
func (inv *invocation) path() (string, error) {
	if p := inv.flags.String("path"); p != "" {
		return p, nil
	}
	wd, err := inv.env.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the working folder for ./.lego: %w", err)
	}
	return filepath.Join(wd, ".lego"), nil
}

// has reports whether the command defines the flag.
func (inv *invocation) has(name string) bool { _, ok := inv.flags.defs[name]; return ok }

// sessionOptions collects the session settings from the flags the
// command has.
func (inv *invocation) sessionOptions() (SessionOptions, error) {
	f := inv.flags
	path, err := inv.path()
	if err != nil {
		return SessionOptions{}, err
	}
	o := SessionOptions{
		Path: path, Server: f.String("server"), Email: f.String("email"), AccountID: f.String("account-id"),
		LogLevel: f.String("log.level"), LogFmt: f.String("log.format"),
	}
	if inv.has("accept-tos") {
		o.AcceptTOS = f.Bool("accept-tos")
	}
	if inv.has("user-agent") {
		o.UserAgent = f.String("user-agent")
		o.HTTPTimeout = time.Duration(f.Int("http-timeout")) * time.Second
		o.TLSSkipVerify = f.Bool("tls-skip-verify")
		o.CertTimeout = time.Duration(f.Int("cert.timeout")) * time.Second
		o.OverallRequests = f.Int("overall-request-limit")
	}
	if f.Bool("eab") {
		kid, hmac := f.String("eab.kid"), f.String("eab.hmac")
		if kid == "" || hmac == "" {
			return o, usagef("--eab needs --eab.kid and --eab.hmac (LEGO_EAB_KID, LEGO_EAB_HMAC)")
		}
		o.EAB = &acmeclient.EAB{KID: kid, HMAC: hmac}
	}
	if inv.has("pfx.password") {
		o.PFX = storage.PFXOptions{Password: f.String("pfx.password")}
		if f.IsSet("pfx.format") {
			o.PFX.Format = f.String("pfx.format")
		}
	}
	return o, nil
}

// challengeOptions adds the challenge settings of `run`.
func (inv *invocation) challengeOptions(o *SessionOptions) error {
	f := inv.flags
	o.Challenges = true
	o.HTTP, o.TLS, o.DNS, o.DNSPersist = f.Bool("http"), f.Bool("tls"), f.String("dns"), f.Bool("dns-persist")
	if !o.HTTP && !o.TLS && o.DNS == "" && !o.DNSPersist {
		return usagef("no challenge selected: pass --http, --tls, --dns PROVIDER or --dns-persist")
	}
	if f.Bool("ipv4only") && f.Bool("ipv6only") {
		return usagef("--ipv4only and --ipv6only are exclusive")
	}
	for _, pair := range [][3]string{
		{"dns.propagation.wait", "dns.propagation.disable-ans", "dns.propagation.disable-rns"},
		{"dns-persist.propagation.wait", "dns-persist.propagation.disable-ans", "dns-persist.propagation.disable-rns"},
	} {
		if f.IsSet(pair[0]) && (f.Bool(pair[1]) || f.Bool(pair[2])) {
			return usagef("--%s and --%s/--%s are exclusive", pair[0], pair[1], pair[2])
		}
	}
	var err error
	if o.HTTPAddress, err = address(f, "http.address"); err != nil {
		return err
	}
	if o.TLSAddress, err = address(f, "tls.address"); err != nil {
		return err
	}
	o.HTTPWebroot = f.String("http.webroot")
	o.DNSResolvers = f.List("dns.resolvers")
	o.DNSTimeout = time.Duration(f.Int("dns.timeout")) * time.Second
	o.DNSDisableANS, o.DNSDisableRNS = f.Bool("dns.propagation.disable-ans"), f.Bool("dns.propagation.disable-rns")
	o.DNSWait = f.Duration("dns.propagation.wait")
	if o.DNSPersist {
		o.DNSPersistIssuer = f.String("dns-persist.issuer-domain-name")
		o.DNSPersistResolve = f.List("dns-persist.resolvers")
	}
	return inv.loadEnvFile()
}

// address reads an interface:port flag and applies --ipv4only/--ipv6only
// to an address without an interface.
func address(f *values, name string) (string, error) {
	a := f.String(name)
	if !strings.Contains(a, ":") {
		return "", usagef("--%s takes interface:port or :port, not %q", name, a)
	}
	if strings.HasPrefix(a, ":") {
		switch {
		case f.Bool("ipv4only"):
			a = "0.0.0.0" + a
		case f.Bool("ipv6only"):
			a = "[::]" + a
		}
	}
	return a, nil
}

// loadEnvFile reads --env-file into the environment (see LoadDotenv).
func (inv *invocation) loadEnvFile() error {
	name := inv.flags.String("env-file")
	if name == "" {
		return nil
	}
	return LoadDotenv(name, inv.env.Setenv)
}

// LoadDotenv reads a dotenv file (NAME=value lines, '#' comments, an
// optional "export ", values in single or double quotes) and sets each
// variable with setenv: lego's --env-file, which DNS provider credentials
// come from. Values never appear in errors.
func LoadDotenv(name string, setenv func(key, value string) error) error {
	fh, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("--env-file: %w", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("--env-file %s line %d: want NAME=value", name, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if err := setenv(k, v); err != nil {
			return fmt.Errorf("--env-file %s line %d: set %s: %w", name, n, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("--env-file %s: %w", name, err)
	}
	return nil
}
