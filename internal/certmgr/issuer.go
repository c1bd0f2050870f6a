package certmgr

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/storage"
)

// Issuer is one CA the manager orders from. *ACMEIssuer is the one zoku
// uses; tests and metrics wrap it.
type Issuer interface {
	Obtain(ctx context.Context, req acmeclient.ObtainRequest) (*acmeclient.Certificate, error)
	Renew(ctx context.Context, req acmeclient.RenewRequest) (*acmeclient.Certificate, error)
	RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*acmeclient.RenewalInfo, error)
	Revoke(ctx context.Context, name string, certPEM []byte, reason *uint) error
	// Server is the CA's directory URL, compared with a certificate's
	// Meta.Server to tell which CA issued it.
	Server() string
}

// ACMEIssuerConfig configures an ACMEIssuer.
type ACMEIssuerConfig struct {
	// Client is the CA and the challenge solvers (its Server is required).
	Client acmeclient.Config
	// Store keeps the account.
	Store *storage.Store
	// Email is the account's contact; AccountID overrides the folder name
	// (default: Email, or lego's "noemail@example.com").
	Email, AccountID string
	// AccountKeyType is the key type of a new account key; zero means EC256.
	AccountKeyType certcrypto.KeyType
	// StorageServer, when set, is the directory URL accounts and
	// certificates are filed under instead of Client.Server (the embedded
	// CA's address changes between runs; its identity does not).
	StorageServer string
	// Register are the registration settings (EAB, terms of service).
	Register acmeclient.RegisterOptions
	// Reregister registers the stored key again at first use instead of
	// trusting the stored registration (the embedded CA forgets its
	// accounts when the process ends).
	Reregister bool
}

// ACMEIssuer is an Issuer over one ACME account. The account is loaded,
// or created and registered, at first use under a storage lock, so two
// processes starting together on one storage make one account; a CA that
// is down at start only delays the first order.
type ACMEIssuer struct {
	cfg ACMEIssuerConfig
	log *slog.Logger

	mu      sync.Mutex
	c       *acmeclient.Client // nil until first use
	failed  error              // the last set-up failure, kept for a while
	retryAt time.Time          // when set-up is tried again after failed
}

// setUpRetry is how long a failed account set-up (CA unreachable, terms
// refused) is answered from memory before it is tried again, so a manager
// with many certificates does not ask the CA once per certificate.
const setUpRetry = 30 * time.Second

var _ Issuer = (*ACMEIssuer)(nil)

// NewACMEIssuer returns an issuer; it does no network or storage I/O.
func NewACMEIssuer(cfg ACMEIssuerConfig) *ACMEIssuer {
	l := cfg.Client.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &ACMEIssuer{cfg: cfg, log: l.With("component", "acme")}
}

// Server is the directory URL certificates are filed under.
func (a *ACMEIssuer) Server() string {
	if a.cfg.StorageServer != "" {
		return a.cfg.StorageServer
	}
	return a.cfg.Client.Server
}

// AccountID is the account's folder name.
func (a *ACMEIssuer) AccountID() string { return storage.AccountID(a.cfg.Email, a.cfg.AccountID) }

// Email is the account's contact address.
func (a *ACMEIssuer) Email() string { return a.cfg.Email }

// Config returns the issuer's configuration (to make another issuer like
// it: another CA, other solvers).
func (a *ACMEIssuer) Config() ACMEIssuerConfig { return a.cfg }

// Client returns the ready ACME client, setting the account up first.
func (a *ACMEIssuer) Client(ctx context.Context) (*acmeclient.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c != nil {
		return a.c, nil
	}
	if a.cfg.Client.Server == "" {
		return nil, errors.New("no CA configured; set certificates.acme.server or --server")
	}
	if a.failed != nil && time.Now().Before(a.retryAt) {
		return nil, a.failed
	}
	c, err := a.setUp(ctx)
	if err != nil {
		if ctx.Err() == nil { // the caller giving up is not the CA failing
			a.failed, a.retryAt = err, time.Now().Add(setUpRetry)
		}
		return nil, err
	}
	a.c, a.failed = c, nil
	return c, nil
}

// setUp loads or creates the account under its lock and registers it
// when needed.
func (a *ACMEIssuer) setUp(ctx context.Context) (*acmeclient.Client, error) {
	st := a.cfg.Store
	server := a.Server()
	id := storage.AccountID(a.cfg.Email, a.cfg.AccountID)
	lease, err := st.Backend().Lock(ctx, "accounts/"+id)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", id, err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	fenced := storage.WithFence(ctx, lease)

	acct, err := st.LoadAccount(ctx, server, id)
	switch {
	case err == nil:
		a.log.Info("account loaded", "account", id, "legacy_layout", acct.Legacy)
	case errors.Is(err, fs.ErrNotExist):
		kt := a.cfg.AccountKeyType
		if kt == "" {
			kt = certcrypto.EC256
		}
		key, kerr := certcrypto.GeneratePrivateKey(kt)
		if kerr != nil {
			return nil, fmt.Errorf("acme: generate account key: %w", kerr)
		}
		acct = &storage.Account{ID: id, Email: a.cfg.Email, KeyType: kt, Server: server, Key: key}
		a.log.Info("no account yet: generated a new key", "account", id, "key_type", kt)
	default:
		return nil, err
	}
	ca := &acmeclient.Account{Email: acct.Email, Key: acct.Key, Registration: acct.Registration}
	if a.cfg.Reregister {
		// Register signs with the key itself (JWK), not with a stored
		// account URL the CA may never have seen.
		ca.Registration = nil
	}
	c, err := acmeclient.New(ctx, a.cfg.Client, ca)
	if err != nil {
		return nil, err
	}
	switch {
	case ca.Registration == nil:
		if _, err := c.Register(ctx, a.cfg.Register); err != nil {
			return nil, err
		}
		acct.Registration = ca.Registration
		if acct.Origin == "" {
			acct.Origin = "command"
		}
		if err := st.SaveAccount(fenced, acct); err != nil {
			return nil, fmt.Errorf("acme: save account: %w", err)
		}
	case acct.Legacy:
		// Seed 000's folder: write the account in lego v5's layout too. The
		// store copies the v4 account.json into archives/ first and leaves
		// the v4 keys/ folder where lego v4 looks for it.
		acct.Origin = "migration"
		if err := st.SaveAccount(fenced, acct); err != nil {
			return nil, fmt.Errorf("acme: write the lego v4 account in v5 layout: %w", err)
		}
		a.log.Info("lego v4 account written in v5 layout; the v4 files are kept", "account", id)
	}
	return c, nil
}

// Obtain orders a certificate.
func (a *ACMEIssuer) Obtain(ctx context.Context, req acmeclient.ObtainRequest) (*acmeclient.Certificate, error) {
	c, err := a.Client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Obtain(ctx, req)
}

// Renew orders a replacement.
func (a *ACMEIssuer) Renew(ctx context.Context, req acmeclient.RenewRequest) (*acmeclient.Certificate, error) {
	c, err := a.Client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Renew(ctx, req)
}

// RenewalInfo asks the CA for a renewal window.
func (a *ACMEIssuer) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*acmeclient.RenewalInfo, error) {
	c, err := a.Client(ctx)
	if err != nil {
		return nil, err
	}
	return c.RenewalInfo(ctx, leaf)
}

// Revoke revokes a certificate.
func (a *ACMEIssuer) Revoke(ctx context.Context, name string, certPEM []byte, reason *uint) error {
	c, err := a.Client(ctx)
	if err != nil {
		return err
	}
	return c.Revoke(ctx, name, certPEM, reason)
}
