package storage

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// keyFormat names the encoding a private key was found in.
type keyFormat int

const (
	formatPKCS8 keyFormat = iota + 1 // "PRIVATE KEY", lego v5
	formatSEC1                       // "EC PRIVATE KEY", lego v4 EC keys
	formatPKCS1                      // "RSA PRIVATE KEY", lego v4 RSA keys
)

// pemTypePKCS8 is the PEM block type of PKCS#8 private keys.
const pemTypePKCS8 = "PRIVATE KEY"

// parsePrivateKey reads the first private-key PEM block of data (skipping
// blocks such as "EC PARAMETERS") in PKCS#8, SEC1 or PKCS#1 form. Errors never
// contain key material.
func parsePrivateKey(data []byte) (crypto.Signer, keyFormat, error) {
	rest := data

	for {
		var block *pem.Block

		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, 0, errors.New("no PEM private key block found")
		}

		if block.Type != pemTypePKCS8 && !strings.HasSuffix(block.Type, " "+pemTypePKCS8) {
			continue
		}

		return parseKeyDER(block.Bytes)
	}
}

// parseKeyDER tries each supported encoding in turn, whatever the PEM type
// says, since some tools label keys loosely.
func parseKeyDER(der []byte) (crypto.Signer, keyFormat, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, formatPKCS8, nil
		case *ecdsa.PrivateKey:
			return k, formatPKCS8, nil
		case ed25519.PrivateKey:
			return k, formatPKCS8, nil
		default:
			return nil, 0, fmt.Errorf("unsupported PKCS#8 key type %T", k)
		}
	}

	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, formatSEC1, nil
	}

	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, formatPKCS1, nil
	}

	return nil, 0, errors.New("the private key is neither PKCS#8, SEC1 nor PKCS#1")
}

// encodePKCS8 returns key as a PKCS#8 "PRIVATE KEY" PEM block, the form lego
// v5 writes.
func encodePKCS8(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode the private key as PKCS#8: %w", err)
	}

	return pem.EncodeToMemory(&pem.Block{Type: pemTypePKCS8, Bytes: der}), nil
}

// publicKeyMatches reports whether key's public half equals pub.
func publicKeyMatches(key crypto.Signer, pub crypto.PublicKey) bool {
	eq, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })

	return ok && eq.Equal(pub)
}

// parseCertificates parses a PEM bundle that must contain only CERTIFICATE
// blocks (at least one) and nothing but whitespace around them.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate

	rest := data

	for {
		var block *pem.Block

		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}

		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}

		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}

		certs = append(certs, c)
	}

	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("trailing data that is not PEM")
	}

	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}

	return certs, nil
}

// encodeCertificates writes certs as a canonical PEM bundle.
func encodeCertificates(certs []*x509.Certificate) []byte {
	var out []byte

	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}

	return out
}
