package acmeclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
)

// ErrNoARI is returned by RenewalInfo when the CA offers no ARI for the
// certificate; callers fall back to a lifetime rule.
var ErrNoARI = api.ErrNoARI

// Certificate is what the CA issued: the chain, the key it was ordered
// with, and where the CA keeps it. Nothing of it is stored by this package.
type Certificate struct {
	// ID is the certificate's name (its storage id).
	ID string
	// Domains are the identifiers the certificate was ordered for.
	Domains []string
	// Certificate is the PEM leaf followed by its issuers.
	Certificate []byte
	// IssuerCertificate is the PEM issuer chain without the leaf.
	IssuerCertificate []byte
	// PrivateKey is the PEM key; nil when ordered from a CSR without a key.
	PrivateKey []byte
	// KeyType is the key's type.
	KeyType certcrypto.KeyType
	// Profile and PreferredChain are what the order asked for.
	Profile, PreferredChain string
	// CertURL and CertStableURL are the certificate's URLs at the CA.
	CertURL, CertStableURL string
	// Server is the CA's directory URL.
	Server string
	// Leaf is the parsed leaf.
	Leaf *x509.Certificate
	// RenewalInfo is the CA's first ARI answer for it; nil when the CA
	// offers none.
	RenewalInfo *RenewalInfo
}

// RenewalInfo is an ACME Renewal Information (RFC 9773) answer.
type RenewalInfo struct {
	// WindowStart and WindowEnd bound the suggested renewal window.
	WindowStart, WindowEnd time.Time
	// ExplanationURL is the CA's explanation for the window, if given.
	ExplanationURL string
	// NextPoll is when to ask again (from Retry-After).
	NextPoll time.Time
	// FetchedAt is when the answer was received.
	FetchedAt time.Time
}

// ObtainRequest describes a new certificate. Either Domains or CSR is set.
type ObtainRequest struct {
	// Name is the certificate's storage id; empty means the first domain.
	Name string
	// Domains are the identifiers, first one first (DNS names or IPs).
	Domains []string
	// CSR, when set, is finalised as is; Domains come from it.
	CSR *x509.CertificateRequest
	// PrivateKey goes with CSR (optional: returned when given) or is
	// reused instead of generating a new key.
	PrivateKey crypto.Signer
	// KeyType of the new key; zero means EC256.
	KeyType certcrypto.KeyType
	// Profile is an ACME profile name the CA advertises (e.g. "shortlived").
	Profile string
	// PreferredChain picks an alternate chain by its root's common name.
	PreferredChain string
	// ReplacesCertID, when set, sends the RFC 9773 "replaces" field.
	ReplacesCertID string
	// MustStaple asks for the OCSP must-staple extension.
	MustStaple bool
	// NotBefore and NotAfter ask for a validity period, when the CA
	// honours it.
	NotBefore, NotAfter time.Time
}

// Obtain orders a certificate and returns it once it is verified (the
// leaf is signed by the first issuer of the chain).
func (c *Client) Obtain(ctx context.Context, req ObtainRequest) (*Certificate, error) {
	if req.KeyType == "" {
		req.KeyType = certcrypto.EC256
	}
	lc := c.legoClient()
	var (
		res  *certificate.Resource
		err  error
		what string
	)
	if req.CSR != nil {
		what = "obtain " + strings.Join(csrNames(req.CSR), ", ")
		c.log.Info("ordering certificate from CSR", "domains", csrNames(req.CSR), "profile", req.Profile)
		res, err = lc.Certificate.ObtainForCSR(ctx, certificate.ObtainForCSRRequest{
			CSR: req.CSR, PrivateKey: req.PrivateKey, Bundle: true,
			PreferredChain: req.PreferredChain, Profile: req.Profile, ReplacesCertID: req.ReplacesCertID,
			NotBefore: req.NotBefore, NotAfter: req.NotAfter,
		})
	} else {
		what = "obtain " + strings.Join(req.Domains, ", ")
		c.log.Info("ordering certificate", "domains", req.Domains, "key_type", req.KeyType, "profile", req.Profile)
		res, err = lc.Certificate.Obtain(ctx, certificate.ObtainRequest{
			Domains: req.Domains, PrivateKey: req.PrivateKey, KeyType: req.KeyType, Bundle: true,
			PreferredChain: req.PreferredChain, Profile: req.Profile, ReplacesCertID: req.ReplacesCertID,
			MustStaple: req.MustStaple, NotBefore: req.NotBefore, NotAfter: req.NotAfter,
		})
	}
	if err != nil {
		return nil, c.explain(what, err)
	}
	if req.Name != "" {
		res.ID = req.Name
	}
	return c.result(ctx, res)
}

