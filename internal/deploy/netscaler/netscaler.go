// Package netscaler deploys certificates to a NetScaler (Citrix ADC)
// through its NITRO REST API, the way seed 003's script did by hand:
//
//   - HTTP-01 is answered by the appliance itself: a responder action that
//     returns the key authorization and a policy matching the token's URL,
//     bound on the HTTP virtual server at the first free priority above
//     (numerically below) the HTTP-to-HTTPS redirect policy, 90 above 100
//     in the seed. It is removed afterwards, unbind, policy, action, even
//     when validation failed.
//   - The key and certificate are uploaded under names unique to the
//     certificate (systemfile refuses to overwrite, 1642); the certkey is
//     added and bound to the SSL virtual server the first time, and
//     updated in place on renewal (action=update, nodomaincheck) so every
//     binding stays. The intermediate gets its own CA certkey and is
//     linked, and linked again when the issuer changes (1587).
//   - The certkey's serial is read back (and, when configured, the SSL
//     virtual server's served certificate checked over TLS); a failed
//     check puts the previous files back. Files no certkey uses any more
//     are deleted, and the configuration is saved.
//
// Nothing of the old certificate is touched until the new one is in
// place: a deploy that fails leaves the old certificate in service.
package netscaler

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
	"github.com/zoku/zoku/internal/deploy/netscaler/internal/nitro"
	"github.com/zoku/zoku/internal/storage"
)

