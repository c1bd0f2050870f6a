package acmeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/dnspersist01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"

	"github.com/zoku/zoku/internal/storage"
)

// EAB holds external account binding credentials (RFC 8555 §7.3.4) that
// some CAs (ZeroSSL, Google, many private CAs) require for registration.
type EAB struct {
	// KID is the key identifier given by the CA.
	KID string
	// HMAC is the base64url-encoded MAC key given by the CA. It is never logged.
	HMAC string
}

// Solvers are the challenge providers offered to the CA. A nil field means
// that challenge type is not offered. lego picks, per authorization, the
// first offered type in the order tls-alpn-01, http-01, dns-01.
type Solvers struct {
	HTTP01    challenge.Provider
	TLSALPN01 challenge.Provider
	DNS01     challenge.Provider
	// DNSOptions tune the DNS-01 propagation check (see lego's dns01 options).
	DNSOptions []dns01.ChallengeOption
	// DNSPersist01 offers DNS-PERSIST-01 (a TXT record published once;
	// no DNS credentials at order time) with these options. lego prefers
	// dns-01 when both are offered, so offer one or the other.
	DNSPersist01 []dnspersist01.ChallengeOption
	// UseDNSPersist01 turns DNSPersist01 on (its options may be empty).
	UseDNSPersist01 bool
}

// TOSFunc is asked whether the user accepts the CA's terms of service at
// url. It returns false to refuse. It is called only when a new account has
// to be registered and Config.AcceptTOS is false.
type TOSFunc func(ctx context.Context, url string) (bool, error)

// Config configures a Client. Store and Server are required.
type Config struct {
	// Server is the CA's directory URL.
	Server string
	// Store is where the account and certificates are kept.
	Store *storage.Store
	// HTTPClient talks to the CA. Nil means lego's default client
	// (which honours LEGO_CA_CERTIFICATES for private CAs).
	HTTPClient *http.Client
	// UserAgent is added to lego's user agent; empty means "zoku".
	UserAgent string
	// Email is the account contact; empty registers without contact.
	Email string
	// AccountID overrides the account folder name (default: Email, or
	// lego's "noemail@example.com").
	AccountID string
	// AccountKeyType is the key type of a new account key; zero means EC256.
	AccountKeyType certcrypto.KeyType
	// EAB, when set, registers new accounts with external account binding.
	EAB *EAB
	// AcceptTOS agrees to the CA's terms of service without asking.
	AcceptTOS bool
	// AskTOS asks the user when AcceptTOS is false; nil means refuse.
	AskTOS TOSFunc
	// Reregister registers the stored account key again on every New
	// instead of trusting the stored registration. The embedded CA needs it:
	// it forgets its accounts when the process ends.
	Reregister bool
	// CertificateTimeout bounds how long to wait for the CA to issue after
	// finalize; zero means 30 s.
	CertificateTimeout time.Duration
	// Solvers are the challenge providers.
	Solvers Solvers
	// Logger receives progress lines; nil means discard.
	Logger *slog.Logger
}

// Client is a ready ACME account at one CA. Its methods are safe for
// concurrent use.
type Client struct {
	cfg     Config
	lego    *lego.Client
	account *storage.Account
	log     *slog.Logger
}

// legoLogMu guards the process-wide lego logger (lego logs through a global).
var legoLogMu sync.Mutex

// SetLegoLogger routes lego's own progress lines (authorizations,
// validation, finalize, download) to l. lego has one logger per process.
func SetLegoLogger(l *slog.Logger) {
	legoLogMu.Lock()
	defer legoLogMu.Unlock()
	legolog.SetDefault(l.With("component", "lego"))
}

// New loads the account for cfg.Server from the store, or creates and
// registers one, and returns a Client ready to order. It fails with one
// clear line when the CA is unreachable, refuses the registration, or the
// terms of service are not accepted; nothing is written to the store
// unless registration succeeded.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Store == nil {
		return nil, errors.New("acme: no storage configured")
	}
	if cfg.Server == "" {
		return nil, errors.New("acme: no CA directory URL; set --server")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.AccountKeyType == "" {
		cfg.AccountKeyType = certcrypto.EC256
	}
	log := cfg.Logger.With("component", "acme")

	id := storage.AccountID(cfg.Email, cfg.AccountID)
	acct, err := cfg.Store.LoadAccount(cfg.Server, id)
	switch {
	case err == nil:
		log.Info("account loaded", "account", id, "legacy_layout", acct.Legacy)
	case errors.Is(err, fs.ErrNotExist):
		key, kerr := certcrypto.GeneratePrivateKey(cfg.AccountKeyType)
		if kerr != nil {
			return nil, fmt.Errorf("acme: generate account key: %w", kerr)
		}
		acct = &storage.Account{ID: id, Email: cfg.Email, KeyType: cfg.AccountKeyType, Server: cfg.Server, Key: key}
		log.Info("no account yet: generated a new key", "account", id, "key_type", cfg.AccountKeyType)
	default:
		return nil, fmt.Errorf("acme: %w", err)
	}

	if cfg.Reregister {
		// Register signs with the key itself (JWK), not with a stored
		// account URL the CA may never have seen.
		acct.Registration = nil
	}
	c := &Client{cfg: cfg, account: acct, log: log}
	if err := c.connect(); err != nil {
		return nil, err
	}
	if acct.Registration == nil || cfg.Reregister {
		if err := c.register(ctx); err != nil {
			return nil, err
		}
		return c, nil
	}
	if acct.Legacy {
		// Seed 000's folder: write the account in lego v5's layout too. The
		// store copies the v4 account.json into archives/ first and leaves
		// the v4 keys/ folder where lego v4 looks for it.
		acct.Origin = "migration"
		if err := cfg.Store.SaveAccount(acct); err != nil {
			return nil, fmt.Errorf("acme: write the lego v4 account in v5 layout: %w", err)
		}
		log.Info("lego v4 account written in v5 layout; the v4 files are kept", "account", id)
	}
	return c, nil
}

