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

	"github.com/zoku/zoku/internal/storage"
)

// ErrNoARI is returned by RenewalInfo when the CA offers no ARI for the
// certificate; callers fall back to a lifetime rule.
var ErrNoARI = api.ErrNoARI

// ObtainRequest describes a new certificate. Either Domains or CSR is set.
type ObtainRequest struct {
	// Name is the certificate's storage id; empty means the first domain.
	Name string
	// Domains are the identifiers, first one first (DNS names or IPs).
	Domains []string
	// CSR, when set, is finalised as is; Domains come from it.
	CSR *x509.CertificateRequest
	// PrivateKey goes with CSR (optional: stored when given) or is reused
	// instead of generating a new key.
	PrivateKey crypto.Signer
	// KeyType of the new key; zero means EC256.
	KeyType certcrypto.KeyType
	// Profile is an ACME profile name the CA advertises (e.g. "shortlived").
	Profile string
	// PreferredChain picks an alternate chain by its root's common name.
	PreferredChain string
	// ReplacesCertID, when set, sends the RFC 9773 "replaces" field.
	ReplacesCertID string
}

// Obtain orders a certificate, verifies it, and stores it. The stored set
// is replaced only once the new one is complete and verified.
func (c *Client) Obtain(ctx context.Context, req ObtainRequest) (*storage.Bundle, error) {
	if req.KeyType == "" {
		req.KeyType = certcrypto.EC256
	}
	var (
		res *certificate.Resource
		err error
	)
	if req.CSR != nil {
		c.log.Info("ordering certificate from CSR", "domains", csrNames(req.CSR), "profile", req.Profile)
		res, err = c.lego.Certificate.ObtainForCSR(ctx, certificate.ObtainForCSRRequest{
			CSR: req.CSR, PrivateKey: req.PrivateKey, Bundle: true,
			PreferredChain: req.PreferredChain, Profile: req.Profile, ReplacesCertID: req.ReplacesCertID,
		})
	} else {
		c.log.Info("ordering certificate", "domains", req.Domains, "key_type", req.KeyType, "profile", req.Profile)
		res, err = c.lego.Certificate.Obtain(ctx, certificate.ObtainRequest{
			Domains: req.Domains, PrivateKey: req.PrivateKey, KeyType: req.KeyType, Bundle: true,
			PreferredChain: req.PreferredChain, Profile: req.Profile, ReplacesCertID: req.ReplacesCertID,
		})
	}
	if err != nil {
		return nil, Explain(fmt.Errorf("obtain: %w", err))
	}
	if req.Name != "" {
		res.ID = req.Name
	}
	return c.store(ctx, res)
}

// RenewOptions tune Renew.
type RenewOptions struct {
	// ReuseKey keeps the current private key; the default is a fresh key.
	ReuseKey bool
	// KeyType of a fresh key; zero keeps the current certificate's type.
	KeyType certcrypto.KeyType
	// Profile overrides the stored profile when set.
	Profile string
	// PreferredChain overrides the stored preferred chain when set.
	PreferredChain string
	// NoReplaces leaves out the ARI "replaces" field.
	NoReplaces bool
}

// Renew orders a replacement for old (same id and names) and stores it
// once it is complete and verified. When the CA offers ARI, the order
// names the old certificate in "replaces" (RFC 9773 §5).
func (c *Client) Renew(ctx context.Context, old *storage.Bundle, opts RenewOptions) (*storage.Bundle, error) {
	leaf, err := old.Leaf()
	if err != nil {
		return nil, fmt.Errorf("acme: renew %s: %w", old.Meta.ID, err)
	}
	if len(old.PrivateKey) == 0 {
		return nil, fmt.Errorf("acme: renew %s: no private key is stored (it was issued for a CSR); run 'zoku obtain --csr' again", old.Meta.ID)
	}
	req := ObtainRequest{
		Name:           old.Meta.ID,
		Domains:        old.Meta.Domains,
		KeyType:        opts.KeyType,
		Profile:        firstNonEmpty(opts.Profile, old.Meta.Profile),
		PreferredChain: firstNonEmpty(opts.PreferredChain, old.Meta.PreferredChain),
	}
	if len(req.Domains) == 0 {
		req.Domains = leafNames(leaf)
	}
	if opts.ReuseKey {
		key, err := certcrypto.ParsePEMPrivateKey(old.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("acme: renew %s: stored key: %w", old.Meta.ID, err)
		}
		req.PrivateKey = key
	}
	if req.KeyType == "" && req.PrivateKey == nil {
		req.KeyType = old.Meta.KeyType
		if req.KeyType == "" {
			req.KeyType = keyTypeOf(leaf)
		}
	}
	if !opts.NoReplaces {
		// lego sends it only when the directory advertises renewalInfo.
		if id, err := api.MakeARICertID(leaf); err == nil {
			req.ReplacesCertID = id
		}
	}
	c.log.Info("renewing certificate", "cert_name", old.Meta.ID, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "reuse_key", opts.ReuseKey, "replaces", req.ReplacesCertID != "")
	b, err := c.Obtain(ctx, req)
	// lego already re-orders without "replaces" on 409 alreadyReplaced
	// (RFC 9773 §5); other CAs refuse it with 403, or with 400 malformed
	// when they do not know the certificate (another CA issued it, or the
	// embedded CA of an earlier run). A renewal must never fail over the
	// hint (lego#2474, certmagic#361): retry once without it.
	var p *Problem
	if err != nil && req.ReplacesCertID != "" && errors.As(err, &p) && refusedReplaces(p) {
		c.log.Warn("the CA refused the ARI replaces field; ordering again without it", "cert_name", old.Meta.ID, "error", err)
		req.ReplacesCertID = ""
		return c.Obtain(ctx, req)
	}
	return b, err
}