// Options configure a Target. URL, Username, Password, SSLVserver and
// CertKey are required; HTTPVserver is required for the responder.
type Options struct {
	// Name is the target's name, for log lines.
	Name string
	// URL is the NSIP, https://192.0.2.10.
	URL string
	// Username and Password of the NITRO user. The password is never
	// logged or put in an error.
	Username, Password string
	// HeaderAuth sends X-NITRO-USER/X-NITRO-PASS on every request instead
	// of logging in.
	HeaderAuth bool
	// CAFile, Fingerprint (SHA-256 of the NSIP's certificate) and
	// ServerName verify the NSIP; Insecure skips that (explicit opt-in).
	// With none set, the system's roots are used.
	CAFile      string
	Fingerprint []byte
	ServerName  string
	Insecure    bool
	// HTTPVserver and its kind ("lb", the default, or "cs") take the
	// challenge policy; SSLVserver takes the certificate.
	HTTPVserver, HTTPVserverType, SSLVserver string
	// CertKey is the sslcertkey name.
	CertKey string
	// SNI binds the certkey as an SNI certificate.
	SNI bool
	// RedirectPolicy, when set, is the redirect policy the challenge
	// policy must come before.
	RedirectPolicy string
	// Priority is where the search for a free priority starts; zero
	// means 90.
	Priority int
	// Save saves the configuration after a deploy.
	Save bool
	// Timeout of each NITRO request; zero means 60 s.
	Timeout time.Duration
	// VerifyAddress, when set, is the SSL virtual server's host:port; the
	// served leaf is checked with VerifyServerName as SNI, for at most
	// VerifyTimeout.
	VerifyAddress, VerifyServerName string
	VerifyTimeout                   time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Target is one NetScaler.
type Target struct {
	opts Options
	nc   *nitro.Client
	log  *slog.Logger
	resp *responder
}

// New checks opts and builds the Target; it does no network I/O.
func New(opts Options) (*Target, error) {
	if opts.URL == "" || opts.Username == "" || opts.Password == "" || opts.SSLVserver == "" || opts.CertKey == "" {
		return nil, errors.New("netscaler: url, username, password, sslVserver and certKey are required")
	}
	if opts.Priority == 0 {
		opts.Priority = 90
	}
	if opts.HTTPVserverType == "" {
		opts.HTTPVserverType = "lb"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tc, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "deploy", "target", opts.Name)
	t := &Target{opts: opts, log: log}
	t.nc = nitro.New(nitro.Options{URL: opts.URL, Username: opts.Username, Password: opts.Password, HeaderAuth: opts.HeaderAuth, TLS: tc, Timeout: opts.Timeout, Logger: log})
	t.resp = &responder{t: t, inflight: map[string]binding{}}
	return t, nil
}

// tlsConfig verifies the NSIP by CA file, pinned fingerprint or the
// system roots; Insecure turns verification off.
func tlsConfig(o Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	switch {
	case o.Insecure:
		tc.InsecureSkipVerify = true //nolint:gosec // explicit opt-in (netscaler.insecure)
	case len(o.Fingerprint) > 0:
		pin := o.Fingerprint
		tc.InsecureSkipVerify = true //nolint:gosec // replaced by the pin check below
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the NSIP sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if string(sum[:]) != string(pin) {
				return fmt.Errorf("the NSIP's certificate has SHA-256 fingerprint %x, not the pinned %x; check netscaler.fingerprint", sum[:], pin)
			}
			return nil
		}
	case o.CAFile != "":
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("netscaler: caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("netscaler: caFile %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// HTTP01Provider answers HTTP-01 with responder policies on HTTPVserver.
func (t *Target) HTTP01Provider() challenge.Provider { return t.resp }

// Release logs out (the runner calls it after each run).
func (t *Target) Release(ctx context.Context) {
	if err := t.nc.Logout(ctx); err != nil {
		t.log.Debug("logout failed", "error", err)
	}
}

// Check reads what a deploy needs without changing anything: the login
// works, the virtual servers exist, the Responder feature is on.
func (t *Target) Check(ctx context.Context) error {
	if err := t.nc.Login(ctx); err != nil {
		return fmt.Errorf("netscaler: %w", err)
	}
	if err := t.nc.Get(ctx, "sslvserver", t.opts.SSLVserver, "", nil); err != nil {
		return fmt.Errorf("netscaler: ssl vserver %q: %w; check netscaler.sslVserver", t.opts.SSLVserver, err)
	}
	if t.opts.HTTPVserver != "" {
		if err := t.nc.Get(ctx, t.opts.HTTPVserverType+"vserver", t.opts.HTTPVserver, "", nil); err != nil {
			return fmt.Errorf("netscaler: %s vserver %q: %w; check netscaler.httpVserver", t.opts.HTTPVserverType, t.opts.HTTPVserver, err)
		}
		if err := t.resp.checkFeature(ctx); err != nil {
			return err
		}
	}
	return nil
}

// certKeyInfo is the part of an sslcertkey a deploy reads.
type certKeyInfo struct {
	CertKey string `json:"certkey"`
	Cert    string `json:"cert"`
	Key     string `json:"key"`
	Serial  string `json:"serial"`
	Status  string `json:"status"`
	Link    string `json:"linkcertkeyname"`
}

func (c *certKeyInfo) serial() *big.Int {
	n, _ := certfile.ParseSerial(c.Serial)
	return n
}

// certKey reads one certkey; nil when it does not exist.
func (t *Target) certKey(ctx context.Context, name string) (*certKeyInfo, error) {
	var list []certKeyInfo
	err := t.nc.Get(ctx, "sslcertkey", name, "", &list)
	if nitro.NotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return &list[0], nil
}

// Serving returns the serial of the certificate in the certkey now, or nil
// when the certkey does not exist. name is not used: a target has one
// certkey.
func (t *Target) Serving(ctx context.Context, _ string) (*big.Int, error) {
	ck, err := t.certKey(ctx, t.opts.CertKey)
	if err != nil {
		return nil, fmt.Errorf("netscaler: read certkey %s: %w", t.opts.CertKey, err)
	}
	if ck == nil {
		return nil, nil
	}
	return ck.serial(), nil
}

// Deploy puts b into the certkey and verifies it; see the package doc.
func (t *Target) Deploy(ctx context.Context, b *storage.Bundle) error {
	p, err := certfile.Split(b)
	if err != nil {
		return fmt.Errorf("netscaler: %w", err)
	}
	if err := t.deploy(ctx, p); err != nil {
		return fmt.Errorf("netscaler: %w", err)
	}
	return nil
}

func (t *Target) verifyTLS(ctx context.Context, leaf *x509.Certificate) error {
	if t.opts.VerifyAddress == "" {
		return nil
	}
	return probe.Wait(ctx, probe.Spec{Address: t.opts.VerifyAddress, ServerName: t.opts.VerifyServerName, Timeout: t.opts.VerifyTimeout}, leaf)
}

// save runs "save ns config", retrying while other saves run (1461).
func (t *Target) save(ctx context.Context) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = t.nc.Action(ctx, "nsconfig", "save", map[string]any{})
		if !nitro.HasCode(err, nitro.CodeSaveBusy) {
			break
		}
		t.log.Info("another save is running on the appliance; retrying")
		tm := time.NewTimer(time.Duration(attempt+1) * time.Second)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		}
	}
	if err != nil {
		return fmt.Errorf("save ns config: %w", err)
	}
	return nil
}
