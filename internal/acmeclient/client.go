package acmeclient

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/dnspersist01"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
	"github.com/go-acme/lego/v5/registration/zerossl"
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
// to be registered and RegisterOptions.AcceptTOS is false.
type TOSFunc func(ctx context.Context, url string) (bool, error)

// Account is the ACME account a Client signs with: its key and, once
// registered, the CA's account object. It implements lego's
// registration.User. Where it is kept is the caller's business.
type Account struct {
	// Email is the contact address; may be empty.
	Email string
	// Key is the account's private key.
	Key crypto.Signer
	// Registration is the CA's account object and URL; nil until
	// registered.
	Registration *acme.ExtendedAccount
}

var _ registration.User = (*Account)(nil)

// GetEmail returns the contact address (registration.User).
func (a *Account) GetEmail() string { return a.Email }

// GetRegistration returns the registration (registration.User).
func (a *Account) GetRegistration() *acme.ExtendedAccount { return a.Registration }

// GetPrivateKey returns the key (registration.User).
func (a *Account) GetPrivateKey() crypto.Signer { return a.Key }

// Config configures a Client. Server is required.
type Config struct {
	// Server is the CA's directory URL.
	Server string
	// HTTPClient talks to the CA. Nil means lego's default client
	// (which honours LEGO_CA_CERTIFICATES for private CAs).
	HTTPClient *http.Client
	// UserAgent is added to lego's user agent; empty means "zoku".
	UserAgent string
	// CertificateTimeout bounds how long to wait for the CA to issue after
	// finalize; zero means 30 s.
	CertificateTimeout time.Duration
	// OverallRequestLimit caps requests per second to the CA; zero means
	// lego's default (18).
	OverallRequestLimit int
	// Solvers are the challenge providers.
	Solvers Solvers
	// Logger receives progress lines; nil means discard.
	Logger *slog.Logger
}

// Client speaks ACME for one account at one CA: it registers the account,
// orders, renews and revokes certificates and reads renewal information.
// It saves nothing: what the CA issued is returned to the caller. Its
// methods are safe for concurrent use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	account *Account

	mu   sync.Mutex // guards lego (replaced after registration)
	lego *lego.Client
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

// New returns a Client for acct at cfg.Server. It fetches the CA's
// directory, so it fails with one clear line when the CA is unreachable.
// An account without Registration must be registered (Register) before
// ordering.
func New(ctx context.Context, cfg Config, acct *Account) (*Client, error) {
	if cfg.Server == "" {
		return nil, errors.New("acme: no CA directory URL; set --server")
	}
	if acct == nil || acct.Key == nil {
		return nil, errors.New("acme: no account key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, account: acct, log: cfg.Logger.With("component", "acme")}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// connect builds the lego client, which fetches the CA's directory.
func (c *Client) connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
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
	if c.cfg.OverallRequestLimit > 0 {
		lc.Certificate.OverallRequestLimit = c.cfg.OverallRequestLimit
	}
	client, err := lego.NewClient(lc)
	if err != nil {
		return c.explain("cannot reach the CA at "+c.cfg.Server, err)
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
	c.mu.Lock()
	c.lego = client
	c.mu.Unlock()
	return nil
}

func (c *Client) legoClient() *lego.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lego
}

// RegisterOptions tune Register.
type RegisterOptions struct {
	// EAB, when set, registers with external account binding.
	EAB *EAB
	// AcceptTOS agrees to the CA's terms of service without asking.
	AcceptTOS bool
	// AskTOS asks the user when AcceptTOS is false; nil means refuse.
	AskTOS TOSFunc
}

// Register creates the account at the CA, or finds the one that belongs to
// the key, and records the registration in the Account. It fails with one
// clear line when the terms of service are not accepted, the CA requires
// EAB, or the CA refuses.
func (c *Client) Register(ctx context.Context, o RegisterOptions) (*acme.ExtendedAccount, error) {
	lc := c.legoClient()
	meta := lc.GetServerMetadata()
	agreed := o.AcceptTOS || meta.TermsOfService == ""
	if !agreed && o.AskTOS != nil {
		ok, err := o.AskTOS(ctx, meta.TermsOfService)
		if err != nil {
			return nil, fmt.Errorf("acme: terms of service: %w", err)
		}
		agreed = ok
	}
	if !agreed {
		return nil, fmt.Errorf("acme: the CA's terms of service (%s) must be accepted before an account can be registered; read them and pass --accept-tos", meta.TermsOfService)
	}
	if meta.ExternalAccountRequired && o.EAB == nil && zerossl.IsZeroSSL(c.cfg.Server) {
		// As lego does: ZeroSSL hands out EAB credentials for an email
		// address (or ZERO_SSL_ACCESS_KEY's account) through its API.
		c.log.Info("registering account with ZeroSSL's EAB for the email", "email", c.account.Email)
		reg, err := registration.RegisterWithZeroSSL(ctx, lc.Registration, c.account.Email)
		if err != nil {
			return nil, c.explain("register at ZeroSSL (external account binding for the email; or pass --eab)", err)
		}
		return c.registered(ctx, reg)
	}
	if meta.ExternalAccountRequired && o.EAB == nil {
		return nil, errors.New("acme: this CA requires external account binding; pass --eab --kid KID --hmac-file FILE from your CA account")
	}
	var (
		reg *acme.ExtendedAccount
		err error
	)
	if o.EAB != nil {
		c.log.Info("registering account with external account binding", "kid", o.EAB.KID)
		reg, err = lc.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: o.EAB.KID, HmacEncoded: o.EAB.HMAC,
		})
		if err != nil {
			return nil, c.explain("external account binding rejected (check --kid and the HMAC key)", err)
		}
	} else {
		c.log.Info("registering account", "email", c.account.Email)
		reg, err = lc.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		if err != nil {
			return nil, c.explain("register account", err)
		}
	}
	return c.registered(ctx, reg)
}

// registered records a new registration.
func (c *Client) registered(ctx context.Context, reg *acme.ExtendedAccount) (*acme.ExtendedAccount, error) {
	c.account.Registration = reg
	c.log.Info("account registered", "account_url", reg.Location)
	// lego keeps the kid from construction time: reconnect so requests are
	// signed with the new account URL.
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return reg, nil
}

// Account returns the account in use.
func (c *Client) Account() *Account { return c.account }

// Server returns the CA's directory URL.
func (c *Client) Server() string { return c.cfg.Server }

// CAAIdentities returns the issuer domain names the CA advertises (its
// directory's caaIdentities), which DNS-PERSIST-01 records name.
func (c *Client) CAAIdentities() []string {
	return c.legoClient().GetServerMetadata().CaaIdentities
}

// UseDNSPersist01 offers DNS-PERSIST-01 from now on, with opts (which may
// depend on the account and the CA, hence after New).
func (c *Client) UseDNSPersist01(opts ...dnspersist01.ChallengeOption) error {
	c.cfg.Solvers.UseDNSPersist01, c.cfg.Solvers.DNSPersist01 = true, opts
	if err := c.legoClient().Challenge.SetDNSPersist01(opts...); err != nil {
		return fmt.Errorf("acme: dns-persist-01 solver: %w", err)
	}
	return nil
}