// connect builds the lego client, which fetches the CA's directory.
func (c *Client) connect() error {
	lc := lego.NewConfig(c.account)
	lc.CADirURL = c.cfg.Server
	lc.UserAgent = "zoku"
	if c.cfg.UserAgent != "" {
		lc.UserAgent = c.cfg.UserAgent
	}
	if c.cfg.HTTPClient != nil {
		lc.HTTPClient = c.cfg.HTTPClient
	}
	if c.cfg.CertificateTimeout > 0 {
		lc.Certificate.Timeout = c.cfg.CertificateTimeout
	}
	client, err := lego.NewClient(lc)
	if err != nil {
		return Explain(fmt.Errorf("cannot reach the CA at %s: %w", c.cfg.Server, err))
	}
	s := c.cfg.Solvers
	if s.HTTP01 != nil {
		if err := client.Challenge.SetHTTP01Provider(s.HTTP01); err != nil {
			return fmt.Errorf("acme: http-01 solver: %w", err)
		}
	}
	if s.TLSALPN01 != nil {
		if err := client.Challenge.SetTLSALPN01Provider(s.TLSALPN01); err != nil {
			return fmt.Errorf("acme: tls-alpn-01 solver: %w", err)
		}
	}
	if s.DNS01 != nil {
		if err := client.Challenge.SetDNS01Provider(s.DNS01, s.DNSOptions...); err != nil {
			return fmt.Errorf("acme: dns-01 solver: %w", err)
		}
	}
	if s.UseDNSPersist01 {
		if err := client.Challenge.SetDNSPersist01(s.DNSPersist01...); err != nil {
			return fmt.Errorf("acme: dns-persist-01 solver: %w", err)
		}
	}
	c.lego = client
	return nil
}

// register creates (or, for a known key, finds) the account at the CA and
// saves it.
func (c *Client) register(ctx context.Context) error {
	meta := c.lego.GetServerMetadata()
	agreed := c.cfg.AcceptTOS || meta.TermsOfService == ""
	if !agreed && c.cfg.AskTOS != nil {
		ok, err := c.cfg.AskTOS(ctx, meta.TermsOfService)
		if err != nil {
			return fmt.Errorf("acme: terms of service: %w", err)
		}
		agreed = ok
	}
	if !agreed {
		return fmt.Errorf("acme: the CA's terms of service (%s) must be accepted before an account can be registered; read them and pass --accept-tos", meta.TermsOfService)
	}
	if meta.ExternalAccountRequired && c.cfg.EAB == nil {
		return errors.New("acme: this CA requires external account binding; pass --eab --kid KID --hmac HMAC from your CA account")
	}

	var (
		reg *acme.ExtendedAccount
		err error
	)
	if c.cfg.EAB != nil {
		c.log.Info("registering account with external account binding", "kid", c.cfg.EAB.KID)
		reg, err = c.lego.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: c.cfg.EAB.KID, HmacEncoded: c.cfg.EAB.HMAC,
		})
		if err != nil {
			return Explain(fmt.Errorf("external account binding rejected (check --kid and --hmac): %w", err))
		}
	} else {
		c.log.Info("registering account", "email", c.cfg.Email)
		reg, err = c.lego.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		if err != nil {
			return Explain(fmt.Errorf("register account: %w", err))
		}
	}
	c.account.Registration = reg
	if c.account.Origin == "" {
		c.account.Origin = "command"
	}
	if err := c.cfg.Store.SaveAccount(c.account); err != nil {
		return fmt.Errorf("acme: save account: %w", err)
	}
	c.log.Info("account registered", "account_url", reg.Location)
	// lego keeps the kid from construction time: reconnect so requests are
	// signed with the new account URL.
	return c.connect()
}

// Account returns the account in use.
func (c *Client) Account() *storage.Account { return c.account }

// Server returns the CA's directory URL.
func (c *Client) Server() string { return c.cfg.Server }

// CAAIdentities returns the issuer domain names the CA advertises (its
// directory's caaIdentities), which DNS-PERSIST-01 records name.
func (c *Client) CAAIdentities() []string { return c.lego.GetServerMetadata().CaaIdentities }

// UseDNSPersist01 offers DNS-PERSIST-01 from now on, with opts (which may
// depend on the account and the CA, hence after New).
func (c *Client) UseDNSPersist01(opts ...dnspersist01.ChallengeOption) error {
	c.cfg.Solvers.UseDNSPersist01, c.cfg.Solvers.DNSPersist01 = true, opts
	if err := c.lego.Challenge.SetDNSPersist01(opts...); err != nil {
		return fmt.Errorf("acme: dns-persist-01 solver: %w", err)
	}
	return nil
}