// Revoke revokes the certificate with an RFC 5280 reason code (nil means
// unspecified). It does not touch storage; archiving is the caller's choice.
func (c *Client) Revoke(ctx context.Context, b *storage.Bundle, reason *uint) error {
	c.log.Info("revoking certificate", "cert_name", b.Meta.ID)
	if err := c.lego.Certificate.RevokeWithReason(ctx, b.Certificate, reason); err != nil {
		return Explain(fmt.Errorf("revoke %s: %w", b.Meta.ID, err))
	}
	return nil
}

// RenewalInfo fetches the CA's suggested renewal window for leaf (RFC 9773).
// It returns ErrNoARI when the CA offers none.
func (c *Client) RenewalInfo(ctx context.Context, leaf *x509.Certificate) (*storage.RenewalInfo, error) {
	info, err := c.lego.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		if errors.Is(err, api.ErrNoARI) {
			return nil, ErrNoARI
		}
		return nil, Explain(fmt.Errorf("renewal info: %w", err))
	}
	now := time.Now().UTC()
	retry := info.RetryAfter
	if retry <= 0 {
		retry = 6 * time.Hour
	}
	return &storage.RenewalInfo{
		WindowStart:    info.SuggestedWindow.Start.UTC(),
		WindowEnd:      info.SuggestedWindow.End.UTC(),
		ExplanationURL: info.ExplanationURL,
		NextPoll:       now.Add(retry),
		FetchedAt:      now,
	}, nil
}

// store verifies what the CA returned and saves it.
func (c *Client) store(ctx context.Context, res *certificate.Resource) (*storage.Bundle, error) {
	b := &storage.Bundle{
		Meta: storage.CertMeta{
			ID: res.ID, Domains: res.Domains, KeyType: res.KeyType,
			PreferredChain: res.PreferredChain, Profile: res.Profile,
			CertURL: res.CertURL, CertStableURL: res.CertStableURL,
			Origin: "command", Server: c.cfg.Server,
		},
		Certificate:       res.Certificate,
		IssuerCertificate: res.IssuerCertificate,
		PrivateKey:        res.PrivateKey,
	}
	leaf, err := verifyChain(b)
	if err != nil {
		return nil, fmt.Errorf("acme: the CA returned an unusable certificate for %s: %w", res.ID, err)
	}
	if b.Meta.KeyType == "" {
		b.Meta.KeyType = keyTypeOf(leaf)
	}
	c.log.Info("certificate issued", "cert_name", res.ID, "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "issuer", leaf.Issuer.CommonName)
	if ri, err := c.RenewalInfo(ctx, leaf); err == nil {
		b.Meta.RenewalInfo = ri
	} else if !errors.Is(err, ErrNoARI) {
		c.log.Warn("renewal info unavailable; the lifetime rule applies", "cert_name", res.ID, "error", err)
	}
	if err := c.cfg.Store.SaveCertificate(b); err != nil {
		return nil, fmt.Errorf("acme: save certificate %s: %w", res.ID, err)
	}
	c.log.Info("certificate saved", "cert_name", res.ID, "path", c.cfg.Store.CertPaths(res.ID).Cert)
	return b, nil
}

// verifyChain checks that the leaf is signed by the first issuer
// certificate and that the issuer file matches the bundle's tail.
func verifyChain(b *storage.Bundle) (*x509.Certificate, error) {
	certs, err := certcrypto.ParsePEMBundle(b.Certificate)
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
	if len(b.IssuerCertificate) > 0 {
		issuers, err := certcrypto.ParsePEMBundle(b.IssuerCertificate)
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
// "replaces" field: a client error other than a rate limit.
func refusedReplaces(p *Problem) bool {
	switch p.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict:
		return !strings.HasSuffix(p.Type, ":rateLimited")
	}
	return false
}
