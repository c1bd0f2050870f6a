// Package tlsalpn01 answers ACME TLS-ALPN-01 challenges (RFC 8737).
//
// The CA opens a TLS connection to the name being validated, offering only
// the "acme-tls/1" ALPN protocol, and expects a self-signed certificate for
// that name carrying the acmeIdentifier extension (OID 1.3.6.1.5.5.7.1.31)
// with the SHA-256 digest of the key authorization. A Solver builds and keeps
// those certificates; it is a lego challenge.Provider. GetCertificate plugs
// into any tls.Config (the edge router mounts it on its :443 listener and falls
// through to its normal certificates on ErrNoChallenge), and Listen binds a
// dedicated listener once, up front, as the CLI does.
package tlsalpn01

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/go-acme/lego/v5/challenge"
	legotlsalpn01 "github.com/go-acme/lego/v5/challenge/tlsalpn01"

	"github.com/zoku/zoku/internal/challenge/shared"
)

// ALPNProto is the ALPN protocol ID of TLS-ALPN-01 (RFC 8737 §6.2).
const ALPNProto = legotlsalpn01.ACMETLS1Protocol

// ErrNoChallenge is returned by GetCertificate when the handshake is not a
// TLS-ALPN-01 validation or no challenge certificate exists for its server
// name. A router that shares its listener uses it to fall through to its own
// certificates.
var ErrNoChallenge = errors.New("tls-alpn-01: no challenge certificate for this handshake")

var _ challenge.Provider = (*Solver)(nil)

// Solver keeps TLS-ALPN-01 challenge certificates by server name.
// It is safe for concurrent use; its zero value is ready to use and logs nothing.
type Solver struct {
	// Logger receives failed handshakes (at debug level) and accept errors
	// of the server started by Listen. Set it before calling Listen.
	// NewSolver sets a logger that discards everything; nil does the same.
	Logger *slog.Logger
	// Shared, when set, also keeps every key authorization in the storage
	// that other processes or nodes share, so whichever the CA reaches
	// answers it. Set it before the first Present.
	Shared *shared.Answers

	mu    sync.RWMutex     // guards certs
	certs map[string]entry // normalized server name -> challenge certificate
}

// entry is one presented challenge certificate.
type entry struct {
	cert    *tls.Certificate
	keyAuth string // to tell a stale CleanUp from the current one
}

// NewSolver returns an empty Solver whose Logger discards.
func NewSolver() *Solver {
	return &Solver{Logger: slog.New(slog.DiscardHandler)}
}

// Present builds the challenge certificate for domain and keyAuth (a fresh
// RSA key, through lego's tlsalpn01.ChallengeCert) and serves it to
// handshakes for that name. Names are matched case-insensitively. An IP
// identifier is served under its reverse-DNS name, which is the SNI that
// RFC 8738 §6 tells validators to send.
func (s *Solver) Present(ctx context.Context, domain, _, keyAuth string) error {
	name, certName, err := serverName(domain)
	if err != nil {
		return err
	}
	cert, err := legotlsalpn01.ChallengeCert(certName, keyAuth)
	if err != nil {
		return fmt.Errorf("tls-alpn-01: build challenge certificate for %s: %w", certName, err)
	}

	s.mu.Lock()
	if s.certs == nil {
		s.certs = make(map[string]entry)
	}
	s.certs[name] = entry{cert: cert, keyAuth: keyAuth}
	s.mu.Unlock()
	s.Shared.Put(ctx, name, keyAuth)
	return nil
}

// CleanUp stops serving the challenge certificate for domain. It only removes
// it if it was built from keyAuth, so a late CleanUp of an earlier attempt
// cannot remove a newer one. Cleaning up an unknown name is not an error.
func (s *Solver) CleanUp(ctx context.Context, domain, _, keyAuth string) error {
	name, _, err := serverName(domain)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if e, ok := s.certs[name]; ok && e.keyAuth == keyAuth {
		delete(s.certs, name)
	}
	s.mu.Unlock()
	s.Shared.Drop(ctx, name, keyAuth)
	return nil
}

// GetCertificate returns the challenge certificate for hello.ServerName when
// the hello offers the "acme-tls/1" protocol (alone, as validators do, or
// among others). Otherwise it returns (nil, ErrNoChallenge), possibly wrapped
// with the server name; test for it with errors.Is.
func (s *Solver) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !IsChallengeHello(hello) {
		return nil, ErrNoChallenge
	}
	name := normalize(hello.ServerName)
	s.mu.RLock()
	e, ok := s.certs[name]
	s.mu.RUnlock()
	if ok {
		return e.cert, nil
	}
	// Presented by another process or node on the shared storage: build
	// the same certificate from its key authorization.
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if keyAuth, ok := s.Shared.Get(ctx, name); ok {
		certName := name
		if ip := ipOfReverse(name); ip != "" {
			certName = ip
		}
		if cert, err := legotlsalpn01.ChallengeCert(certName, keyAuth); err == nil {
			return cert, nil
		}
	}
	return nil, fmt.Errorf("%w (server name %q)", ErrNoChallenge, name)
}

// ipOfReverse returns the IP of an in-addr.arpa name made by reverseName
// ("" for anything else); IPv6 reverse names are left to the node that
// presented them.
func ipOfReverse(name string) string {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return ""
	}
	p := strings.Split(rest, ".")
	if len(p) != 4 {
		return ""
	}
	ip := net.ParseIP(p[3] + "." + p[2] + "." + p[1] + "." + p[0])
	if ip == nil {
		return ""
	}
	return ip.String()
}

// IsChallengeHello reports whether hello offers the "acme-tls/1" protocol,
// that is, whether it may be a TLS-ALPN-01 validation.
func IsChallengeHello(hello *tls.ClientHelloInfo) bool {
	return hello != nil && slices.Contains(hello.SupportedProtos, ALPNProto)
}

// TLSConfig returns a new tls.Config that negotiates only "acme-tls/1",
// requires TLS 1.2 or later (RFC 8737 §4) and takes its certificates from
// GetCertificate.
func (s *Solver) TLSConfig() *tls.Config {
	return &tls.Config{
		NextProtos:     []string{ALPNProto},
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
	}
}

// logger returns the Solver's logger, or a discarding one when it is nil.
func (s *Solver) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// serverName returns the key under which a challenge for domain is stored
// (the SNI a validator sends) and the name to put in the certificate.
func serverName(domain string) (key, certName string, err error) {
	d := normalize(domain)
	if d == "" {
		return "", "", errors.New("tls-alpn-01: empty domain; nothing to present")
	}
	if ip := net.ParseIP(d); ip != nil {
		return reverseName(ip), d, nil
	}
	return d, d, nil
}

// normalize lowercases a DNS name and drops one trailing dot.
func normalize(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// reverseName returns the in-addr.arpa or ip6.arpa name of ip, without the
// trailing dot.
func reverseName(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", v4[3], v4[2], v4[1], v4[0])
	}
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	ip16 := ip.To16()
	for i := len(ip16) - 1; i >= 0; i-- {
		b.WriteByte(hexDigits[ip16[i]&0x0f])
		b.WriteByte('.')
		b.WriteByte(hexDigits[ip16[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa")
	return b.String()
}
