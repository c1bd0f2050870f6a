package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/testkit/nitrosim"
)

// devCommands are the subcommands of `zoku dev`: tools for trying zoku
// out on one machine, never for production.
var devCommands = map[string]struct {
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}{
	"nitro-sim": {"run a simulated NetScaler (NITRO API and virtual servers) on loopback for a netscaler target", runNitroSim},
}

func runDev(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.Stdout, "Usage: zoku dev <tool> [flags]\n\nTools for trying zoku out on this machine (loopback only, never for production):")
		for _, name := range slices.Sorted(maps.Keys(devCommands)) {
			fmt.Fprintf(env.Stdout, "  %-10s %s\n", name, devCommands[name].summary)
		}
		fmt.Fprintln(env.Stdout, "\nRun 'zoku dev <tool> --help' for its flags. docs/targets.md shows each target type on loopback.")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := devCommands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "zoku dev: unknown tool %q; run 'zoku dev --help' for the list\n", args[0])
		return errUsage
	}
	return c.run(ctx, env, args[1:])
}

// Defaults of `zoku dev nitro-sim`; examples/netscaler-local.yaml uses
// them.
const (
	simAPIAddr  = "127.0.0.1:7440"
	simHTTPAddr = "127.0.0.1:7080"
	simSSLAddr  = "127.0.0.1:7443"
	simDir      = ".zoku-local/nitro-sim"
	simUser     = "nsroot"
)

func runNitroSim(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("dev nitro-sim", "", `Run a simulated NetScaler (Citrix ADC) on loopback, to try a netscaler target
without an appliance: the NITRO API zoku drives, an HTTP virtual server testHTTP
whose only responder policy (redirect_https, priority 100) redirects to HTTPS,
and an SSL virtual server testSSL that serves the certkey bound to it. It is
set up like seed 003's appliance, keeps everything in memory, and prints the
target that points at it (examples/netscaler-local.yaml, with the defaults).

It writes the NITRO password (random, new at each start) and the NSIP's
certificate to --dir, for the target's password: file: and caFile. Each API
call zoku makes is printed. Ctrl-C stops it.

Example (then, in another terminal: zoku deploy --config examples/netscaler-local.yaml):
  zoku dev nitro-sim --listen 127.0.0.1:7440`, env)
	var listen, httpAddr, sslAddr, dir string
	fs.StringVar(&listen, "listen", simAPIAddr, "host:port of the NITRO API (HTTPS; the target's netscaler.url), on loopback")
	fs.StringVar(&httpAddr, "http", simHTTPAddr, "host:port of the HTTP virtual server testHTTP (the embedded CA's certificates.acme.embedded.httpPort)")
	fs.StringVar(&sslAddr, "ssl", simSSLAddr, "host:port of the SSL virtual server testSSL (the target's verify.address)")
	fs.StringVar(&dir, "dir", simDir, "folder for the password and the NSIP certificate (created 0700)")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, a := range []struct{ flag, addr string }{{"--listen", listen}, {"--http", httpAddr}, {"--ssl", sslAddr}} {
		if !config.IsLoopback(a.addr) {
			return fmt.Errorf("%s %q: the simulator listens on loopback only; write 127.0.0.1:PORT", a.flag, a.addr)
		}
	}
	if httpAddr == sslAddr || listen == httpAddr || listen == sslAddr {
		return errors.New("--listen, --http and --ssl must be three different addresses")
	}

	password, err := randomPassword()
	if err != nil {
		return err
	}
	cert, certPEM, err := nsipCertificate()
	if err != nil {
		return err
	}
	pwFile, caFile := filepath.Join(dir, "password"), filepath.Join(dir, "nsip.pem")
	// Only the folder itself is private: its parents may hold what other
	// local try-outs share with a web server (.zoku-local/nginx).
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("--dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	if err := writeFileAtomic(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the password file: %w", err)
	}
	if err := writeFileAtomic(caFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("write the NSIP certificate: %w", err)
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return listenError("--listen", listen, err)
	}
	sim, err := nitrosim.Start(nitrosim.Options{
		Username: simUser, Password: password, APIListener: ln, Certificate: cert,
		VserverAddrs: map[string]string{"testHTTP": httpAddr, "testSSL": sslAddr},
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer sim.Close()
	seed, err := sim.SetUpSeed(nil, nil)
	if err != nil {
		var oe *net.OpError
		switch {
		case errors.As(err, &oe) && strings.Contains(err.Error(), "vserver testHTTP:"):
			return listenError("--http", httpAddr, oe)
		case errors.As(err, &oe):
			return listenError("--ssl", sslAddr, oe)
		}
		return err
	}
	var mu sync.Mutex // the hook runs on the API's goroutines
	sim.SetHook(func(method, resource string, _ map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(env.Stdout, "%s NITRO %s %s\n", time.Now().Format(time.TimeOnly), method, resource)
	})
	sum := sha256.Sum256(cert.Leaf.Raw)
	printSimGuide(env.Stdout, simGuide{
		URL: sim.URL(), User: simUser, PasswordFile: pwFile, CAFile: caFile, Fingerprint: fmt.Sprintf("%X", sum[:]),
		HTTPAddr: seed.HTTPAddr, SSLAddr: seed.SSLAddr, Seed: seed,
	})
	<-ctx.Done()
	mu.Lock()
	fmt.Fprintln(env.Stdout, "stopped")
	mu.Unlock()
	return nil
}

// listenError is the one line for an address that cannot be bound.
func listenError(flag, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %s: the address is in use (another nitro-sim?); stop that or choose another port with %s", flag, addr, flag)
	}
	return fmt.Errorf("%s %s: %w", flag, addr, err)
}

