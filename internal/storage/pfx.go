package storage

import (
	"bytes"
	"context"
	"encoding/asn1"
	"fmt"
	"slices"

	"github.com/go-acme/lego/v5/certcrypto"
	"software.sslmate.com/src/go-pkcs12"
)

// DefaultPFXPassword is the password lego gives a .pfx when none is set
// (go-pkcs12's DefaultPassword, "changeit").
const DefaultPFXPassword = pkcs12.DefaultPassword

// DefaultPFXFormat is lego's default .pfx encryption (RC2 for the
// certificates, 3DES for the key), which every PKCS#12 reader accepts.
const DefaultPFXFormat = certcrypto.PKCS12LegacyRC2

// PFXOptions say how <name>.pfx (PKCS#12: key, leaf and issuers; lego's
// --pfx) is written.
type PFXOptions struct {
	// Password encrypts the file; empty means DefaultPFXPassword.
	Password string
	// Format is lego's name of the encryption (RC2, DES, SHA256, PBMAC1);
	// empty means DefaultPFXFormat for a new file, and the format of the
	// file in place when an existing one is kept in step.
	Format string
}

func (o PFXOptions) password() string {
	if o.Password == "" {
		return DefaultPFXPassword
	}
	return o.Password
}

// SetPFX sets the options an existing <name>.pfx is rewritten with when
// a save asks for no .pfx of its own (Bundle.PFX nil): that file is kept
// in step with the new certificate, encrypted with o.Password (default
// DefaultPFXPassword) in o.Format (default: the format it has). With
// always, every saved certificate that has a key gets a .pfx (lego's
// --pfx for every order of a command). Call it before the store is shared.
func (s *Store) SetPFX(o PFXOptions, always bool) { s.pfx, s.pfxAlways = o, always }

// checkPFXFormat refuses a format lego does not know.
func checkPFXFormat(format string) error {
	if format == "" || certcrypto.IsPKCS12Supported(format) {
		return nil
	}
	return fmt.Errorf("storage: unknown PFX format %q; use one of %v", format, certcrypto.AllPKCS12Formats())
}

// pfxPlan decides the .pfx of a save: the options to write it with, or
// nil for none. want is what the bundle asked for; old is the .pfx in
// place (nil when none). A .pfx in place whose password is not the one
// known fails the save, writing nothing, rather than leave it stale.
func (s *Store) pfxPlan(id string, want *PFXOptions, old []byte) (*PFXOptions, error) {
	if want != nil {
		o := *want
		if o.Format == "" {
			o.Format = DefaultPFXFormat
		}
		return &o, checkPFXFormat(o.Format)
	}
	o := s.pfx
	if old == nil {
		if !s.pfxAlways {
			return nil, nil
		}
		if o.Format == "" {
			o.Format = DefaultPFXFormat
		}
		return &o, checkPFXFormat(o.Format)
	}
	if _, _, _, err := pkcs12.DecodeChain(old, o.password()); err != nil {
		return nil, fmt.Errorf("storage: certificate %q: its .pfx cannot be opened with the PFX password given "+
			"(lego's default unless --pfx.password or LEGO_PFX_PASSWORD says otherwise), so it cannot be kept in step; "+
			"give its password, or remove the .pfx; nothing was written", id)
	}
	if o.Format == "" {
		o.Format = pfxFormatOf(old)
	}
	return &o, checkPFXFormat(o.Format)
}

// encodePFX builds the PKCS#12 file of a prepared set.
func encodePFX(p *preparedSet, o *PFXOptions) ([]byte, error) {
	key, _, err := parsePrivateKey(p.key)
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: .pfx: %w", p.meta.ID, err)
	}
	chain, err := parseCertificates(p.cert)
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: .pfx: %w", p.meta.ID, err)
	}
	cas := chain[1:]
	if len(cas) == 0 && p.issuer != nil {
		if cas, err = parseCertificates(p.issuer); err != nil {
			return nil, fmt.Errorf("storage: certificate %q: .pfx: %w", p.meta.ID, err)
		}
	}
	enc, err := certcrypto.GetPKCS12Encoder(o.Format)
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: .pfx: %w", p.meta.ID, err)
	}
	out, err := enc.Encode(key, chain[0], slices.Clip(cas), o.password())
	if err != nil {
		return nil, fmt.Errorf("storage: certificate %q: .pfx: %w", p.meta.ID, err)
	}
	return out, nil
}

// Object identifiers that tell the PKCS#12 formats apart. They sit in the
// clear (algorithm identifiers of the encrypted parts and of the MAC), so
// the format is known without the password.
var (
	oidPBMAC1 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidRC2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
)

// pfxFormatOf names the lego format a PKCS#12 file was written in.
func pfxFormatOf(pfx []byte) string {
	has := func(oid asn1.ObjectIdentifier) bool {
		der, err := asn1.Marshal(oid)
		return err == nil && bytes.Contains(pfx, der)
	}
	switch {
	case has(oidPBMAC1):
		return certcrypto.PKCS12Modern2026
	case has(oidPBES2):
		return certcrypto.PKCS12Modern2023
	case has(oidRC2):
		return certcrypto.PKCS12LegacyRC2
	}
	return certcrypto.PKCS12LegacyDES
}

// loadPFX returns the .pfx in place, nil when there is none.
func (s *Store) loadPFX(ctx context.Context, keys certKeys) ([]byte, error) {
	return s.loadOptional(ctx, keys.pfx)
}