// RenewRequest describes the certificate to replace.
type RenewRequest struct {
	// Name is the certificate's storage id.
	Name string
	// Domains are its identifiers; empty means those of the leaf.
	Domains []string
	// Certificate is the PEM chain in service (leaf first).
	Certificate []byte
	// PrivateKey is its PEM key; needed for ReuseKey.
	PrivateKey []byte
	// KeyType of a fresh key; zero keeps the current key's type.
	KeyType certcrypto.KeyType
	// ReuseKey keeps the current private key; the default is a fresh key.
	ReuseKey bool
	// Profile and PreferredChain to ask for (the stored ones, usually).
	Profile, PreferredChain string
	// NoReplaces leaves out the ARI "replaces" field.
	NoReplaces bool
	// MustStaple asks for the OCSP must-staple extension.
	MustStaple bool
}

// Renew orders a replacement for a certificate (same id and names). When
// the CA offers ARI, the order names the old certificate in "replaces"
// (RFC 9773 §5).
func (c *Client) Renew(ctx context.Context, r RenewRequest) (*Certificate, error) {
	certs, err := certcrypto.ParsePEMBundle(r.Certificate)
	if err != nil {
		return nil, fmt.Errorf("acme: renew %s: %w", r.Name, err)
	}
	leaf := certs[0]
	req := ObtainRequest{
		Name: r.Name, Domains: r.Domains, KeyType: r.KeyType, Profile: r.Profile,
		PreferredChain: r.PreferredChain, MustStaple: r.MustStaple,
	}
	if len(req.Domains) == 0 {
		req.Domains = leafNames(leaf)
	}
	if r.ReuseKey {
		if len(r.PrivateKey) == 0 {
			return nil, fmt.Errorf("acme: renew %s: no private key is stored (it was issued for a CSR); run 'zoku obtain --csr' again", r.Name)
		}
		key, err := certcrypto.ParsePEMPrivateKey(r.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("acme: renew %s: stored key: %w", r.Name, err)
		}
		req.PrivateKey = key
	}
	if req.KeyType == "" && req.PrivateKey == nil {
		req.KeyType = keyTypeOf(leaf)
	}
	if !r.NoReplaces {
		// lego sends it only when the directory advertises renewalInfo.
		if id, err := api.MakeARICertID(leaf); err == nil {
			req.ReplacesCertID = id
		}
	}
	c.log.Info("renewing certificate", "cert_name", r.Name, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "reuse_key", r.ReuseKey, "replaces", req.ReplacesCertID != "")
	nc, err := c.Obtain(ctx, req)
	// lego already re-orders without "replaces" on 409 alreadyReplaced
	// (RFC 9773 §5); other CAs refuse it with 403, or with 400 malformed
	// when they do not know the certificate (another CA issued it, or the
	// embedded CA of an earlier run), and Pebble answers 500
	// serverInternal when its look-up of the replaced certificate's order
	// misses. A renewal must never fail over the hint (lego#2474,
	// certmagic#361): retry once without it.
	var p *Problem
	if err != nil && req.ReplacesCertID != "" && errors.As(err, &p) && refusedReplaces(p) {
		c.log.Warn("the CA refused the ARI replaces field; ordering again without it", "cert_name", r.Name, "error", err)
		req.ReplacesCertID = ""
		return c.Obtain(ctx, req)
	}
	return nc, err
}

// Revoke revokes the PEM certificate with an RFC 5280 reason code (nil
// means unspecified).
func (c *Client) Revoke(ctx context.Context, name string, certPEM []byte, reason *uint) error {
	c.log.Info("revoking certificate", "cert_name", name)
	if err := c.legoClient().Certificate.RevokeWithReason(ctx, certPEM, reason); err != nil {
		return c.explain("revoke "+name, err)
	}
	return nil
}