type simGuide struct {
	URL, User, PasswordFile, CAFile, Fingerprint string
	HTTPAddr, SSLAddr                            string
	Seed                                         *nitrosim.Seed
}

// printSimGuide says what runs and prints the target that points at it;
// the last line, "ready", means every listener is up.
func printSimGuide(w io.Writer, g simGuide) {
	_, httpPort, _ := net.SplitHostPort(g.HTTPAddr)
	fmt.Fprintf(w, `zoku NITRO simulator: a NetScaler on loopback for trying netscaler targets (in memory; gone when it stops)
  NITRO API     %s  (user %s, password in %s)
  NSIP cert     %s  (SHA-256 %s)
  HTTP vserver  %s on %s: responder policy %s at priority 100 redirects to HTTPS
  SSL vserver   %s on %s: no certificate bound yet

A target for it (examples/netscaler-local.yaml is this, with comments, for the
default flags); run zoku deploy from this folder, so the relative paths hold:

certificates:
  acme:
    server: embedded
    acceptTOS: true
    embedded:
      httpPort: %s
targets:
  netscaler:
    type: netscaler
    certificates:
      - main: www.localhost
    verify:
      address: %s
    netscaler:
      url: %s
      username: %s
      password: file:%s
      caFile: %s
      httpVserver: %s
      redirectPolicy: %s
      sslVserver: %s

ready; Ctrl-C stops it
`, g.URL, g.User, g.PasswordFile, g.CAFile, g.Fingerprint,
		g.Seed.HTTPVserver, g.HTTPAddr, g.Seed.RedirectPolicy, g.Seed.SSLVserver, g.SSLAddr,
		httpPort, g.SSLAddr, g.URL, g.User, g.PasswordFile, g.CAFile,
		g.Seed.HTTPVserver, g.Seed.RedirectPolicy, g.Seed.SSLVserver)
}

// randomPassword is 128 random bits, base64url.
func randomPassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// nsipCertificate makes the simulated NSIP's self-signed certificate for
// 127.0.0.1, ::1 and localhost, a CA so that caFile can name it.
func nsipCertificate() (*tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "zoku nitro-sim NSIP"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// writeFileAtomic writes data to path by temp file, sync and rename, so a
// reader sees the old file or the new one, never part of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	werr := func() error {
		if err := f.Chmod(perm); err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
		return f.Sync()
	}()
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
