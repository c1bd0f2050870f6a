package certmgr

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/storage"
)

// errBrokenChain marks a stored certificate whose chain cannot be made
// whole from what is stored: it is ordered again.
var errBrokenChain = errors.New("certmgr: the stored chain does not verify")

// checkChain makes sure b serves a whole chain: the leaf, then the issuer
// that signed it. A .crt cut after the leaf (a copy gone wrong, a tool that
// wrote only the leaf) is repaired from the stored .issuer.crt; the
// returned bundle is then a new one and repaired is true. A chain whose
// second certificate did not sign the leaf, or a leaf alone with no issuer
// that signed it, is an error wrapping errBrokenChain.
func checkChain(b *storage.Bundle) (out *storage.Bundle, repaired bool, err error) {
	if crt, err := b.TLSCertificate(); err == nil && len(crt.Certificate) > 1 {
		// The usual case, on every load: compare names, not signatures
		// (the set was checked with signatures when it was saved).
		issuer, err := x509.ParseCertificate(crt.Certificate[1])
		if err != nil || !bytes.Equal(crt.Leaf.RawIssuer, issuer.RawSubject) {
			return nil, false, fmt.Errorf("%w: the second certificate did not issue the leaf", errBrokenChain)
		}
		return b, false, nil
	}
	certs, err := certcrypto.ParsePEMBundle(b.Certificate)
	if err != nil || len(certs) == 0 {
		return nil, false, fmt.Errorf("%w: %v", errBrokenChain, err)
	}
	leaf := certs[0]
	if len(certs) > 1 {
		if err := leaf.CheckSignatureFrom(certs[1]); err != nil {
			return nil, false, fmt.Errorf("%w: the second certificate did not sign the leaf", errBrokenChain)
		}
		return b, false, nil
	}
	if isSelfSigned(leaf) {
		return b, false, nil
	}
	issuers, err := certcrypto.ParsePEMBundle(b.IssuerCertificate)
	if err != nil || len(issuers) == 0 {
		return nil, false, fmt.Errorf("%w: the certificate file holds only the leaf and no issuer is stored", errBrokenChain)
	}
	if err := leaf.CheckSignatureFrom(issuers[0]); err != nil {
		return nil, false, fmt.Errorf("%w: the certificate file holds only the leaf and the stored issuer did not sign it", errBrokenChain)
	}
	fixed := *b
	var chain bytes.Buffer
	_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	for _, c := range issuers {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	fixed.Certificate = chain.Bytes()
	fixed.ResetParsed()
	return &fixed, true, nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}
