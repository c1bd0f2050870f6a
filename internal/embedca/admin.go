package embedca

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// RootsPEM returns Roots as concatenated PEM CERTIFICATE blocks.
func (c *CA) RootsPEM() []byte {
	var buf bytes.Buffer
	for _, r := range c.roots {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})
	}
	return buf.Bytes()
}

// WriteRoot writes RootsPEM to path the way the store writes its files
// (storage.WriteFile): temp file, fsync, rename, fsync of the folder, as a
// 0600 file readable by the user zoku runs as (curl --cacert and openssl
// verify run as that user). Missing folders are created 0700; an existing
// one keeps its mode.
func (c *CA) WriteRoot(path string) error {
	if err := storage.WriteFile(path, c.RootsPEM()); err != nil {
		return fmt.Errorf("embedca: write root certificate %s: %w", path, err)
	}
	return nil
}

// AddEABKey registers an external account binding key: kid and its HMAC key
// in base64url (padded or not). The key never appears in errors or logs.
func (c *CA) AddEABKey(kid, hmacB64 string) error {
	if kid == "" || hmacB64 == "" {
		return errors.New("embedca: EAB key ID and HMAC key must both be set")
	}
	raw := strings.TrimRight(hmacB64, "=")
	if _, err := base64.RawURLEncoding.DecodeString(raw); err != nil {
		// base64 errors name an offset, never the input.
		return fmt.Errorf("embedca: EAB HMAC key for kid %q is not base64url: %w", kid, err)
	}
	if err := c.db.AddExternalAccountKeyByID(kid, raw); err != nil {
		// With the key already validated, Pebble only fails on a duplicate
		// kid, and that message names the kid alone.
		return fmt.Errorf("embedca: add EAB key: %w", err)
	}
	return nil
}

// SetRenewalInfo makes the ARI renewalInfo endpoint suggest the window
// [windowStart, windowEnd] for the certificate in certPEM (the first
// CERTIFICATE block, i.e. the leaf of a bundle), which this CA must have
// issued. It does in-process what Pebble's management POST
// /set-renewal-info/ does.
func (c *CA) SetRenewalInfo(certPEM []byte, windowStart, windowEnd time.Time) error {
	if !windowEnd.After(windowStart) {
		return fmt.Errorf("embedca: renewal window end %s is not after start %s",
			windowEnd.UTC().Format(time.RFC3339), windowStart.UTC().Format(time.RFC3339))
	}
	var block *pem.Block
	for rest := certPEM; ; {
		block, rest = pem.Decode(rest)
		if block == nil || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		return errors.New("embedca: set renewal info: no PEM CERTIFICATE block in the input")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("embedca: set renewal info: parse certificate: %w", err)
	}
	if c.db.GetCertificateBySerial(cert.SerialNumber) == nil {
		return errors.New("embedca: set renewal info: certificate not issued by this CA")
	}
	c.ari.mu.Lock()
	if c.ari.overrides == nil {
		c.ari.overrides = map[string][]byte{}
	}
	c.ari.overrides[cert.SerialNumber.Text(16)] = windowJSON(windowStart.Truncate(time.Second), windowEnd.Truncate(time.Second))
	c.ari.mu.Unlock()
	return nil
}