// RenewalInfo fetches the CA's suggested renewal window for leaf (RFC 9773).
// It returns ErrNoARI when the CA offers none.
func (c *Client) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*RenewalInfo, error) {
	info, err := c.legoClient().Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		if errors.Is(err, api.ErrNoARI) {
			return nil, ErrNoARI
		}
		return nil, c.explain("renewal info", err)
	}
	now := time.Now().UTC()
	retry := info.RetryAfter
	if retry <= 0 {
		retry = 6 * time.Hour
	}
	return &RenewalInfo{
		WindowStart:    info.SuggestedWindow.Start.UTC(),
		WindowEnd:      info.SuggestedWindow.End.UTC(),
		ExplanationURL: info.ExplanationURL,
		NextPoll:       now.Add(retry),
		FetchedAt:      now,
	}, nil
}

// result verifies what the CA returned and reads its first ARI answer.
func (c *Client) result(ctx context.Context, res *certificate.Resource) (*Certificate, error) {
	leaf, err := verifyChain(res.Certificate, res.IssuerCertificate)
	if err != nil {
		return nil, fmt.Errorf("acme: the CA returned an unusable certificate for %s: %w", res.ID, err)
	}
	out := &Certificate{
		ID: res.ID, Domains: res.Domains, KeyType: res.KeyType,
		PreferredChain: res.PreferredChain, Profile: res.Profile,
		CertURL: res.CertURL, CertStableURL: res.CertStableURL, Server: c.cfg.Server,
		Certificate: res.Certificate, IssuerCertificate: res.IssuerCertificate, PrivateKey: res.PrivateKey,
		Leaf: leaf,
	}
	if out.KeyType == "" {
		out.KeyType = keyTypeOf(leaf)
	}
	c.log.Info("certificate issued", "cert_name", res.ID, "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "issuer", leaf.Issuer.CommonName)
	if ri, err := c.RenewalInfo(ctx, leaf); err == nil {
		out.RenewalInfo = ri
	} else if !errors.Is(err, ErrNoARI) {
		c.log.Warn("renewal info unavailable; the lifetime rule applies", "cert_name", res.ID, "error", err)
	}
	return out, nil
}

// verifyChain checks that the leaf is signed by the first issuer
// certificate and that the issuer file matches the bundle's tail.
func verifyChain(chain, issuer []byte) (*x509.Certificate, error) {
	certs, err := certcrypto.ParsePEMBundle(chain)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	if len(certs) < 2 {
		return nil, errors.New("no issuer certificate in the chain")
	}
	if err := leaf.CheckSignatureFrom(certs[1]); err != nil {
		return nil, fmt.Errorf("leaf is not signed by its issuer: %w", err)
	}
	if len(issuer) > 0 {
		issuers, err := certcrypto.ParsePEMBundle(issuer)
		if err != nil {
			return nil, fmt.Errorf("issuer certificate: %w", err)
		}
		if !bytes.Equal(issuers[0].Raw, certs[1].Raw) {
			return nil, errors.New("issuer certificate does not match the chain")
		}
	}
	return leaf, nil
}

func keyTypeOf(leaf *x509.Certificate) certcrypto.KeyType {
	kt, err := certcrypto.GetKeyType(leaf.PublicKey)
	if err != nil {
		return ""
	}
	return kt
}

func leafNames(leaf *x509.Certificate) []string {
	var names []string
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func csrNames(csr *x509.CertificateRequest) []string {
	names := append([]string(nil), csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// refusedReplaces tells whether a newOrder refusal may be about the
// "replaces" field: a client error other than a rate limit, or the CA's
// internal error (one more order without the hint costs little, and a CA
// that is down refuses that one too).
func refusedReplaces(p *Problem) bool {
	switch p.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict:
		return !strings.HasSuffix(p.Type, ":rateLimited")
	case http.StatusInternalServerError:
		return strings.HasSuffix(p.Type, ":serverInternal")
	}
	return false
}
